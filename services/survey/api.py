"""The survey service's HTTP API: CRM events in, their decisions, trigger rules and NPS out."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.http import OPEN_TO_ALL, DomainError, problem
from shared.identity.web import public, requires
from shared.principal import Role
from shared.signing import WebhookVerificationError, verify

from . import service
from .domain import SURVEYED_TOUCHPOINTS
from .schemas import (
    EVENT_TYPE_PATTERN,
    AnswerMessageSchema,
    BrandOutSchema,
    BrandSchema,
    CrmEventSchema,
    DecisionSchema,
    DecisionsQuerySchema,
    EventOutcomeSchema,
    FollowUpResultsSchema,
    MessageTemplateOutSchema,
    MessageTemplateSchema,
    NpsQuerySchema,
    NpsSchema,
    TriggerRuleOutSchema,
    TriggerRuleSchema,
)
from .wording import LANGUAGE_PATTERN

log = logging.getLogger(__name__)

blp = Blueprint("events", __name__, url_prefix="/v1", description="CRM events and NPS analytics")


def _runtime():
    return current_app.extensions["closeloop.survey"]


@blp.before_request
def _check_signature():
    # Only the CRM event intake is signed; analytics are read by staff (sign-in comes with the web app).
    if request.endpoint != "events.CrmEvents":
        return None
    try:
        verify(_runtime().settings.webhook_secret, request.headers, request.get_data())
    except WebhookVerificationError as error:
        log.info("refused CRM event: %s", error)
        return problem(401, "Unauthorized", str(error))
    return None


@blp.route("/events")
@public  # signed by the CRM (Standard Webhooks), checked above
class CrmEvents(MethodView):
    @blp.arguments(CrmEventSchema)
    @blp.response(202, EventOutcomeSchema, description="Accepted: the outcome says whether a survey follows.")
    @blp.alt_response(200, schema=EventOutcomeSchema, description="This event id was accepted before.")
    @blp.alt_response(401, description="Missing or wrong Standard Webhooks signature.")
    @blp.doc(**OPEN_TO_ALL)
    def post(self, event):
        """Receive a signed CRM event (purchase.completed, support_call.ended, site.visited)."""
        outcome = service.accept_crm_event(_runtime(), event)
        return asdict(outcome), 200 if outcome.duplicate else 202


@blp.route("/nps")
class Nps(MethodView):
    @blp.arguments(NpsQuerySchema, location="query")
    @blp.response(200, NpsSchema)
    def get(self, query):
        """Net Promoter Score over all responses, or one touchpoint's."""
        summary = service.nps(_runtime(), query["touchpoint"])
        return {**asdict(summary), "nps": summary.nps}


@blp.route("/nps/follow-ups")
class FollowUpResults(MethodView):
    @blp.response(200, FollowUpResultsSchema)
    def get(self):
        """Follow-up surveys after resolved followup tasks: how many were answered, how many scored higher."""
        return asdict(service.follow_up_results(_runtime()))


@blp.route("/events/<event_id>")
class EventDecision(MethodView):
    @blp.response(200, DecisionSchema)
    def get(self, event_id):
        """One CRM event's decision and why (event_id: Closeloop's id, as POST /v1/events answered)."""
        return asdict(service.event_decision(_runtime(), event_id))


@blp.route("/customers/<external_id>/decisions")
class CustomerDecisions(MethodView):
    @blp.arguments(DecisionsQuerySchema, location="query")
    @blp.response(200, DecisionSchema(many=True))
    def get(self, query, external_id):
        """Every decision about a customer's CRM events, newest first: invited, delayed or skipped, why."""
        return [
            asdict(record) for record in service.customer_decisions(_runtime(), external_id, query["limit"])
        ]


class InvalidEventType(DomainError):
    status = 422
    title = "Unprocessable Entity"


def _checked_event_type(event_type: str) -> str:
    if not re.fullmatch(EVENT_TYPE_PATTERN, event_type):
        raise InvalidEventType(
            "Not an event type.",
            {"event_type": ["Lower-case letters, digits, '.', '_' and '-', at most 64."]},
        )
    return event_type


