"""The survey service's HTTP API: CRM events in, their decisions, trigger rules and NPS out."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError
from werkzeug.urls import iri_to_uri

from shared.clock import utcnow
from shared.edge import parsed_json_body
from shared.http import OPEN_TO_ALL, AnswerResponse, DomainError, problem
from shared.identity.web import public, requires
from shared.principal import Role
from shared.settings import DEFAULT_SOURCE, SOURCE_NAME
from shared.signing import WebhookVerificationError, verify
from shared.validation import StorableString

from . import service, sources
from .customer_schemas import EXTERNAL_ID, CustomerPutSchema, CustomerSchema, CustomersQuerySchema
from .domain import SURVEYED_TOUCHPOINTS
from .schemas import (
    EVENT_TYPE_PATTERN,
    RECEIPT_VERSION,
    AnswerMessageSchema,
    BrandOutSchema,
    BrandSchema,
    CrmEventSchema,
    DecisionSchema,
    DecisionsQuerySchema,
    EventReceiptSchema,
    FollowUpResultsSchema,
    MessageTemplateOutSchema,
    MessageTemplateSchema,
    NpsQuerySchema,
    NpsSchema,
    TriggerRuleOutSchema,
    TriggerRuleSchema,
    VendorEventSchema,
    load_crm_event_quickly,
)
from .source_schemas import ShopifyOrderSchema, SourcePutSchema, SourceSchema, ZendeskEventSchema
from .sources import SourceFormat
from .unit_of_work import body_digest
from .wording import LANGUAGE_PATTERN

log = logging.getLogger(__name__)

TOTAL_HEADER = "X-Total-Count"

blp = Blueprint("events", __name__, url_prefix="/v1", description="CRM events and NPS analytics")


def _runtime():
    return current_app.extensions["closeloop.survey"]


# The signed intake's endpoints, and the format each takes; everything else here is for staff.
_SIGNED_ENDPOINTS = {
    "events.CrmEvents": SourceFormat.STANDARD,
    "events.SourceCrmEvents": SourceFormat.STANDARD,
    "events.ShopifyOrders": SourceFormat.SHOPIFY,
    "events.ZendeskEvents": SourceFormat.ZENDESK,
}


@blp.before_request
def _check_signature():
    """Each source signs with its own secret in its own scheme; nothing is parsed before it is verified."""
    req = request._get_current_object()  # once, not through the proxy each time
    endpoint = req.endpoint
    source_format = _SIGNED_ENDPOINTS.get(endpoint or "")
    if source_format is None:
        return None
    if endpoint == "events.CrmEvents":
        secret = _runtime().settings.webhook_secret
    else:
        source = service.find_source(_runtime(), (req.view_args or {}).get("source", ""))
        if source is None or source.format != source_format:
            return problem(404, "Not Found", f"No {source_format} source of that name.")
        secret = source.secret
    try:
        if source_format == SourceFormat.STANDARD:
            verify(secret, req.headers, req.get_data())
        elif source_format == SourceFormat.SHOPIFY:
            sources.verify_shopify(secret, req.headers, req.get_data())
        else:
            sources.verify_zendesk(secret, req.headers, req.get_data(), utcnow())
    except WebhookVerificationError as error:
        log.info("refused CRM event: %s", error)
        return problem(401, "Unauthorized", str(error))
    return None


# The intake's schemas, built once: webargs builds a schema given as a class anew for every request.
_CRM_EVENT, _VENDOR_EVENT = CrmEventSchema(), VendorEventSchema()
_SHOPIFY_ORDER, _ZENDESK_EVENT = ShopifyOrderSchema(), ZendeskEventSchema()
_ACCEPTED = "Stored (status accepted); whether to survey is decided right after, at links.event."
_DUPLICATE = "This event id was accepted before (status duplicate): nothing new is stored."
_LOCATION = {"Location": {"description": "The event: GET it for its decision.", "schema": {"type": "string"}}}


# Where an app keeps its events' URL up to the id, by the request's script root: url_for's own answer for
# an id it does not quote, built once (about 10 us a request).
_EVENT_URL_PREFIXES = "closeloop.survey.event_url_prefixes"
_PLAIN_EVENT_ID = re.compile(r"[A-Za-z0-9_.-]+")


def _event_url(event_id: str) -> tuple[str, bool]:
    """The event's URL (GET it for its decision), as ``url_for("events.EventDecision")`` builds it, and
    whether it is a URI already (``iri_to_uri`` gives it back unchanged: a plain id after a URI prefix)."""
    script_root = request.script_root
    prefixes: dict[str, str] = current_app.extensions.setdefault(_EVENT_URL_PREFIXES, {})
    prefix = prefixes.get(script_root)
    plain = _PLAIN_EVENT_ID.fullmatch(event_id) is not None
    if prefix is not None and plain:
        return prefix + event_id, True
    base = _runtime().settings.public_url_for("survey")
    location = base + url_for("events.EventDecision", event_id=event_id)
    if plain and location.endswith("/" + event_id) and iri_to_uri(location) == location:
        prefixes[script_root] = location[: -len(event_id)]
        return location, True
    return location, False


def _receipt(receipt: service.EventReceipt):
    """The intake's answer (EventReceiptSchema, version 2): 202, or 200 for a duplicate; links the event."""
    body, status, location, _ = _receipt_parts(receipt)
    return body, status, {"Location": location}


