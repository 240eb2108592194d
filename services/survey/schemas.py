"""The survey API's payloads: validation, documentation and the OpenAPI document at once."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from shared.channels import CHANNELS
from shared.sms import E164
from shared.validation import UtcDateTime, within_properties_limit

from .domain import (
    DEFAULT_RULES,
    QUARANTINE,
    STALE_AFTER,
    SURVEYED_TOUCHPOINTS,
    TOUCHPOINTS,
    ConditionOperator,
)

# The app's extension answering whether a custom event type has a trigger rule; set by create_app, as
# schemas sit below the use cases and cannot ask the database themselves.
EVENT_TYPE_CHECK = "closeloop.survey.event_type_has_rule"
# A CRM's event type: purchase.completed, order.delivered, ticket_solved...
EVENT_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
EVENT_TYPE = validate.Regexp(
    EVENT_TYPE_PATTERN, error="Lower-case letters, digits, '.', '_' and '-', at most 64."
)


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
    attributes = fields.Dict(keys=fields.String(), load_default=dict, validate=within_properties_limit)

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
    type = fields.String(
        required=True,
        validate=EVENT_TYPE,
        metadata={"description": "One of the known types, or a custom type a trigger rule was stored for."},
    )
    occurred_at = UtcDateTime(required=True)
    customer = fields.Nested(CrmCustomerSchema, required=True)
    properties = fields.Dict(keys=fields.String(), load_default=dict, validate=within_properties_limit)

    @validates("type")
    def _surveyable_type(self, value: str, **_kwargs) -> None:
        if value in DEFAULT_RULES:
            return
        # Custom types live in the database; outside a request (a unit test loading an event) only the
        # known ones are accepted, as before trigger rules existed.
        known = current_app.extensions.get(EVENT_TYPE_CHECK) if has_app_context() else None
        if known is None or not known(value):
            raise ValidationError(
                f"Must be one of: {', '.join(sorted(TOUCHPOINTS))}, or a type with a trigger rule."
            )


class EventOutcomeSchema(Schema):
    event_id = fields.String(metadata={"description": "Closeloop's id for the stored event."})
    duplicate = fields.Boolean(metadata={"description": "True when this event id was accepted before."})
    decision = fields.String(metadata={"description": "invited, delayed or skipped"})
    reason = fields.String(metadata={"description": "A short sentence saying why."})
    reason_code = fields.String(metadata={"description": "Why, for machines: see DecisionSchema."})
    due_at = fields.DateTime(allow_none=True, metadata={"description": "When a delayed survey is due."})
    invitation_id = fields.String(allow_none=True)


class DecisionSchema(Schema):
    event_id = fields.String(metadata={"description": "Closeloop's id for the stored event."})
    source = fields.String()
    external_id = fields.String(metadata={"description": "The CRM's id of the event."})
    type = fields.String()
    customer_external_id = fields.String()
    occurred_at = fields.DateTime()
    received_at = fields.DateTime()
    decided_at = fields.DateTime(metadata={"description": "When the current decision was taken."})
    decision = fields.String(metadata={"description": "invited, delayed (until due_at) or skipped"})
    reason_code = fields.String(
        metadata={
            "description": "invited, delayed, no_rule, rule_disabled, event_too_old, condition_not_met, "
            "sampled_out, quarantine_after_invitation, quarantine_after_answer, survey_pending, superseded "
            "(recorded_before_codes for events decided before codes existed)"
        }
    )
    reason = fields.String(metadata={"description": "A short sentence, as POST /v1/events answered."})
    explanation = fields.String(metadata={"description": "The whole sentence: which rule, since when."})
    due_at = fields.DateTime(allow_none=True)
    invitation_id = fields.String(allow_none=True)


class DecisionsQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class ConditionSchema(_Strict):
    property = fields.String(required=True, validate=validate.Length(min=1, max=100))
    operator = fields.String(required=True, validate=validate.OneOf([op.value for op in ConditionOperator]))
    value = fields.Raw(required=True, allow_none=True)

    @validates_schema
    def _value_fits_operator(self, data: dict, **_kwargs) -> None:
        value, operator = data.get("value"), data.get("operator")
        if operator == ConditionOperator.IN and not isinstance(value, list):
            raise ValidationError("'in' needs a list of values.", "value")
        if operator in (ConditionOperator.GTE, ConditionOperator.LTE) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ValidationError(f"'{operator}' needs a number.", "value")
        if len(repr(value)) > 200:
            raise ValidationError("At most 200 characters.", "value")


class TriggerRuleSchema(_Strict):
    """A trigger rule as PUT replaces it: a field left out takes the default of today's behaviour."""

    enabled = fields.Boolean(load_default=True)
    touchpoint = fields.String(
        required=True,
        validate=validate.OneOf(sorted(set(TOUCHPOINTS.values()))),
        metadata={"description": "Which survey is sent: its question's wording and the NPS slice."},
    )
    delay_hours = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=24 * 90),
        metadata={
            "description": "How long after the event the invitation is sent (e.g. 48 after a purchase)."
        },
    )
    quarantine_after_invitation_days = fields.Integer(
        load_default=QUARANTINE.days,
        validate=validate.Range(min=0, max=3650),
        metadata={"description": "No survey of any touchpoint this long after an invitation."},
    )
    quarantine_after_answer_days = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=3650),
        metadata={"description": "No survey of any touchpoint this long after an answer."},
    )
    priority = fields.Integer(
        load_default=0,
        validate=validate.Range(min=-1000, max=1000),
        metadata={
            "description": "A higher priority replaces a customer's pending delayed survey of a lower."
        },
    )
    sampling_rate = fields.Float(
        load_default=1.0,
        allow_nan=False,
        validate=validate.Range(min=0, max=1),
        metadata={
            "description": "Share of events surveyed, decided by a hash of the customer and event ids."
        },
    )
    conditions = fields.List(
        fields.Nested(ConditionSchema),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={"description": "All must hold on the event's properties."},
    )
    max_event_age_days = fields.Integer(
        load_default=STALE_AFTER.days,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "Older events are not surveyed."},
    )
    invitation_expiry_days = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "After this the answer page says the survey is closed; null: never."},
    )


class TriggerRuleOutSchema(TriggerRuleSchema):
    class Meta:
        unknown = RAISE

    event_type = fields.String()
    is_default = fields.Boolean(metadata={"description": "True while the built-in default is in force."})


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
