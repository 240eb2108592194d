"""The dispatch API's payloads."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema


class DeliveryQuerySchema(Schema):
    invitation_id = fields.String(metadata={"description": "The deliveries of this survey invitation."})
    source_id = fields.String(
        metadata={
            "description": "The deliveries this invitation, referral request, review request or resolved "
            "followup task asked for."
        }
    )

    @validates_schema
    def _one_of_them(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("invitation_id" in data) == ("source_id" in data):
            raise ValidationError("Give either invitation_id or source_id.", "invitation_id")


class DeliverySchema(Schema):
    id = fields.String()
    source_id = fields.String()
    invitation_id = fields.String(allow_none=True)
    kind = fields.String(metadata={"description": "invitation, referral, review or close_loop"})
    channel = fields.String()
    status = fields.String(metadata={"description": "suppressed: the customer opted out, see last_error"})
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    provider = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class TwilioFormSchema(Schema):
    """The lengths of a Twilio webhook's fields we store (Twilio sends many more, left alone)."""

    class Meta:
        unknown = EXCLUDE

    MessageSid = fields.String(validate=validate.Length(max=64))
    SmsSid = fields.String(validate=validate.Length(max=64))
    From = fields.String(validate=validate.Length(max=20))
    # Twilio joins a long SMS into one Body of at most 1,600 characters.
    Body = fields.String(validate=validate.Length(max=1600))
