"""The success team's pages: the queues (mine, my team's, unassigned, overdue), a task's page and the
referral requests; the admins' outbound webhooks page; and the one page customers reach here, a promoter's
referral link (/r/<code>), which counts the click and sends them on.

They call the same use cases as the JSON API. Forms post and are redirected back (303); a use case's refusal
(a 409 conflict, a 403, a 400) is shown on the task's page with its status code, the typed text kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, validate
from werkzeug.wrappers import Response

from shared.clock import as_utc, utcnow
from shared.http import DomainError, NotFoundError
from shared.identity.web import public, requires
from shared.nps import NpsCategory, nps_category
from shared.principal import Principal, Role, current_principal
from shared.validation import StorableString

from . import domain, service
from .domain import (
    ACTIVE_STATUSES,
    MAX_CLOSE_LOOP_MESSAGE,
    OWNER_NONE,
    ReferralStatus,
    ResolutionCode,
    StaffMember,
    TaskPriority,
    TaskQuery,
    TaskSort,
    TaskStatus,
    TimelineKind,
)
from .models import FollowupTask, ReferralRequest, Team, TimelineEntry, WebhookEndpoint
from .runtime import FollowupRuntime
from .schemas import NewWebhookEndpointSchema, NoteSchema, StatusChangeSchema, TaskQuerySchema
from .webhooks import EVENT_TYPES, DeliveryStatus

bp = Blueprint(
    "pages", __name__, template_folder="templates", static_folder="static", static_url_path="/static/followup"
)

PAGE_SIZE = 25

STATUS_LABELS: dict[str, str] = {
    TaskStatus.OPEN: "Open",
    TaskStatus.IN_PROGRESS: "In progress",
    TaskStatus.RESOLVED: "Resolved",
    TaskStatus.CLOSED: "Closed",
    TaskStatus.DISMISSED: "Dismissed",
}
# What the button moving a task to each status says.
MOVE_LABELS = {
    TaskStatus.IN_PROGRESS: "Start work",
    TaskStatus.RESOLVED: "Resolve",
    TaskStatus.CLOSED: "Close",
    TaskStatus.OPEN: "Reopen",
}
RESOLUTION_LABELS = {
    ResolutionCode.CONTACTED_RESOLVED: "Contacted, resolved",
    ResolutionCode.CONTACTED_UNRESOLVED: "Contacted, not resolved",
    ResolutionCode.UNREACHABLE: "Could not reach the customer",
    ResolutionCode.NOT_NEEDED: "No follow-up needed",
}
SORT_LABELS = {
    TaskSort.PRIORITY: "Most urgent",
    TaskSort.DUE_AT: "Due soonest",
    TaskSort.CREATED_AT: "Newest",
    TaskSort.SCORE: "Lowest score",
}
# The filters a queue page reads from its address; its scope (owner, team, overdue) is the page's own.
_FILTER_ARGS = ("status", "team", "touchpoint", "priority", "sort", "order", "page")


def _runtime() -> FollowupRuntime:
    return current_app.extensions["closeloop.followup"]


def _actor() -> Principal:
    # The guard refuses strangers before any view here runs.
    principal = current_principal()
    assert principal is not None
    return principal


@bp.after_request
def _not_kept(response: Response) -> Response:
    # Customers' names, phones and comments must not stay in a shared tablet's cache after sign-out.
    if request.endpoint != "pages.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "status_label": _status_label,
        "resolution_label": lambda code: RESOLUTION_LABELS.get(code, code),
        "words": words,
        "customer_name": customer_name,
        "moment": moment,
        "nav_counts": _nav_counts,
    }


# --- The queues ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOption:
    label: str
    url: str
    active: bool


@dataclass(frozen=True)
class FilterGroup:
    label: str
    options: list[FilterOption]


@dataclass(frozen=True)
class QueueRow:
    """A task as a row of a queue page."""

    task: FollowupTask
    overdue: bool
    due: str


@bp.get("/")
def home() -> Response:
    """The staff's start when no landing page is mounted in front (services mode): their own tasks."""
    return redirect(url_for(".my_tasks"), code=303)


