"""The dispatch service's HTTP API: provider webhooks and delivery states."""

from __future__ import annotations

import logging

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.clock import utcnow
from shared.http import OPEN_TO_ALL, problem
from shared.identity.web import public

from . import routes, service
from .providers.webhooks import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    SmsReplyKind,
    parse_sendgrid_events,
    parse_twilio_status,
    verify_sendgrid_event_webhook,
    verify_twilio_request,
)
from .runtime import DispatchRuntime
from .schemas import (
    DeliveryQuerySchema,
    DeliverySchema,
    SendingWindowQuerySchema,
    SendingWindowSchema,
    TwilioFormSchema,
)

log = logging.getLogger(__name__)

blp = Blueprint(
    "deliveries", __name__, url_prefix="/v1", description="Deliveries of invitations and other messages"
)
# Its paths are in routes: they are configured in the providers' consoles and sent with each SMS.
webhooks = Blueprint("webhooks", __name__, description="Provider webhooks")


def _runtime() -> DispatchRuntime:
    return current_app.extensions["closeloop.dispatch"]


@blp.route("/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    def get(self, query):
        """The deliveries of one invitation, or of whatever else asked for messages, with their states."""
        if "source_id" in query:
            return service.deliveries_requested_by(_runtime(), query["source_id"])
        if "phone" in query:
            return service.deliveries_to_phone(_runtime(), query["phone"])
        return service.deliveries_for(_runtime(), query["invitation_id"])


@blp.route("/sending-window")
class SendingWindow(MethodView):
    @blp.arguments(SendingWindowQuerySchema, location="query")
    @blp.response(200, SendingWindowSchema)
    def get(self, query):
        """When a message on this channel to a customer in this time zone would go out now."""
        return service.sending_window(_runtime(), query["channel"], query["timezone"])


def _twilio_request_is_signed() -> bool:
    runtime = _runtime()
    if not runtime.settings.twilio_auth_token:
        return False
    # Twilio signs the public URL it called, which a proxy in front of us may have rewritten.
    url = runtime.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode()
    return verify_twilio_request(
        runtime.settings.twilio_auth_token, url, request.form, request.headers.get(TWILIO_SIGNATURE_HEADER)
    )


@webhooks.route(routes.TWILIO_INBOUND_SMS.rule, methods=["POST"])
@webhooks.doc(summary="Twilio inbound SMS (form-encoded, X-Twilio-Signature)", **OPEN_TO_ALL)
@public  # signed by Twilio (X-Twilio-Signature), checked below
def twilio_inbound_sms():
    if not _twilio_request_is_signed():
        return problem(401, "Unauthorized", "X-Twilio-Signature does not match")
    sid, sender = request.form.get("MessageSid"), request.form.get("From")
    if not sid or not sender:
        return problem(400, "Bad request", "MessageSid and From are required")
    if errors := TwilioFormSchema().validate(request.form):
        return problem(400, "Bad request", "Some fields are invalid.", errors)
    kind = service.receive_sms(_runtime(), sid, sender, request.form.get("Body", ""))
    # Twilio answers STOP and START itself (Advanced Opt-Out); HELP with our text unless SMS_HELP_TEXT=none.
    from twilio.twiml.messaging_response import MessagingResponse  # with the first inbound SMS

    reply = MessagingResponse()
    help_text = service.help_reply(_runtime()) if kind is SmsReplyKind.HELP else None
    if help_text:
        reply.message(help_text)
    return Response(str(reply), mimetype="application/xml")


@webhooks.route(routes.TWILIO_STATUS.rule, methods=["POST"])
@webhooks.doc(summary="Twilio message status callback", **OPEN_TO_ALL)
@public  # signed by Twilio
def twilio_status():
    if not _twilio_request_is_signed():
        return problem(401, "Unauthorized", "X-Twilio-Signature does not match")
    if errors := TwilioFormSchema().validate(request.form):
        return problem(400, "Bad request", "Some fields are invalid.", errors)
    try:
        report = parse_twilio_status(request.form, reference=request.args.get(routes.TWILIO_STATUS_REFERENCE))
    except ValueError as error:
        return problem(400, "Bad request", str(error))
    service.apply_status_event(_runtime(), report)
    return "", 204


@webhooks.route(routes.SENDGRID_EVENTS.rule, methods=["POST"])
@webhooks.doc(summary="SendGrid signed Event Webhook", **OPEN_TO_ALL)
@public  # signed by SendGrid's Event Webhook key
def sendgrid_events():
    public_key = _runtime().settings.sendgrid_webhook_public_key
    payload = request.get_data()
    if not public_key or not verify_sendgrid_event_webhook(
        public_key,
        payload,
        request.headers.get(SENDGRID_SIGNATURE_HEADER),
        request.headers.get(SENDGRID_TIMESTAMP_HEADER),
        now=utcnow(),
    ):
        return problem(401, "Unauthorized", "The Event Webhook signature does not match or is too old")
    try:
        reports = parse_sendgrid_events(payload)
    except ValueError as error:  # signed, yet not a JSON array: retrying will not mend it
        return problem(400, "Bad request", str(error), {"body": ["Must be a JSON array of events."]})
    applied = sum(service.apply_status_event(_runtime(), report) for report in reports)
    log.info("applied %d SendGrid events", applied)
    return "", 204
