"""The survey API's payloads: validation, documentation and the OpenAPI document at once."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    post_load,
    validate,
    validates,
    validates_schema,
)

from shared.validation import StorableString, UtcDateTime, within_properties_limit

from .customer_schemas import EXTERNAL_ID, CustomerFieldsSchema
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
# Where CrmCustomerSchema sets aside the fields it does not know, for CrmEventSchema to keep.
UNKNOWN_FIELDS = "_unknown"
EVENT_TYPE = validate.Regexp(
    EVENT_TYPE_PATTERN, error="Lower-case letters, digits, '.', '_' and '-', at most 64."
)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class CrmCustomerSchema(CustomerFieldsSchema):
    """The event's customer. Fields we do not know (``first_name``) are kept in the event's properties."""

    class Meta:
        unknown = INCLUDE

    # A vendor's payload may name the customer without an address (Zendesk's requester id): the customer
    # PUT /v1/customers or an earlier event made is reached then, or the decision says nobody can be.
    requires_contact = True

    external_id = fields.String(required=True, validate=EXTERNAL_ID)

    @validates_schema
    def _reachable(self, data: dict, **_kwargs) -> None:
        if self.requires_contact and not data.get("email") and not data.get("phone"):
            raise ValidationError("A customer needs an email or a phone number.", "email")

    @post_load
    def _set_aside_unknown(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        known = {name: value for name, value in data.items() if name in self.fields}
        known[UNKNOWN_FIELDS] = {name: value for name, value in data.items() if name not in self.fields}
        return known


class VendorCustomerSchema(CrmCustomerSchema):
    requires_contact = False


class CrmEventSchema(Schema):
    """A CRM event. Fields a CRM adds that we do not know, at the top or in ``customer``, are kept in
    ``properties`` (which wins when both name one); a missing or wrong known field is refused."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(
        required=True,
        validate=EVENT_TYPE,
        metadata={"description": "One of the known types, or a custom type a trigger rule was stored for."},
    )
    occurred_at = UtcDateTime(required=True)
    customer = fields.Nested(CrmCustomerSchema, required=True)
    properties = fields.Dict(keys=fields.String(), load_default=dict, validate=within_properties_limit)

    @post_load
    def _keep_unknown_in_properties(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        event = {name: value for name, value in data.items() if name in self.fields}
        unknown = {name: value for name, value in data.items() if name not in self.fields}
        unknown.update(event["customer"].pop(UNKNOWN_FIELDS, {}))
        event["properties"] = {**unknown, **event["properties"]}
        return event

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


class VendorEventSchema(CrmEventSchema):
    """An event mapped from a vendor's payload (Shopify, Zendesk): checked as a CRM event is."""

    customer = fields.Nested(VendorCustomerSchema, required=True)


def load_crm_event_quickly(schema: CrmEventSchema, data: Any) -> dict[str, Any] | None:
    """``schema.load(data)`` for an event the schema accepts, at a fraction of its cost (the intake's hot
    path, issue 19); None when the schema must load it itself: an invalid event (the schema words the
    errors), a custom event type (its validator asks the database).

    Every field is still checked and converted by the schema's own field object, and the schemas' hooks are
    called by name; what is skipped is marshmallow's machinery around them (error stores, hook dispatch).
    tests/unit/survey/test_quick_load.py holds this to ``schema.load``, and fails should a hook be added that
    this does not call.
    """
    event_type = data.get("type") if type(data) is dict else None
    if type(event_type) is not str or event_type not in DEFAULT_RULES:
        return None
    customer_schema: CrmCustomerSchema = schema.load_fields["customer"].schema  # type: ignore[attr-defined]
    try:
        customer = _plain_fields(customer_schema, data.get("customer"))
        if customer is None:
            return None
        customer_schema._reachable(customer)
        event = _plain_fields(schema, data, {"customer": customer_schema._set_aside_unknown(customer)})
        if event is None:
            return None
        schema._surveyable_type(event["type"])
        return schema._keep_unknown_in_properties(event)
    except ValidationError:
        return None


def _plain_fields(schema: Schema, data: Any, loaded: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``data`` as ``schema`` (unknown=INCLUDE) deserializes it before its hooks run, each field by its own
    field object (those in ``loaded`` are taken as given); None when ``data`` is not an object. A field's
    ValidationError propagates."""
    if type(data) is not dict:
        return None
    result: dict[str, Any] = {}
    for name, field in schema.load_fields.items():
        if loaded is not None and name in loaded:
            result[name] = loaded[name]
            continue
        value = field.deserialize(data.get(name, missing), name, data)
        if value is not missing:
            result[name] = value
    for name, value in data.items():
        if name not in schema.load_fields:
            result[name] = value
    return result


# The intake's answer body, version 2: the event is stored and decided right after, so the answer says
# whether it was accepted and where its decision will be. Version 1 (before issue 19) carried the decision.
RECEIPT_VERSION = 2


class EventLinksSchema(Schema):
    event = fields.String(
        metadata={"description": "GET it (staff, API key) for the event's decision: GET /v1/events/{id}."}
    )


class EventReceiptSchema(Schema):
    """The intake's answer (version 2). The decision is taken right after, in the background: read it at
    ``links.event`` (also the ``Location`` header) or among the customer's decisions."""

    version = fields.Integer(
        metadata={"description": f"{RECEIPT_VERSION}: this shape (version 1 carried the decision)."}
    )
    status = fields.String(
        metadata={
            "description": "accepted: stored, its decision follows; duplicate: this event id was accepted "
            "before (nothing new is stored); ignored: a vendor's event we do not survey (nothing stored)."
        }
    )
    event_id = fields.String(
        metadata={"description": "Closeloop's id for the stored event (none when a vendor's is ignored)."}
    )
    duplicate = fields.Boolean(metadata={"description": "True when this event id was accepted before."})
    links = fields.Nested(EventLinksSchema, metadata={"description": "None when ignored."})
    reason = fields.String(metadata={"description": "Why a vendor's event is ignored."})


class DecisionSchema(Schema):
    event_id = fields.String(metadata={"description": "Closeloop's id for the stored event."})
    source = fields.String()
    external_id = fields.String(metadata={"description": "The CRM's id of the event."})
    type = fields.String()
    customer_external_id = fields.String()
    status = fields.String(
        metadata={
            "description": "received: stored, its decision follows in a moment (the decision's fields "
            "are null until then); decided"
        }
    )
    occurred_at = fields.DateTime()
    received_at = fields.DateTime()
    decided_at = fields.DateTime(
        allow_none=True, metadata={"description": "When the current decision was taken."}
    )
    decision = fields.String(
        allow_none=True, metadata={"description": "invited, delayed (until due_at) or skipped"}
    )
    reason_code = fields.String(
        allow_none=True,
        metadata={
            "description": "invited, delayed, no_rule, rule_disabled, event_too_old, condition_not_met, "
            "sampled_out, quarantine_after_invitation, quarantine_after_answer, survey_pending, superseded, "
            "opted_out (of every channel), no_consent, no_contact "
            "(recorded_before_codes for events decided before codes existed)"
        }
    )
    reason = fields.String(allow_none=True, metadata={"description": "A short sentence saying why."})
    explanation = fields.String(
        allow_none=True, metadata={"description": "The whole sentence: which rule, since when."}
    )
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
        metadata={
            "description": "After this the answer page says the survey is closed; "
            "null: SURVEY_INVITATION_EXPIRY_DAYS."
        },
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


# --- Wording: message templates and the brand ---------------------------------------------------------

_TEMPLATE_TEXT = (
    "Plain text; variables {first_name}, {brand}, {order_id}, each with an optional fallback: "
    "{first_name|there}."
)


class MessageTemplateSchema(_Strict):
    """A touchpoint's survey wording in one language, as PUT replaces it."""

    nps_question = StorableString(
        required=True, validate=validate.Length(min=1, max=500), metadata={"description": _TEMPLATE_TEXT}
    )
    follow_up_question = StorableString(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Asked under the score: why? " + _TEMPLATE_TEXT},
    )
    sms_text = StorableString(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={
            "description": "The survey SMS; at most SURVEY_SMS_MAX_SEGMENTS billed segments with long sample "
            "values. " + _TEMPLATE_TEXT
        },
    )
    email_subject = StorableString(
        required=True, validate=validate.Length(min=1, max=200), metadata={"description": _TEMPLATE_TEXT}
    )


class TemplatePreviewSchema(Schema):
    nps_question = fields.String()
    follow_up_question = fields.String()
    sms_text = fields.String()
    email_subject = fields.String()


class MessageTemplateOutSchema(MessageTemplateSchema):
    touchpoint = fields.String()
    locale = fields.String()
    is_default = fields.Boolean(metadata={"description": "True while the shipped wording is in force."})
    preview = fields.Nested(
        TemplatePreviewSchema, metadata={"description": "Rendered for a long sample customer and order."}
    )
    sms_encoding = fields.String(metadata={"description": "GSM-7 or UCS-2 (a Turkish letter needs UCS-2)."})
    sms_segments = fields.Integer(metadata={"description": "Billed SMS segments of the preview."})
    sms_segments_turkish_shift = fields.Integer(
        metadata={"description": "The same, where the Turkish national shift table is supported."}
    )


class BrandSchema(_Strict):
    name = StorableString(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "null: BRAND_NAME."},
    )
    color = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(
            r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", error="A CSS hex colour: #rgb or #rrggbb."
        ),
        metadata={"description": "null: BRAND_COLOR."},
    )


class BrandOutSchema(BrandSchema):
    is_default = fields.Boolean(
        metadata={"description": "True while BRAND_NAME and BRAND_COLOR are in force."}
    )


class AnswerMessageSchema(Schema):
    received_at = fields.DateTime()
    channel = fields.String(metadata={"description": "sms, or email for the answer page"})
    body = fields.String(metadata={"description": "What the customer wrote, as written."})
    reading = fields.String(
        metadata={"description": "How it was read: score, comment, out_of_range, ambiguous or empty."}
    )
    score = fields.Integer(allow_none=True)
    comment = fields.String(allow_none=True)
