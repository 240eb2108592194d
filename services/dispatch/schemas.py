"""The dispatch API's payloads."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from shared.settings import MESSAGE_CHANNELS
from shared.sms import E164

from .quiet_hours import is_time_zone

STATES = (
    "scheduled (queued), quiet_hours (waiting for the customer's sending window), sending, unknown (the "
    "provider may have it and cannot be asked: not sent again), sent, delivered, opened, clicked, answered; "
    "or an end: undelivered, bounced, dropped, failed, suppressed (opted out), cancelled (a reminder no "
    "longer needed). failure_reason says why in a sentence, error_code is the provider's code."
)


def _time_zone(value: str) -> None:
    if not is_time_zone(value):
        raise ValidationError("Not an IANA time zone, such as Europe/Istanbul.")


class DeliveryQuerySchema(Schema):
    invitation_id = fields.String(
        metadata={"description": "The deliveries of this survey invitation, its reminders included."}
    )
    source_id = fields.String(
        metadata={
            "description": "The deliveries this invitation, referral request, review request or resolved "
            "followup task asked for."
        }
    )
    phone = fields.String(
        validate=E164,
        metadata={"description": "The text messages to this number (E.164), newest first, at most 100."},
    )

    @validates_schema
    def _one_of_them(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if sum(name in data for name in ("invitation_id", "source_id", "phone")) != 1:
            raise ValidationError("Give one of invitation_id, source_id or phone.", "invitation_id")


class DeliverySchema(Schema):
    id = fields.String()
    source_id = fields.String()
    invitation_id = fields.String(allow_none=True)
    kind = fields.String(
        metadata={"description": "invitation, reminder, referral, review, close_loop or reprompt"}
    )
    channel = fields.String()
    status = fields.String(metadata={"description": STATES})
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When it is due: a retry, the sending window's opening."}
    )
    provider = fields.String(allow_none=True)
    failure_reason = fields.String(
        allow_none=True, metadata={"description": "Why it did not reach the customer, in a sentence."}
    )
    error_code = fields.String(allow_none=True, metadata={"description": "The provider's error code."})
    last_error = fields.String(allow_none=True, metadata={"description": "The provider's own words."})
    timezone = fields.String(
        allow_none=True, metadata={"description": "The customer's time zone its sending window is in."}
    )
    expires_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class SendingWindowQuerySchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(MESSAGE_CHANNELS))
    timezone = fields.String(
        required=True,
        validate=[validate.Length(max=64), _time_zone],
        metadata={"description": "An IANA time zone, such as Europe/Istanbul."},
    )


class SendingWindowSchema(Schema):
    channel = fields.String()
    timezone = fields.String()
    window = fields.String(
        allow_none=True, metadata={"description": "Local sending hours, such as 08:00-21:00; null: any hour."}
    )
    open_now = fields.Boolean()
    next_sending_time = fields.AwareDateTime(
        metadata={"description": "Now when open, else when the window next opens (UTC)."}
    )


class TwilioFormSchema(Schema):
    """The lengths of a Twilio webhook's fields we store (Twilio sends many more, left alone)."""

    class Meta:
        unknown = EXCLUDE

    MessageSid = fields.String(validate=validate.Length(max=64))
    SmsSid = fields.String(validate=validate.Length(max=64))
    # E.164 is at most 16 characters; a WhatsApp sender adds "whatsapp:".
    From = fields.String(validate=validate.Length(max=40))
    # Twilio joins a long SMS into one Body of at most 1,600 characters.
    Body = fields.String(validate=validate.Length(max=1600))