@bp.get("/tasks")
def my_tasks() -> str | tuple[str, int]:
    """The tasks of the person signed in that are still to act on."""
    query, error = _filters()
    return _queue_page(
        "My tasks",
        "Nothing on your list. Claim a task from the unassigned ones or your team's queue.",
        replace(query, owner=_actor().id),
        error,
        service.list_teams(_runtime()),
    )


@bp.get("/tasks/team")
def team_tasks() -> str | tuple[str, int]:
    """The tasks of the teams the person is on, one team at a time; a manager sees every team's."""
    actor, teams = _actor(), service.list_teams(_runtime())
    query, error = _filters()
    if actor.role.allows(Role.MANAGER):
        return _queue_page(
            "Team queue", "No tasks here.", query, error, teams, team_choices=teams, all_teams=True
        )
    mine = _teams_of(teams, actor.id)
    if not mine:
        notice = "You are not on a team yet: a manager adds people to teams."
        return _queue_page("My team's tasks", "", None, error, teams, notice=notice)
    # An agent's page stays on their own teams: the first one until they pick another.
    picked = next((team for team in mine if team.id == query.team_id), mine[0])
    return _queue_page(
        "My team's tasks",
        "No tasks here.",
        replace(query, team_id=picked.id),
        error,
        teams,
        team_choices=mine,
    )


@bp.get("/tasks/unassigned")
def unassigned_tasks() -> str | tuple[str, int]:
    """Tasks nobody owns: a touchpoint no team follows up, or a team with no members."""
    teams = service.list_teams(_runtime())
    query, error = _filters()
    return _queue_page(
        "Unassigned tasks",
        "Every task has someone.",
        replace(query, owner=OWNER_NONE),
        error,
        teams,
        team_choices=teams,
        all_teams=True,
    )


@bp.get("/tasks/overdue")
def overdue_tasks() -> str | tuple[str, int]:
    """Tasks past their due time that someone still has to act on."""
    teams = service.list_teams(_runtime())
    query, error = _filters()
    return _queue_page(
        "Overdue tasks",
        "Nothing is overdue.",
        replace(query, overdue=True, statuses=ACTIVE_STATUSES),
        error,
        teams,
        team_choices=teams,
        all_teams=True,
        status_filter=False,
    )


