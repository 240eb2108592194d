"""The followup service's HTTP API: the success team's queue, its teams, the referral requests, and the
admins' outbound webhooks.

Who is asking comes from ``current_principal()``, put on ``flask.g`` by the access guard; the use cases
decide what their role allows.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from werkzeug.exceptions import Unauthorized

from shared.identity.web import requires
from shared.principal import Principal, Role, current_principal

from . import service
from .domain import StaffMember, TaskQuery
from .runtime import FollowupRuntime
from .schemas import (
    DeliveryLogQuerySchema,
    NewTeamSchema,
    NewWebhookEndpointAnswerSchema,
    NewWebhookEndpointSchema,
    NoteSchema,
    ReferralRequestSchema,
    StaffMemberSchema,
    StatusChangeSchema,
    TaskDetailsSchema,
    TaskQuerySchema,
    TaskSchema,
    TeamMembersSchema,
    TeamSchema,
    TimelineEntrySchema,
    WebhookDeliverySchema,
    WebhookEndpointSchema,
)

blp = Blueprint(
    "tasks", __name__, url_prefix="/v1", description="Follow-up tasks, teams and referral requests"
)

TOTAL_HEADER = "X-Total-Count"
View = TypeVar("View", bound=Callable[..., Any])


def _runtime() -> FollowupRuntime:
    return current_app.extensions["closeloop.followup"]


def _problems(*statuses: int) -> Callable[[View], View]:
    """Document the problem+json answers an operation may give, as ProblemApi registered them."""

    def document(view: View) -> View:
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return document


def _actor() -> Principal:
    principal = current_principal()
    if principal is None:
        raise Unauthorized("Sign in, or send an API key.")
    return principal


@blp.route("/tasks")
class Tasks(MethodView):
    # An unknown argument is refused rather than ignored: a misspelt filter would list the wrong tasks.
    @blp.arguments(TaskQuerySchema, location="query", unknown=RAISE)
    @blp.response(
        200,
        TaskSchema(many=True),
        headers={
            TOTAL_HEADER: {
                "description": "How many tasks match the filters, on every page.",
                "schema": {"type": "integer"},
            }
        },
    )
    @_problems(400)
    def get(self, query: TaskQuery) -> tuple[Any, dict[str, str]]:
        """The queue: by default the tasks still to act on, most urgent first, a page at a time."""
        page = service.list_tasks(_runtime(), query, current_principal())
        return page.items, {TOTAL_HEADER: str(page.total)}


@blp.route("/tasks/<task_id>")
class Task(MethodView):
    @blp.response(200, TaskDetailsSchema)
    @_problems(404)
    def get(self, task_id: str) -> Any:
        """A task with everything the agent needs to act, and its timeline of changes and notes."""
        return service.get_task(_runtime(), task_id)


@blp.route("/tasks/<task_id>/claim")
class TaskClaim(MethodView):
    @blp.response(200, TaskSchema)
    @_problems(401, 404, 409)
    def post(self, task_id: str) -> Any:
        """Take the task and start on it; of two simultaneous claims one wins, the other gets 409."""
        return service.claim_task(_runtime(), _actor(), task_id)


@blp.route("/tasks/<task_id>/assign")
class TaskAssignment(MethodView):
    @blp.arguments(StaffMemberSchema)
    @blp.response(200, TaskSchema)
    @_problems(401, 403, 404, 409)
    def post(self, assignee: StaffMember, task_id: str) -> Any:
        """Give the task to someone: managers assign anyone, agents only themselves."""
        return service.assign_task(_runtime(), _actor(), task_id, assignee)


@blp.route("/tasks/<task_id>/status")
class TaskStatusChange(MethodView):
    @blp.arguments(StatusChangeSchema)
    @blp.response(200, TaskSchema)
    @_problems(400, 401, 403, 404, 409)
    def post(self, change: dict[str, Any], task_id: str) -> Any:
        """Move the task: open, in_progress, resolved (with a resolution code), closed, or open again.

        Resolving may send the customer a short `close_loop_message`. A move the state machine forbids is a
        409 naming it; resolving without a resolution code, or a message with any other move, a 400.
        """
        return service.change_status(
            _runtime(),
            _actor(),
            task_id,
            change["status"],
            change["resolution_code"],
            change["note"],
            change["close_loop_message"],
        )


@blp.route("/tasks/<task_id>/notes")
class TaskNotes(MethodView):
    @blp.arguments(NoteSchema)
    @blp.response(201, TimelineEntrySchema)
    @_problems(400, 401, 404)
    def post(self, note: dict[str, Any], task_id: str) -> Any:
        """Add a note to the task's timeline."""
        return service.add_note(_runtime(), _actor(), task_id, note["body"])


@blp.route("/teams")
class Teams(MethodView):
    @blp.response(200, TeamSchema(many=True))
    def get(self) -> Any:
        """The teams, with the touchpoints each follows up and its members."""
        return service.list_teams(_runtime())

    @blp.arguments(NewTeamSchema)
    @blp.response(201, TeamSchema)
    @_problems(400, 401, 403, 409)
    def post(self, team: dict[str, Any]) -> Any:
        """Create a team; its touchpoints' new tasks go to its members in turn."""
        return service.create_team(_runtime(), _actor(), team["name"], team["touchpoints"], team["members"])


