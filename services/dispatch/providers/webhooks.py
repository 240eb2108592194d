"""What providers tell us afterwards: signature checks and parsing of their webhooks, and what their
statuses mean as delivery states.

Pure functions, no I/O: the dispatch service's webhook endpoints read the request, call these, and
record the outcome (de-duplicating on `ProviderStatusEvent.provider_event_id`).
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..domain import DeliveryState
from .base import redact_contact_details

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

logger = logging.getLogger(__name__)

# The SDKs' names for these headers (twilio.request_validator.SIGNATURE_HEADER, sendgrid's
# EventWebhookHeader), written out: the SDKs load only where a signature is checked (dispatch's web process).
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
SENDGRID_REFERENCE_FIELD = "delivery_id"  # the custom arg SendGridEmailTransport sets
DEFAULT_SENDGRID_TOLERANCE = timedelta(minutes=5)
# What dispatch_provider_events stores of a report's id; SendGrid's sg_event_id is about 22 characters.
MAX_PROVIDER_EVENT_ID = 200


# --- Signatures -------------------------------------------------------------------------------


def verify_twilio_request(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when `signature` (the X-Twilio-Signature header) signs this request.

    `url` is the full public URL Twilio called, query string included (the PUBLIC_BASE_URL one, not
    what a proxy forwarded); `params` the POSTed form (a werkzeug MultiDict works as is).
    Twilio's signature has no timestamp, so a replay validates: de-duplicate on MessageSid.
    """
    if not signature:
        return False
    from twilio.request_validator import RequestValidator

    return RequestValidator(auth_token).validate(url, params, signature)


@lru_cache(maxsize=8)
def _sendgrid_public_key(public_key: str) -> EllipticCurvePublicKey:
    from sendgrid.helpers.eventwebhook import EventWebhook

    return EventWebhook().convert_public_key_to_ecdsa(public_key)


def verify_sendgrid_event_webhook(
    public_key: str,
    payload: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
    tolerance: timedelta = DEFAULT_SENDGRID_TOLERANCE,
) -> bool:
    """True when SendGrid's Event Webhook signature is valid and its timestamp is recent.

    `public_key` is the base64 key from SendGrid's Mail Settings (SENDGRID_WEBHOOK_PUBLIC_KEY);
    `payload` the raw request body, exactly as received; `signature` and `timestamp` the
    X-Twilio-Email-Event-Webhook-Signature / -Timestamp headers. The SDK's `verify_signature` does
    not look at the timestamp's age, so a captured request could be replayed forever: here a
    timestamp further than `tolerance` from `now`, in either direction, fails.

    Raises ValueError when `public_key` itself is unreadable: that is our configuration, not a bad
    request, and should fail loudly (SendGrid retries a failed post for up to 24 hours).
    """
    if not signature or not timestamp:
        return False
    try:
        signed_at = datetime.fromtimestamp(int(timestamp.strip()), UTC)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - signed_at) > tolerance:
        return False
    try:
        # The SDK concatenates and re-encodes text; a body that is not UTF-8 was not signed by SendGrid.
        body = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    key = _sendgrid_public_key(public_key)
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        return bool(EventWebhook().verify_signature(body, signature, timestamp, public_key=key))
    except (binascii.Error, ValueError):
        # Not base64, or not a DER-encoded ECDSA signature.
        return False


# --- Delivery status events -------------------------------------------------------------------


class ProviderStatus(StrEnum):
    """What a provider reports about a message, in our words. Values compare equal to plain strings."""

    PROCESSED = "processed"  # SendGrid accepted it for sending
    QUEUED = "queued"  # Twilio accepted / queued / is sending it
    DEFERRED = "deferred"  # SendGrid: the receiving server said "later"; SendGrid keeps trying
    SENT = "sent"  # Twilio handed it to the carrier
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"  # SendGrid never tried (suppressed address: bounced, unsubscribed, spam)
    UNDELIVERED = "undelivered"  # Twilio: the carrier could not deliver
    FAILED = "failed"  # Twilio: never left Twilio
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"
    SPAM_REPORTED = "spam_reported"

    @property
    def delivery_state(self) -> DeliveryState | None:
        """The delivery state this status means, or None for an engagement or opt-out signal."""
        return _DELIVERY_STATE_OF_STATUS.get(self)