def _receipt_parts(receipt: service.EventReceipt) -> tuple[dict, int, str, bool]:
    """The answer's body, status, Location, and whether that Location is a URI already."""
    location, is_uri = _event_url(receipt.event_id)
    body = {
        "version": RECEIPT_VERSION,
        "status": "duplicate" if receipt.duplicate else "accepted",
        "event_id": receipt.event_id,
        "duplicate": receipt.duplicate,
        "links": {"event": location},
    }
    return body, 200 if receipt.duplicate else 202, location, is_uri


class _SignedIntake(MethodView):
    """The intake of events in our format (the hot path, issue 19). A valid event is stored and answered on a
    lean path: the body the edge parsed, validated by the same schema, the same receipt. Anything else (an
    invalid body, not JSON) goes through the documented ``post`` below, so flask-smorest and webargs answer
    it exactly as before; that view also documents the route."""

    def dispatch_request(self, **kwargs):
        if request.method == "POST":
            answer = _lean_intake(kwargs.get("source", DEFAULT_SOURCE))
            if answer is not None:
                return answer
        return super().dispatch_request(**kwargs)


def _lean_intake(source: str) -> Response | None:
    """The receipt for a valid event, or None when the documented view must answer (it refuses the event)."""
    body = parsed_json_body()
    if not isinstance(body, dict):
        return None
    # A CRM's retry of an event stored a moment ago, with the very bytes validated then: the same answer.
    digest = body_digest(request.get_data(cache=True))
    external_id = body.get("id")
    receipt = None
    if type(external_id) is str:
        receipt = service.repeated_crm_event(_runtime(), source, external_id, digest)
    if receipt is None:
        event = load_crm_event_quickly(_CRM_EVENT, body)
        if event is None:
            digest = None  # a custom type: whether it is valid depends on trigger rules, not on the bytes
            try:
                event = _CRM_EVENT.load(body)  # as webargs does (JSON: the schema's own unknown=INCLUDE)
            except ValidationError:
                return None
        receipt = service.accept_crm_event(_runtime(), event, source, digest)
    content, status, location, is_uri = _receipt_parts(receipt)
    # What flask-smorest's response wrapper makes of it: EventReceiptSchema dumps these fields as they are.
    response = current_app.json.response(content)
    response.status_code = status
    response.headers.add("Location", location)  # a new response: the only Location
    if is_uri and isinstance(response, AnswerResponse):
        response.uri_location = location  # sent as it is: Werkzeug would not change it
    return response