@blp.route("/teams/<team_id>/members")
class TeamMembers(MethodView):
    @blp.arguments(TeamMembersSchema)
    @blp.response(200, TeamSchema)
    @_problems(400, 401, 403, 404)
    def put(self, members: dict[str, Any], team_id: str) -> Any:
        """Replace the team's members; new tasks go round them in this order."""
        return service.set_team_members(_runtime(), _actor(), team_id, members["members"])


@blp.route("/referral-requests")
class ReferralRequests(MethodView):
    @blp.response(200, ReferralRequestSchema(many=True))
    def get(self) -> Any:
        """Promoters to ask for a referral, newest first: their link's code, whether it was sent, withdrawn
        or converted, and its clicks."""
        return service.list_referral_requests(_runtime())


# --- Outbound webhooks (admins only) ---------------------------------------------------------------------

webhooks_blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1",
    description="Outbound webhooks (Standard Webhooks): endpoints, their delivery logs, sending again",
)


@webhooks_blp.route("/webhook-endpoints")
class WebhookEndpoints(MethodView):
    @requires(Role.ADMIN)
    @webhooks_blp.response(200, WebhookEndpointSchema(many=True))
    @_problems(401, 403)
    def get(self) -> Any:
        """The endpoints, the oldest first; their secrets are never shown again."""
        return service.list_webhook_endpoints(_runtime(), _actor())

    @requires(Role.ADMIN)
    @webhooks_blp.arguments(NewWebhookEndpointSchema)
    @webhooks_blp.response(201, NewWebhookEndpointAnswerSchema)
    @_problems(401, 403)
    def post(self, endpoint: dict[str, Any]) -> Any:
        """Register a receiver; the answer carries its whsec_ secret, this once.

        A URL that is not http(s), or whose host is or resolves to a loopback, private, link-local,
        multicast, reserved or cloud metadata address, is a 422 naming `url`.
        """
        return service.create_webhook_endpoint(
            _runtime(), _actor(), endpoint["url"], endpoint["event_types"], endpoint["description"]
        )


@webhooks_blp.route("/webhook-endpoints/<endpoint_id>")
class WebhookEndpoint(MethodView):
    @requires(Role.ADMIN)
    @webhooks_blp.response(200, WebhookEndpointSchema)
    @_problems(401, 403, 404)
    def get(self, endpoint_id: str) -> Any:
        """An endpoint, and whether it is disabled, since when and why."""
        return service.get_webhook_endpoint(_runtime(), _actor(), endpoint_id)

    @requires(Role.ADMIN)
    @webhooks_blp.response(204)
    @_problems(401, 403, 404)
    def delete(self, endpoint_id: str) -> None:
        """Delete the endpoint and its delivery log; what was waiting is never sent."""
        service.delete_webhook_endpoint(_runtime(), _actor(), endpoint_id)


@webhooks_blp.route("/webhook-endpoints/<endpoint_id>/disable")
class WebhookEndpointDisabling(MethodView):
    @requires(Role.ADMIN)
    @webhooks_blp.response(200, WebhookEndpointSchema)
    @_problems(401, 403, 404)
    def post(self, endpoint_id: str) -> Any:
        """Stop delivering to the endpoint: nothing new is recorded for it, what waits is held."""
        return service.disable_webhook_endpoint(_runtime(), _actor(), endpoint_id)


@webhooks_blp.route("/webhook-endpoints/<endpoint_id>/enable")
class WebhookEndpointEnabling(MethodView):
    @requires(Role.ADMIN)
    @webhooks_blp.response(200, WebhookEndpointSchema)
    @_problems(401, 403, 404)
    def post(self, endpoint_id: str) -> Any:
        """Deliver to the endpoint again, held deliveries included."""
        return service.enable_webhook_endpoint(_runtime(), _actor(), endpoint_id)


@webhooks_blp.route("/webhook-endpoints/<endpoint_id>/deliveries")
class WebhookDeliveries(MethodView):
    @requires(Role.ADMIN)
    @webhooks_blp.arguments(DeliveryLogQuerySchema, location="query", unknown=RAISE)
    @webhooks_blp.response(200, WebhookDeliverySchema(many=True))
    @_problems(400, 401, 403, 404)
    def get(self, query: dict[str, Any], endpoint_id: str) -> Any:
        """The endpoint's delivery log, the newest first: status, answer, attempts and the next one."""
        return service.list_webhook_deliveries(_runtime(), _actor(), endpoint_id, query["limit"])


@webhooks_blp.route("/webhook-deliveries/<delivery_id>/resend")
class WebhookDeliveryResending(MethodView):
    @requires(Role.ADMIN)
    @webhooks_blp.response(202, WebhookDeliverySchema)
    @_problems(401, 403, 404, 409)
    def post(self, delivery_id: str) -> Any:
        """Send again: a delivered or failed message goes out once more with the same webhook-id (a new
        delivery in the log); one waiting for a retry is due now. 409 while it is being sent or while its
        endpoint is disabled."""
        return service.resend_webhook_delivery(_runtime(), _actor(), delivery_id)