@blp.route("/trigger-rules")
class TriggerRules(MethodView):
    @blp.response(200, TriggerRuleOutSchema(many=True))
    def get(self):
        """Every trigger rule in force: stored ones and the built-in defaults of the known event types."""
        return service.list_trigger_rules(_runtime())


@blp.route("/trigger-rules/<event_type>")
class TriggerRule(MethodView):
    @blp.response(200, TriggerRuleOutSchema)
    def get(self, event_type):
        """One event type's trigger rule."""
        return service.get_trigger_rule(_runtime(), _checked_event_type(event_type))

    @requires(Role.MANAGER)
    @blp.arguments(TriggerRuleSchema)
    @blp.response(200, TriggerRuleOutSchema)
    @blp.alt_response(403, description="Only managers and admins change trigger rules.")
    def put(self, rule, event_type):
        """Create or replace the trigger rule of a known or custom event type (managers only)."""
        return service.put_trigger_rule(_runtime(), _checked_event_type(event_type), rule)


@blp.route("/invitations/<invitation_id>/answer-messages")
class AnswerMessages(MethodView):
    @blp.response(200, AnswerMessageSchema(many=True))
    def get(self, invitation_id):
        """Everything the customer wrote about an invitation, oldest first, as written and as it was read.

        SMS replies (unreadable ones too) and comments sent from the answer page; the response holds the
        latest comment, these are its history.
        """
        return service.answer_history(_runtime(), invitation_id)


# --- Wording: message templates and the brand ---------------------------------------------------------


class InvalidTemplateKey(DomainError):
    status = 422
    title = "Unprocessable Entity"


def _checked_template_key(touchpoint: str, locale: str) -> tuple[str, str]:
    errors = {}
    if touchpoint not in SURVEYED_TOUCHPOINTS:
        errors["touchpoint"] = [f"One of: {', '.join(SURVEYED_TOUCHPOINTS)}."]
    if not re.fullmatch(LANGUAGE_PATTERN, locale):
        errors["locale"] = ["A two-letter language code, such as en or tr."]
    if errors:
        raise InvalidTemplateKey("Not a template.", errors)
    return touchpoint, locale


@blp.route("/templates")
class MessageTemplates(MethodView):
    @blp.response(200, MessageTemplateOutSchema(many=True))
    def get(self):
        """Every touchpoint's survey wording in English, Turkish and any language staff added."""
        return service.list_templates(_runtime())


@blp.route("/templates/<touchpoint>/<locale>")
class MessageTemplate(MethodView):
    @blp.response(200, MessageTemplateOutSchema)
    def get(self, touchpoint, locale):
        """One wording; a language without one shows English's, which its customers get meanwhile."""
        return service.get_template(_runtime(), *_checked_template_key(touchpoint, locale))

    @requires(Role.MANAGER)
    @blp.arguments(MessageTemplateSchema)
    @blp.response(200, MessageTemplateOutSchema)
    @blp.alt_response(403, description="Only managers and admins change templates.")
    def put(self, template, touchpoint, locale):
        """Reword a touchpoint's survey in a language (managers); 422 naming the field over the SMS budget."""
        return service.put_template(_runtime(), *_checked_template_key(touchpoint, locale), template)

    @requires(Role.MANAGER)
    @blp.response(204)
    @blp.alt_response(403, description="Only managers and admins change templates.")
    def delete(self, touchpoint, locale):
        """Back to the shipped wording (managers)."""
        service.reset_template(_runtime(), *_checked_template_key(touchpoint, locale))


@blp.route("/brand")
class Brand(MethodView):
    @blp.response(200, BrandOutSchema)
    def get(self):
        """The brand name and colour customers see on the answer page."""
        return service.get_brand(_runtime())

    @requires(Role.MANAGER)
    @blp.arguments(BrandSchema)
    @blp.response(200, BrandOutSchema)
    @blp.alt_response(403, description="Only managers and admins change the brand.")
    def put(self, brand):
        """Set the brand name and colour (managers); null returns to BRAND_NAME and BRAND_COLOR."""
        return service.put_brand(_runtime(), brand["name"], brand["color"])