@blp.route("/events")
@public  # signed by the CRM (Standard Webhooks), checked above
class CrmEvents(_SignedIntake):
    @blp.arguments(_CRM_EVENT)
    @blp.response(202, EventReceiptSchema, headers=_LOCATION, description=_ACCEPTED)
    @blp.alt_response(200, schema=EventReceiptSchema, headers=_LOCATION, description=_DUPLICATE)
    @blp.alt_response(401, description="Missing or wrong Standard Webhooks signature.")
    @blp.doc(**OPEN_TO_ALL)
    def post(self, event):
        """Receive a signed CRM event (purchase.completed, support_call.ended, site.visited).

        The event is stored and answered at once; whether to survey is decided right after (read it at the
        answer's links.event, GET /v1/events/{id}).
        """
        return _receipt(service.accept_crm_event(_runtime(), event))


@blp.route("/sources/<source>/events")
@public  # signed with the source's own Standard Webhooks secret, checked above
class SourceCrmEvents(_SignedIntake):
    @blp.arguments(_CRM_EVENT)
    @blp.response(202, EventReceiptSchema, headers=_LOCATION, description=_ACCEPTED)
    @blp.alt_response(200, schema=EventReceiptSchema, headers=_LOCATION, description=_DUPLICATE)
    @blp.alt_response(401, description="Missing or wrong Standard Webhooks signature.")
    @blp.alt_response(404, description="No source of this name in the standard format.")
    @blp.doc(**OPEN_TO_ALL)
    def post(self, event, source):
        """Receive a CRM event from a named source, in our format, signed with that source's secret."""
        return _receipt(service.accept_crm_event(_runtime(), event, source))


@blp.route("/sources/<source>/shopify")
@public  # X-Shopify-Hmac-Sha256, checked above
class ShopifyOrders(MethodView):
    @blp.arguments(_SHOPIFY_ORDER)
    @blp.response(202, EventReceiptSchema, headers=_LOCATION, description="Accepted as purchase.completed.")
    @blp.alt_response(
        200,
        schema=EventReceiptSchema,
        description="A repeat of this X-Shopify-Webhook-Id, or a topic not surveyed (status ignored).",
    )
    @blp.alt_response(401, description="Missing or wrong X-Shopify-Hmac-Sha256.")
    @blp.alt_response(404, description="No Shopify source of this name.")
    @blp.doc(**OPEN_TO_ALL)
    def post(self, order, source):
        """Receive a Shopify order webhook (orders/paid and orders/fulfilled are a purchase.completed).

        Signed with the app's secret (X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body);
        X-Shopify-Webhook-Id is the de-duplication key and X-Shopify-Topic the event.
        """
        return _accept_vendor_event(sources.shopify_event(source, request.headers, order), source)


@blp.route("/sources/<source>/zendesk")
@public  # X-Zendesk-Webhook-Signature, checked above
class ZendeskEvents(MethodView):
    @blp.arguments(_ZENDESK_EVENT)
    @blp.response(
        202,
        EventReceiptSchema,
        headers=_LOCATION,
        description="A solved ticket, accepted as support_call.ended.",
    )
    @blp.alt_response(
        200,
        schema=EventReceiptSchema,
        description="A repeat of this event id, or an event that is not surveyed (status ignored).",
    )
    @blp.alt_response(401, description="Missing, wrong or stale X-Zendesk-Webhook-Signature.")
    @blp.alt_response(404, description="No Zendesk source of this name.")
    @blp.doc(**OPEN_TO_ALL)
    def post(self, payload, source):
        """Receive a Zendesk webhook (event subscription): a ticket status changed to solved is surveyed.

        Signed with the webhook's signing secret: X-Zendesk-Webhook-Signature is base64 HMAC-SHA256 of
        X-Zendesk-Webhook-Signature-Timestamp followed by the raw body; five minutes' tolerance.
        """
        return _accept_vendor_event(sources.zendesk_event(source, payload), source)


class InvalidVendorEvent(DomainError):
    status = 422
    title = "Unprocessable Entity"


def _accept_vendor_event(mapped: dict | sources.Ignored, source: str):
    if isinstance(mapped, sources.Ignored):
        # Acknowledged, so the vendor does not retry (and disable the webhook) over an event we do not use.
        return {
            "version": RECEIPT_VERSION,
            "status": "ignored",
            "duplicate": False,
            "reason": mapped.reason,
        }, 200
    try:
        event = _VENDOR_EVENT.load(mapped)
    except ValidationError as error:
        raise InvalidVendorEvent(
            "The payload does not make a CRM event; errors name the event's fields.", error.messages
        ) from error
    return _receipt(service.accept_crm_event(_runtime(), event, source))