# Opens and clicks move a delivery forward as the provider saw them (an image proxy or a security scanner can
# open or click too: they say the message arrived, not that a person read it). Unsubscribes and spam reports
# are opt-outs recorded beside the delivery: an opt-out after a delivery does not undeliver it.
_DELIVERY_STATE_OF_STATUS = {
    ProviderStatus.PROCESSED: DeliveryState.SENT,
    ProviderStatus.QUEUED: DeliveryState.SENT,
    ProviderStatus.DEFERRED: DeliveryState.SENT,
    ProviderStatus.SENT: DeliveryState.SENT,
    ProviderStatus.DELIVERED: DeliveryState.DELIVERED,
    ProviderStatus.BOUNCED: DeliveryState.BOUNCED,
    ProviderStatus.DROPPED: DeliveryState.DROPPED,
    ProviderStatus.UNDELIVERED: DeliveryState.UNDELIVERED,
    ProviderStatus.FAILED: DeliveryState.FAILED,
    ProviderStatus.OPENED: DeliveryState.OPENED,
    ProviderStatus.CLICKED: DeliveryState.CLICKED,
}


@dataclass(frozen=True)
class ProviderStatusEvent:
    """One provider report about one message.

    `provider_event_id` identifies the report itself (SendGrid repeats events): de-duplicate on it.
    `reference` is our delivery id when the provider echoed it back; otherwise look the delivery up
    by `provider_message_id`.
    """

    provider: str
    provider_event_id: str
    reference: str | None
    provider_message_id: str | None
    status: ProviderStatus
    occurred_at: datetime
    reason: str | None = None
    # The provider's error code for a failure: Twilio's ErrorCode, a bounce's SMTP status ("5.1.1").
    error_code: str | None = None


_SENDGRID_EVENT_STATUS = {
    "processed": ProviderStatus.PROCESSED,
    "deferred": ProviderStatus.DEFERRED,
    "delivered": ProviderStatus.DELIVERED,
    # "bounce" covers hard bounces and blocks (its `type` says which); SendGrid retries neither.
    "bounce": ProviderStatus.BOUNCED,
    "dropped": ProviderStatus.DROPPED,
    "open": ProviderStatus.OPENED,
    "click": ProviderStatus.CLICKED,
    "unsubscribe": ProviderStatus.UNSUBSCRIBED,
    "group_unsubscribe": ProviderStatus.UNSUBSCRIBED,
    "spamreport": ProviderStatus.SPAM_REPORTED,
}


def parse_sendgrid_events(payload: bytes) -> list[ProviderStatusEvent]:
    """The events of one SendGrid Event Webhook post that we track, in the order sent.

    Unknown event types (group_resubscribe, account events...) and malformed items are skipped
    with a log line, never raised: one bad item must not make SendGrid retry the whole batch.
    Raises ValueError only when the body is not a JSON array at all.
    """
    try:
        items = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("SendGrid event payload is not JSON") from exc
    if not isinstance(items, list):
        raise ValueError("SendGrid event payload is not a JSON array")
    events = []
    for position, item in enumerate(items):
        try:
            event = _sendgrid_event(item)
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            logger.warning("Skipping malformed SendGrid event #%d: %s", position, type(exc).__name__)
            continue
        if event is not None:
            events.append(event)
    return events


def _sendgrid_event(item: Any) -> ProviderStatusEvent | None:
    if not isinstance(item, dict):
        raise TypeError("event is not an object")
    status = _SENDGRID_EVENT_STATUS.get(item["event"])
    if status is None:
        return None
    occurred_at = datetime.fromtimestamp(int(item["timestamp"]), UTC)
    # "14c5d75ce93.dfd.64b469.filter0001..." starts with the X-Message-Id the send call returned.
    # Asynchronous bounces come without it: then only the delivery_id custom arg links the event.
    raw_message_id = item.get("sg_message_id")
    message_id = _optional_text(str(raw_message_id).split(".", 1)[0]) if raw_message_id else None
    event_id = item.get("sg_event_id")
    if not event_id:
        # Every current event carries sg_event_id; should one not, these fields are equal across
        # SendGrid's repeats of it, which is what de-duplication needs.
        event_id = f"{raw_message_id}:{item['event']}:{item['timestamp']}"
    if len(str(event_id)) > MAX_PROVIDER_EVENT_ID:
        raise ValueError("event id longer than any SendGrid sends")
    return ProviderStatusEvent(
        provider="sendgrid",
        provider_event_id=str(event_id),
        reference=_sendgrid_reference(item),
        provider_message_id=message_id,
        status=status,
        occurred_at=occurred_at,
        # Bounce reasons quote the receiving server, which often names the address.
        reason=_optional_text(redact_contact_details(str(item.get("reason") or item.get("response") or ""))),
        error_code=_sendgrid_error_code(item) if status in _SENDGRID_FAILURES else None,
    )