def _queue_page(
    title: str,
    empty: str,
    query: TaskQuery | None,
    error: str | None,
    teams: list[Team],
    *,
    team_choices: Sequence[Team] = (),
    all_teams: bool = False,
    status_filter: bool = True,
    notice: str | None = None,
) -> str | tuple[str, int]:
    """A page of ``query``'s tasks (None: nothing to list) with the filters as links; 400 with ``error``."""
    page = service.list_tasks(_runtime(), query, _actor()) if query is not None else service.TaskPage([], 0)
    query = query or TaskQuery(page_size=PAGE_SIZE)
    now = utcnow()
    rows = [
        QueueRow(task, domain.is_overdue(task.status, as_utc(task.due_at), now), _due(task, now))
        for task in page.items
    ]
    pages = max(1, -(-page.total // PAGE_SIZE))
    body = render_template(
        "followup/queue.html",
        title=title,
        empty=empty,
        notice=notice,
        error=error,
        rows=rows,
        total=page.total,
        page=query.page,
        pages=pages,
        previous_url=_link(page=query.page - 1) if query.page > 1 else None,
        next_url=_link(page=query.page + 1) if query.page < pages else None,
        groups=_filter_groups(query, page.items, teams, team_choices, all_teams, status_filter),
        teams={team.id: team.name for team in teams},
    )
    return (body, 400) if error else body


def _filters() -> tuple[TaskQuery, str | None]:
    """What the page's links ask for, validated by the API's own schema; the defaults and a message if not."""
    args = {
        key: request.args.getlist(key) if key == "status" else request.args[key]
        for key in _FILTER_ARGS
        if key in request.args
    }
    try:
        return TaskQuerySchema().load({**args, "page_size": PAGE_SIZE}), None
    except ValidationError as invalid:
        fields = ", ".join(sorted(invalid.messages_dict))
        return TaskQuery(page_size=PAGE_SIZE), f"Some filters in this address were not understood ({fields})."


def _teams_of(teams: Iterable[Team], user_id: str) -> list[Team]:
    return [team for team in teams if any(member.user_id == user_id for member in team.members)]


def _filter_groups(
    query: TaskQuery,
    listed: list[FollowupTask],
    teams: list[Team],
    team_choices: Sequence[Team],
    all_teams: bool,
    status_filter: bool,
) -> list[FilterGroup]:
    groups = []
    if status_filter:
        statuses = [
            FilterOption("To do", _link(status=None), query.statuses == ACTIVE_STATUSES),
            *(
                FilterOption(STATUS_LABELS[status], _link(status=status.value), query.statuses == {status})
                for status in (
                    TaskStatus.OPEN,
                    TaskStatus.IN_PROGRESS,
                    TaskStatus.RESOLVED,
                    TaskStatus.CLOSED,
                )
            ),
        ]
        groups.append(FilterGroup("Status", statuses))
    if team_choices:
        options = [FilterOption("All teams", _link(team=None), query.team_id is None)] if all_teams else []
        options += [
            FilterOption(team.name, _link(team=team.id), query.team_id == team.id) for team in team_choices
        ]
        if len(options) > 1:
            groups.append(FilterGroup("Team", options))
    groups.append(
        FilterGroup(
            "Priority",
            [
                FilterOption("Any", _link(priority=None), query.priority is None),
                *(
                    FilterOption(words(priority), _link(priority=priority.value), query.priority == priority)
                    for priority in TaskPriority
                ),
            ],
        )
    )
    # The touchpoints teams follow up and those of the tasks listed: followup keeps no list of them all.
    touchpoints = sorted(
        {tp.touchpoint for team in teams for tp in team.touchpoints}
        | {task.touchpoint for task in listed}
        | ({query.touchpoint} - {None})
    )
    if touchpoints:
        options = [FilterOption("Any", _link(touchpoint=None), query.touchpoint is None)]
        options += [
            FilterOption(words(touchpoint), _link(touchpoint=touchpoint), query.touchpoint == touchpoint)
            for touchpoint in touchpoints
        ]
        groups.append(FilterGroup("Touchpoint", options))
    groups.append(
        FilterGroup(
            "Order",
            [
                FilterOption(
                    label,
                    _link(sort=None if sort is TaskSort.PRIORITY else sort.value, order=None),
                    query.sort == sort,
                )
                for sort, label in SORT_LABELS.items()
            ],
        )
    )
    return groups


def _link(**changes: Any) -> str:
    """This page's address with ``changes`` (None drops a filter); a new filter starts again at page 1."""
    args = {key: request.args.getlist(key) for key in _FILTER_ARGS if key in request.args}
    if "page" not in changes:
        args.pop("page", None)
    for key, value in changes.items():
        if value is None or (key == "page" and value == 1):
            args.pop(key, None)
        else:
            args[key] = [str(value)]
    assert request.endpoint is not None
    return url_for(request.endpoint, **args)


def _nav_counts() -> dict[str, int]:
    """How many tasks are mine and how many are overdue, for the navigation's badges."""
    runtime, actor = _runtime(), _actor()
    counted = TaskQuery(page_size=1)
    return {
        "mine": service.list_tasks(runtime, replace(counted, owner=actor.id), actor).total,
        "overdue": service.list_tasks(runtime, replace(counted, overdue=True), actor).total,
    }


# --- A task ----------------------------------------------------------------------------------------------


class AssignmentForm(Schema):
    """The assign form names a user; their name comes from the identity store, not from the form."""

    user_id = StorableString(required=True, validate=validate.Length(min=1, max=64))


@dataclass(frozen=True)
class TaskActions:
    """What the person looking at a task may do with it, so the page offers nothing that would be refused."""

    claim: bool
    assignees: list[StaffMember]
    moves: list[TaskStatus]
    resolve: bool


@bp.get("/tasks/<task_id>")
def task(task_id: str) -> str | tuple[str, int]:
    """The customer's answer, contact details, the event's properties, the timeline and the actions."""
    return _task_page(task_id)


@bp.post("/tasks/<task_id>/claim")
def claim_task(task_id: str) -> Response | tuple[str, int]:
    def claim(actor: Principal) -> str:
        service.claim_task(_runtime(), actor, task_id)
        return "You took this task."

    return _act(task_id, "claim", claim)


@bp.post("/tasks/<task_id>/assign")
def assign_task(task_id: str) -> Response | tuple[str, int]:
    def assign(actor: Principal) -> str:
        user_id = AssignmentForm().load({"user_id": request.form.get("user_id", "")}).get("user_id")
        assignee = next((member for member in _staff() if member.id == user_id), None)
        if assignee is None:
            raise DomainError("Pick someone on the staff to assign the task to.")
        service.assign_task(_runtime(), actor, task_id, assignee)
        return f"Assigned to {assignee.name}."

    return _act(task_id, "assign", assign)


@bp.post("/tasks/<task_id>/status")
def change_status(task_id: str) -> Response | tuple[str, int]:
    def move(actor: Principal) -> str:
        change = StatusChangeSchema().load(_filled("status", "resolution_code", "note", "close_loop_message"))
        task = service.change_status(
            _runtime(),
            actor,
            task_id,
            change["status"],
            change["resolution_code"],
            change["note"],
            change["close_loop_message"],
        )
        done = f"The task is {STATUS_LABELS[TaskStatus(task.status)].lower()} now."
        return f"{done} Your message goes to the customer." if task.close_loop_message else done

    return _act(task_id, "status", move)


@bp.post("/tasks/<task_id>/notes")
def add_note(task_id: str) -> Response | tuple[str, int]:
    def note(actor: Principal) -> str:
        service.add_note(
            _runtime(), actor, task_id, NoteSchema().load({"body": request.form.get("body", "")})["body"]
        )
        return "Note added."

    return _act(task_id, "note", note)


def _filled(*names: str) -> dict[str, str]:
    """The form's fields that were filled in: an empty select or text box means none was given."""
    return {name: request.form[name] for name in names if request.form.get(name, "").strip()}


def _act(task_id: str, form: str, action: Callable[[Principal], str]) -> Response | tuple[str, int]:
    """Run a form's use case: back to the task page (303) saying what was done, or it with the refusal."""
    try:
        done = action(_actor())
    except ValidationError as invalid:
        return _task_page(task_id, 400, _invalid_form(invalid), form)
    except NotFoundError:
        return _task_page(task_id)  # the page says there is no such task
    except DomainError as refusal:
        return _task_page(task_id, refusal.status, refusal.detail, form)
    flash(done)
    return redirect(url_for(".task", task_id=task_id), code=303)


def _invalid_form(invalid: ValidationError) -> str:
    problems = "; ".join(
        f"{words(field)}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
        for field, messages in invalid.normalized_messages().items()
    )
    return f"The form was not accepted. {problems}"


def _task_page(
    task_id: str, status: int = 200, error: str | None = None, failed_form: str | None = None
) -> tuple[str, int]:
    runtime, actor = _runtime(), _actor()
    try:
        task = service.get_task(runtime, task_id)
    except NotFoundError as missing:
        return render_template("followup/missing.html", message=missing.detail), 404
    now = utcnow()
    body = render_template(
        "followup/task.html",
        task=task,
        customer=customer_name(task),
        overdue=domain.is_overdue(task.status, as_utc(task.due_at), now),
        due=_due(task, now),
        properties=[(words(key), shown(value)) for key, value in (task.properties or {}).items()],
        timeline=_timeline(task),
        actions=_actions(task, actor),
        resolution_codes=RESOLUTION_LABELS,
        move_labels=MOVE_LABELS,
        max_close_loop_message=MAX_CLOSE_LOOP_MESSAGE,
        referral=service.referral_for_response(runtime, task.response_id),
        referral_label=_referral_label,
        team=next((team.name for team in service.list_teams(runtime) if team.id == task.team_id), None),
        error=error,
        failed_form=failed_form,
        # What was typed into the refused form, to fill it in again.
        typed=request.form if failed_form else {},
    )
    return body, status


def _timeline(task: FollowupTask) -> list[tuple[TimelineEntry, str]]:
    """Each entry with its sentence, oldest first as the API gives them.

    Entries do not carry a resolution code, the task does until it is reopened: the entry that resolved it
    last tells it.
    """
    resolving = next(
        (entry for entry in reversed(task.timeline) if entry.to_status == TaskStatus.RESOLVED),
        None,
    )
    opened_for = _opened_for(task)
    return [
        (entry, timeline_text(entry, task.resolution_code if entry is resolving else None, opened_for))
        for entry in task.timeline
    ]


def _opened_for(task: FollowupTask) -> str:
    """Whose answer the task is for, as it stands now (a revision may have changed it since it opened)."""
    if task.mismatch:
        return "a high score with a negative comment"
    if nps_category(task.score) is NpsCategory.PASSIVE:
        return "a passive's answer"
    return "a detractor's answer"


def _actions(task: FollowupTask, actor: Principal) -> TaskActions:
    active = task.status in ACTIVE_STATUSES
    manager = actor.role.allows(Role.MANAGER)
    claim = active and (task.owner_id is None or (task.owner_id == actor.id and task.claimed_at is None))
    owner = task.owner_id == actor.id
    moves: list[TaskStatus] = []
    if manager or owner:
        # Dismissing is Closeloop's move when a customer raises the score; nobody can undo it, so no button.
        # Starting work is the owner's move, and Claim says it already when the task is not claimed yet.
        moves = [
            status
            for status in MOVE_LABELS
            if status in domain.allowed_moves(task.status)
            and not (status is TaskStatus.IN_PROGRESS and (claim or not owner))
        ]
    return TaskActions(
        claim=claim,
        assignees=_staff() if manager and active else [],
        moves=[status for status in moves if status is not TaskStatus.RESOLVED],
        resolve=TaskStatus.RESOLVED in moves,
    )


def _staff() -> list[StaffMember]:
    """The active staff, by name: whom a manager can assign a task to."""
    identity = _runtime().identity
    assert identity is not None  # install_access_control builds no app without one
    users = identity.list_users()
    members = [StaffMember(user.id, user.name or user.email) for user in users if user.active]
    return sorted(members, key=lambda member: member.name.casefold())


# --- Referral requests -----------------------------------------------------------------------------------

REFERRALS_SHOWN = 100
# A request still asked for reads as waiting, sent or not sent (_referral_label).
REFERRAL_LABELS = {
    ReferralStatus.WITHDRAWN: "Withdrawn",
    ReferralStatus.CONVERTED: "Converted",
}


@bp.get("/referrals")
def referrals() -> str:
    """Promoters asked for a referral, the newest first: sent or not, clicks, conversions."""
    return render_template(
        "followup/referrals.html",
        requests=service.list_referral_requests(_runtime(), REFERRALS_SHOWN),
        referral_label=_referral_label,
        configured=_runtime().settings.followup_referral_url is not None,
    )


def _referral_label(request: ReferralRequest) -> str:
    """The request's state in words: an asked request is waiting, sent, or never to be sent."""
    if request.status != ReferralStatus.REQUESTED:
        return REFERRAL_LABELS.get(ReferralStatus(request.status), request.status)
    if request.sent_at is not None:
        return "Sent"
    return "Waiting to be sent" if request.send_at is not None else "Not sent"


@bp.get("/r/<code>")
@public  # the promoter's referral link, reached by its unguessable code
def follow_referral_link(code: str) -> Response:
    """Count the click and send the browser on to the landing page, with ?ref=<code>."""
    try:
        landing = service.follow_referral_link(_runtime(), code, request.headers.get("User-Agent"))
    except NotFoundError:
        abort(404)
    return redirect(landing, code=302)


# --- Wording ---------------------------------------------------------------------------------------------


def customer_name(task: FollowupTask) -> str:
    return task.customer_name or task.customer_external_id or "Unnamed customer"


def words(name: str) -> str:
    """A code as words: ``support_call`` is "Support call"."""
    return name.replace("_", " ").replace(".", " ").strip().capitalize()


def shown(value: Any) -> str:
    """A property's value as text; lists and objects as JSON, non-ASCII as written."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def moment(value: datetime | None) -> str:
    """A time as the staff read it: UTC, said so, to the minute."""
    if value is None:
        return ""
    return as_utc(value).strftime("%d %b %Y, %H:%M UTC")


def span(delta: timedelta) -> str:
    """A duration rounded to what matters for a due time: minutes, hours, or days."""
    minutes = int(abs(delta).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def _due(task: FollowupTask, now: datetime) -> str:
    due_at = as_utc(task.due_at)
    if task.status not in ACTIVE_STATUSES:
        return ""  # nothing is due on a task nobody has to act on
    if due_at < now:
        return f"{span(now - due_at)} overdue"
    return f"in {span(due_at - now)}"


def timeline_text(
    entry: TimelineEntry, resolution_code: str | None = None, opened_for: str = "a detractor's answer"
) -> str:
    """What happened, in a sentence; who did it is shown beside it, a note's text below it."""
    kind = TimelineKind(entry.kind)
    if kind is TimelineKind.CREATED:
        return f"Opened the task for {opened_for}."
    if kind is TimelineKind.REVISED:
        return "The customer's answer changed; priority and due time were checked again."
    if kind is TimelineKind.ASSIGNED:
        return f"Assigned the task to {entry.assignee_name or entry.assignee_id}."
    if kind is TimelineKind.NOTE_ADDED:
        return "Added a note."
    moved = f"{_status_label(entry.from_status)} → {_status_label(entry.to_status)}"
    if kind is TimelineKind.CLAIMED:
        return f"Claimed the task ({moved})." if entry.from_status != entry.to_status else "Claimed the task."
    if resolution_code:
        return f"Status: {moved}. Resolution: {RESOLUTION_LABELS.get(resolution_code, resolution_code)}."
    return f"Status: {moved}."


def _status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status, status) if status else "none"


# --- Outbound webhooks (admins) --------------------------------------------------------------------------
# Not under /webhooks/: that prefix is the providers' JSON callbacks (shared.http.JSON_PREFIXES).

DELIVERY_LABELS = {
    DeliveryStatus.SCHEDULED: "Waiting",
    DeliveryStatus.SENDING: "Sending",
    DeliveryStatus.DELIVERED: "Delivered",
    DeliveryStatus.FAILED: "Failed",
}
LOG_SIZE = 50


@bp.get("/webhooks")
@requires(Role.ADMIN)
def webhooks() -> tuple[str, int]:
    """The endpoints and their state, a form to add one, and the alerts' log."""
    return _webhooks_page()


@bp.post("/webhooks")
@requires(Role.ADMIN)
def create_webhook_endpoint() -> tuple[str, int]:
    form = {
        "url": request.form.get("url", ""),
        "event_types": request.form.getlist("event_types"),
        "description": request.form.get("description") or None,
    }
    try:
        endpoint = NewWebhookEndpointSchema().load(form)
        created = service.create_webhook_endpoint(
            _runtime(), _actor(), endpoint["url"], endpoint["event_types"], endpoint["description"]
        )
    except ValidationError as invalid:
        return _webhooks_page(400, _invalid_form(invalid), form)
    except DomainError as refusal:
        return _webhooks_page(refusal.status, refusal.detail, form)
    # Rendered here rather than after a redirect: the secret exists only in this answer.
    return _webhooks_page(201, created=created)


@bp.get("/webhook-endpoints/<endpoint_id>")
@requires(Role.ADMIN)
def webhook_endpoint(endpoint_id: str) -> tuple[str, int]:
    """An endpoint's state and its delivery log, each delivery with a "Send again" button."""
    return _endpoint_page(endpoint_id)


@bp.post("/webhook-endpoints/<endpoint_id>/disable")
@requires(Role.ADMIN)
def disable_webhook_endpoint(endpoint_id: str) -> Response | tuple[str, int]:
    def disable(actor: Principal) -> str:
        service.disable_webhook_endpoint(_runtime(), actor, endpoint_id)
        return "The endpoint is disabled: nothing is sent to it until it is enabled again."

    return _act_on_endpoint(endpoint_id, disable)


@bp.post("/webhook-endpoints/<endpoint_id>/enable")
@requires(Role.ADMIN)
def enable_webhook_endpoint(endpoint_id: str) -> Response | tuple[str, int]:
    def enable(actor: Principal) -> str:
        service.enable_webhook_endpoint(_runtime(), actor, endpoint_id)
        return "The endpoint is enabled: deliveries resume."

    return _act_on_endpoint(endpoint_id, enable)


@bp.post("/webhook-endpoints/<endpoint_id>/delete")
@requires(Role.ADMIN)
def delete_webhook_endpoint(endpoint_id: str) -> Response | tuple[str, int]:
    try:
        service.delete_webhook_endpoint(_runtime(), _actor(), endpoint_id)
    except DomainError as refusal:
        return _endpoint_page(endpoint_id, refusal.status, refusal.detail)
    flash("The endpoint and its delivery log are deleted.")
    return redirect(url_for(".webhooks"), code=303)


@bp.post("/webhook-deliveries/<delivery_id>/resend")
@requires(Role.ADMIN)
def resend_webhook_delivery(delivery_id: str) -> Response | tuple[str, int]:
    """Back to the log the button was on: the endpoint's, or the alerts' on the webhooks page."""
    endpoint_id = request.form.get("endpoint_id") or None
    try:
        service.resend_webhook_delivery(_runtime(), _actor(), delivery_id)
    except DomainError as refusal:
        if endpoint_id is None:
            return _webhooks_page(refusal.status, refusal.detail)
        return _endpoint_page(endpoint_id, refusal.status, refusal.detail)
    flash("It will be sent again in a moment.")
    if endpoint_id is None:
        return redirect(url_for(".webhooks"), code=303)
    return redirect(url_for(".webhook_endpoint", endpoint_id=endpoint_id), code=303)


def _act_on_endpoint(endpoint_id: str, action: Callable[[Principal], str]) -> Response | tuple[str, int]:
    try:
        done = action(_actor())
    except DomainError as refusal:
        return _endpoint_page(endpoint_id, refusal.status, refusal.detail)
    flash(done)
    return redirect(url_for(".webhook_endpoint", endpoint_id=endpoint_id), code=303)


def _webhooks_page(
    status: int = 200,
    error: str | None = None,
    typed: dict[str, Any] | None = None,
    created: WebhookEndpoint | None = None,
) -> tuple[str, int]:
    runtime, actor = _runtime(), _actor()
    alert_url = runtime.settings.followup_alert_webhook_url
    body = render_template(
        "followup/webhooks.html",
        endpoints=service.list_webhook_endpoints(runtime, actor),
        event_types=EVENT_TYPES,
        created=created,
        error=error,
        typed=typed or {},
        # The host only: a Slack webhook URL is itself a secret.
        alert_host=urlsplit(alert_url).hostname if alert_url else None,
        alerts=service.list_alert_deliveries(runtime, actor, LOG_SIZE),
        delivery_label=_delivery_label,
        allow_private=runtime.settings.webhooks_allow_private,
    )
    return body, status


def _endpoint_page(endpoint_id: str, status: int = 200, error: str | None = None) -> tuple[str, int]:
    runtime, actor = _runtime(), _actor()
    try:
        endpoint = service.get_webhook_endpoint(runtime, actor, endpoint_id)
    except NotFoundError as missing:
        return render_template("followup/missing.html", message=missing.detail), 404
    body = render_template(
        "followup/webhook_endpoint.html",
        endpoint=endpoint,
        deliveries=service.list_webhook_deliveries(runtime, actor, endpoint_id, LOG_SIZE),
        delivery_label=_delivery_label,
        error=error,
    )
    return body, status


def _delivery_label(status: str) -> str:
    return DELIVERY_LABELS.get(DeliveryStatus(status), status)