@blp.route("/sources")
class Sources(MethodView):
    @requires(Role.MANAGER)
    @blp.response(200, SourceSchema(many=True))
    @blp.alt_response(403, description="Only managers and admins see the sources.")
    def get(self):
        """The CRM event sources and where each posts (the default, CLOSELOOP_SOURCES', staff's); never a
        secret."""
        return [asdict(source) for source in service.list_sources(_runtime())]


class InvalidSourceName(DomainError):
    status = 422
    title = "Unprocessable Entity"


def _checked_source_name(name: str) -> str:
    if not SOURCE_NAME.fullmatch(name):
        raise InvalidSourceName(
            "Not a source name.", {"name": ["Lower-case letters, digits, '-' and '_', at most 32."]}
        )
    return name


@blp.route("/sources/<name>")
class Source(MethodView):
    @requires(Role.MANAGER)
    @blp.arguments(SourcePutSchema)
    @blp.response(200, SourceSchema, description="The source's format or secret was changed.")
    @blp.alt_response(201, schema=SourceSchema, description="The source was added.")
    @blp.alt_response(403, description="Only managers and admins change sources.")
    @blp.alt_response(409, description="The source is configured in the settings (or is the default).")
    def put(self, fields, name):
        """Add a CRM event source, or change its format or secret (write-only: never shown again)."""
        source, added = service.put_source(
            _runtime(), _checked_source_name(name), fields["format"], fields["secret"]
        )
        return asdict(source), 201 if added else 200

    @requires(Role.MANAGER)
    @blp.response(204)
    @blp.alt_response(403, description="Only managers and admins remove sources.")
    @blp.alt_response(409, description="The source is configured in the settings (or is the default).")
    def delete(self, name):
        """Remove a source added here: events it sent stay, new ones are refused (404)."""
        service.delete_source(_runtime(), name)


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
            asdict(record)
            for record in service.customer_decisions(
                _runtime(), _checked_external_id(external_id), query["limit"]
            )
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


class InvalidExternalId(DomainError):
    status = 422
    title = "Unprocessable Entity"


def _checked_external_id(external_id: str) -> str:
    try:
        StorableString(validate=EXTERNAL_ID).deserialize(external_id)
    except ValidationError as error:
        raise InvalidExternalId("Not a customer id.", {"external_id": error.messages}) from error
    return external_id


@blp.route("/customers")
class Customers(MethodView):
    @blp.arguments(CustomersQuerySchema, location="query")
    @blp.response(
        200,
        CustomerSchema(many=True),
        headers={
            TOTAL_HEADER: {
                "description": "How many customers match, on every page.",
                "schema": {"type": "integer"},
            }
        },
    )
    def get(self, query):
        """Customers by text (name, email, phone, external id) and attribute values, by external id."""
        attributes = dict(pair.split("=", 1) for pair in query["attribute"])
        page = service.list_customers(_runtime(), query["q"], attributes, query["page"], query["page_size"])
        return [asdict(customer) for customer in page.items], {TOTAL_HEADER: str(page.total)}


@blp.route("/customers/<external_id>")
class Customer(MethodView):
    @blp.response(200, CustomerSchema)
    def get(self, external_id):
        """One customer: contact details, consent, attributes, and the channels they opted out of."""
        return asdict(service.get_customer(_runtime(), _checked_external_id(external_id)))

    @blp.arguments(CustomerPutSchema)
    @blp.response(200, CustomerSchema, description="The customer was updated.")
    @blp.alt_response(201, schema=CustomerSchema, description="The customer was created.")
    def put(self, fields, external_id):
        """Create or replace a customer (phone numbers stored in E.164; a bad value is a 422 naming it)."""
        customer, created = service.put_customer(_runtime(), _checked_external_id(external_id), fields)
        return asdict(customer), 201 if created else 200
