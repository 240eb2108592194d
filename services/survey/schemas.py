"""The survey API's payloads: validation, documentation and the OpenAPI document at once."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from shared.channels import CHANNELS
from shared.sms import E164

from .domain import SURVEYED_TOUCHPOINTS, TOUCHPOINTS


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class CrmCustomerSchema(_Strict):
    external_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(load_default=None, allow_none=True, validate=E164)
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    locale = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16))
    timezone = fields.String(load_default=None, allow_none=True)
    preferred_channel = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CHANNELS))
    attributes = fields.Dict(keys=fields.String(), load_default=dict)

    @validates("timezone")
    def _known_timezone(self, value: str | None, **_kwargs) -> None:
        if value is None:
            return
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValidationError("Not an IANA time zone, such as Europe/Istanbul.") from error

    @validates_schema
    def _reachable(self, data: dict, **_kwargs) -> None:
        if not data.get("email") and not data.get("phone"):
            raise ValidationError("A customer needs an email or a phone number.", "email")


class CrmEventSchema(_Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(sorted(TOUCHPOINTS)))
    occurred_at = fields.AwareDateTime(required=True)
    customer = fields.Nested(CrmCustomerSchema, required=True)
    properties = fields.Dict(keys=fields.String(), load_default=dict)


class EventOutcomeSchema(Schema):
    event_id = fields.String(metadata={"description": "Closeloop's id for the stored event."})
    duplicate = fields.Boolean(metadata={"description": "True when this event id was accepted before."})
    decision = fields.String(metadata={"description": "invited or skipped"})
    reason = fields.String()
    invitation_id = fields.String(allow_none=True)


class NpsQuerySchema(Schema):
    touchpoint = fields.String(load_default=None, validate=validate.OneOf(sorted(SURVEYED_TOUCHPOINTS)))


class NpsSchema(Schema):
    responses = fields.Integer()
    promoters = fields.Integer()
    passives = fields.Integer()
    detractors = fields.Integer()
    nps = fields.Float(allow_none=True)


class FollowUpResultsSchema(Schema):
    scheduled = fields.Integer(metadata={"description": "Follow-up surveys waiting for their day."})
    invited = fields.Integer(
        metadata={"description": "Follow-up surveys sent (their invitations requested)."}
    )
    answered = fields.Integer(metadata={"description": "Follow-up surveys the customer answered."})
    improved = fields.Integer(
        metadata={"description": "Answers scoring higher than the response followed up."}
    )
    unchanged = fields.Integer(metadata={"description": "Answers with the same score as before."})
    worse = fields.Integer(metadata={"description": "Answers scoring lower than before."})