_SENDGRID_FAILURES = (ProviderStatus.BOUNCED, ProviderStatus.DROPPED)


def _sendgrid_error_code(item: dict[str, Any]) -> str | None:
    """A bounce's SMTP status ("5.1.1"), else its classification ("Invalid Address")."""
    code = _optional_text(item.get("status")) or _optional_text(item.get("bounce_classification"))
    return code[:32] if code else None


def _sendgrid_reference(item: dict[str, Any]) -> str | None:
    # Custom args arrive as top-level keys; some integrations nest them under unique_args.
    reference = item.get(SENDGRID_REFERENCE_FIELD)
    if reference is None and isinstance(item.get("unique_args"), dict):
        reference = item["unique_args"].get(SENDGRID_REFERENCE_FIELD)
    return _optional_text(reference)


_TWILIO_MESSAGE_STATUS = {
    "accepted": ProviderStatus.QUEUED,
    "scheduled": ProviderStatus.QUEUED,
    "queued": ProviderStatus.QUEUED,
    "sending": ProviderStatus.QUEUED,
    "sent": ProviderStatus.SENT,
    "delivered": ProviderStatus.DELIVERED,
    "read": ProviderStatus.DELIVERED,  # WhatsApp/RCS: read implies delivered
    "undelivered": ProviderStatus.UNDELIVERED,
    "failed": ProviderStatus.FAILED,
    "canceled": ProviderStatus.FAILED,
}


def parse_twilio_status(
    params: Mapping[str, str], reference: str | None = None, received_at: datetime | None = None
) -> ProviderStatusEvent:
    """A Twilio status callback (form fields MessageSid, MessageStatus, ErrorCode) as an event.

    `reference` is the delivery id we put in the callback URL's query string. Twilio's callback
    carries no time and no event id: `occurred_at` is `received_at` (default now) and the event id
    is "<MessageSid>:<status>", so a repeated callback de-duplicates.
    Raises ValueError when MessageSid or MessageStatus is missing or the status is unknown.
    """
    message_sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    raw_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not message_sid or not raw_status:
        raise ValueError("Twilio status callback without MessageSid or MessageStatus")
    status = _TWILIO_MESSAGE_STATUS.get(raw_status)
    if status is None:
        raise ValueError(f"Unknown Twilio message status {raw_status!r}")
    error_code = (params.get("ErrorCode") or "").strip()
    return ProviderStatusEvent(
        provider="twilio",
        provider_event_id=f"{message_sid}:{raw_status}",
        reference=reference or None,
        provider_message_id=message_sid,
        status=status,
        occurred_at=received_at or datetime.now(UTC),
        reason=f"Twilio error {error_code}" if error_code else None,
        error_code=error_code[:32] or None,
    )


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# --- Inbound SMS ------------------------------------------------------------------------------


class SmsReplyKind(StrEnum):
    """What an inbound SMS is, before anyone reads it as a survey answer."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    ANSWER = "answer"


# Twilio's default keywords. Twilio acts on them only as the whole message ("STOP PLEASE" is not
# an opt-out), so neither do we; otherwise our record and Twilio's block list would disagree.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})


def classify_sms_reply(body: str) -> SmsReplyKind:
    """OPT_OUT / OPT_IN / HELP for Twilio's keywords as the whole message, else ANSWER.

    Case and surrounding whitespace are ignored, and so is trailing punctuation ("Stop." or
    "stop!"): when in doubt, honouring a wish to stop is the safe side.
    """
    keyword = body.strip().rstrip(".!").strip().upper()
    if keyword in OPT_OUT_KEYWORDS:
        return SmsReplyKind.OPT_OUT
    if keyword in OPT_IN_KEYWORDS:
        return SmsReplyKind.OPT_IN
    if keyword in HELP_KEYWORDS:
        return SmsReplyKind.HELP
    return SmsReplyKind.ANSWER
