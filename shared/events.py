"""Event contracts between the services: defined once, validated by every consumer.

An event is a JSON envelope ``{id, type, version, occurred_at, data}``. ``EVENTS`` is the one table of
event types: each with its schema, its version, the service that produces it and the services that consume
it. It is the only coupling between a publisher and its consumers.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.channels import CHANNELS
from shared.clock import utcnow
from shared.sms import E164
from shared.validation import StorableString


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class EnvelopeSchema(_Strict):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=None)
    data = fields.Dict(required=True)
    # The id of the HTTP request that caused the event (shared.logs), carried on to what its consumers emit;
    # optional, so envelopes written before it stay valid.
    request_id = fields.String(validate=validate.Length(min=1, max=64))


class InvitationContactSchema(_Strict):
    customer_id = fields.String(required=True)
    name = fields.String(allow_none=True, load_default=None)
    email = fields.Email(allow_none=True, load_default=None)
    phone = fields.String(allow_none=True, load_default=None)
    timezone = fields.String(allow_none=True, load_default=None)


class InvitationMessageSchema(_Strict):
    subject = fields.String(required=True)
    greeting = fields.String(required=True)
    question = fields.String(required=True)
    low_label = fields.String(required=True)
    high_label = fields.String(required=True)
    sms_body = fields.String(required=True)
    # Score links are answer_url + "?score=N"; the page they open asks for a comment.
    answer_url = fields.Url(required=True, require_tld=False)


class InvitationRequestedSchema(_Strict):
    invitation_id = fields.String(required=True)
    touchpoint = fields.String(required=True)
    locale = fields.String(required=True)
    preferred_channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    contact = fields.Nested(InvitationContactSchema, required=True)
    message = fields.Nested(InvitationMessageSchema, required=True)
    # When the survey stops taking answers (None: never). Added to version 1 like the optional fields of
    # response.submitted: dispatch stops reminding after it.
    expires_at = fields.AwareDateTime(allow_none=True)


class SmsReceivedSchema(_Strict):
    message_sid = fields.String(required=True)
    invitation_id = fields.String(required=True)
    body = fields.String(required=True)
    received_at = fields.AwareDateTime(required=True)


class ResponseCustomerSchema(_Strict):
    customer_id = fields.String(required=True)
    external_id = fields.String(allow_none=True, load_default=None)
    name = fields.String(allow_none=True, load_default=None)
    # Added to version 1, not a version 2: an additive, optional field leaves every event written before it
    # valid. No load_default, so an event passes on as its producer wrote it: consumers read these with
    # .get(). Consumers refuse fields they do not know (_Strict): deploy them before the producer.
    email = fields.Email(allow_none=True)
    phone = fields.String(allow_none=True)


class ResponseSubmittedSchema(_Strict):
    response_id = fields.String(required=True)
    invitation_id = fields.String(required=True)
    # A response is revised when a comment arrives after the score (an SMS "9", then a sentence);
    # consumers keep the highest revision.
    revision = fields.Integer(required=True, validate=validate.Range(min=1))
    score = fields.Integer(required=True, validate=validate.Range(min=0, max=10))
    comment = fields.String(allow_none=True, load_default=None)
    locale = fields.String(required=True)
    touchpoint = fields.String(required=True)
    channel = fields.String(required=True)
    customer = fields.Nested(ResponseCustomerSchema, required=True)
    submitted_at = fields.AwareDateTime(required=True)
    # What the customer was asked about (an order id, an amount): the invitation's properties. Added to
    # version 1 like the customer's email and phone, and for the same reasons.
    properties = fields.Dict(keys=fields.String())


class SentimentSchema(_Strict):
    polarity = fields.Float(allow_none=True, load_default=None)
    subjectivity = fields.Float(allow_none=True, load_default=None)
    label = fields.String(required=True)
    language = fields.String(required=True)
    key_phrases = fields.List(fields.String(), load_default=list)
    analyzer = fields.String(allow_none=True, load_default=None)
    # What the comment speaks of ("delivery", "support"...); added to version 1, optional, so followup
    # can route by topic. Older events have none.
    topics = fields.List(fields.String(), load_default=list)


class ResponseScoredSchema(ResponseSubmittedSchema):
    # None when the response has no comment to score.
    sentiment = fields.Nested(SentimentSchema, allow_none=True, required=True)


# --- Closing the loop: followup asks dispatch to send, and survey to ask again; survey reports referrals ---

# Ids survey made (customers, invitations, responses) are uuids; ids other services make fit the outbox's 64.
_SURVEY_ID = validate.Length(min=1, max=36)
_ID = validate.Length(min=1, max=64)
_LOCALE = validate.Length(min=1, max=16)


def _link() -> fields.Url:
    # A customer clicks it: only the web's schemes, never javascript:, data: or ftp:.
    return fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000)
    )


class CustomerContactSchema(_Strict):
    """Who a message is for and how to reach them: what dispatch needs to choose the channel."""

    customer_id = fields.String(required=True, validate=_SURVEY_ID)
    name = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    email = fields.Email(allow_none=True, load_default=None, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, load_default=None, validate=E164)
    timezone = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=64))
    # The other channel is the fallback, as for invitations; the channel they answered on is a good choice.
    preferred_channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class ReferralRequestedSchema(_Strict):
    """Ask a promoter to refer others, through ``referral_url``, their own link."""

    referral_id = fields.String(required=True, validate=_ID)
    customer = fields.Nested(CustomerContactSchema, required=True)
    referral_url = _link()
    # The language of the message (the survey's locale); one without texts gets English.
    locale = fields.String(required=True, validate=_LOCALE)


class ReviewRequestedSchema(_Strict):
    """Ask a respondent, whatever the score (review sites forbid gating), for a review at ``review_url``."""

    review_request_id = fields.String(required=True, validate=_ID)
    customer = fields.Nested(CustomerContactSchema, required=True)
    review_url = _link()
    # Changes the wording only: every score is asked the same thing.
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10))
    locale = fields.String(required=True, validate=_LOCALE)


class FollowupResolvedSchema(_Strict):
    """A success-team task is resolved; optionally a message to the customer and, later, a new survey."""

    task_id = fields.String(required=True, validate=_ID)
    response_id = fields.String(required=True, validate=_SURVEY_ID)
    invitation_id = fields.String(required=True, validate=_SURVEY_ID)
    customer = fields.Nested(CustomerContactSchema, required=True)
    locale = fields.String(required=True, validate=_LOCALE)
    resolution_code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    # Sent as written by email or SMS (dispatch); None sends nothing.
    close_loop_message = StorableString(
        allow_none=True, load_default=None, validate=validate.Length(min=1, max=1000)
    )
    # Survey asks the NPS question again this many days after the resolution (the envelope's occurred_at).
    follow_up_survey_after_days = fields.Integer(
        allow_none=True, load_default=None, strict=True, validate=validate.Range(min=1, max=365)
    )


class ReferralCodeUsedSchema(_Strict):
    """A CRM event carried ``properties.referral_code``: someone came through a referral link."""

    referral_code = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # Survey's id of the stored CRM event (what POST /v1/events answers as event_id), and its type.
    event_id = fields.String(required=True, validate=_SURVEY_ID)
    event_type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    # The customer the event is about: the referred one, not the one who referred them.
    customer_id = fields.String(required=True, validate=_SURVEY_ID)
    occurred_at = fields.AwareDateTime(required=True)


class CustomerOptedOutSchema(_Strict):
    """An address stopped (or, as customer.opted_in, resumed) taking our messages on one channel.

    Dispatch keeps opt-outs by address: ``address`` is as dispatch compares it (an email in lower case, a
    phone number in E.164), so survey can tell which of its customers it concerns.
    """

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))
    # Survey's customer id when dispatch knows it; an opt-out by STOP or a provider report knows only the
    # address.
    customer_id = fields.String(allow_none=True, load_default=None, validate=_SURVEY_ID)
    # What recorded it: unsubscribe_link, sms_stop, sms_start, provider, unsubscribed, spam_reported...
    reason = fields.String(required=True, validate=validate.Length(min=1, max=32))


class RepromptRequestedSchema(_Strict):
    """An SMS reply to a survey could not be read: ask the customer once more, by SMS, in these words.

    The customer's reply to this message answers the same invitation.
    """

    reprompt_id = fields.String(required=True, validate=_SURVEY_ID)
    invitation_id = fields.String(required=True, validate=_SURVEY_ID)
    customer = fields.Nested(CustomerContactSchema, required=True)
    locale = fields.String(required=True, validate=_LOCALE)
    text = StorableString(required=True, validate=validate.Length(min=1, max=640))


class UnsubscribeRequestedSchema(_Strict):
    """Survey was told (Delighted's POST /unsubscribes, an import) that an address wants no more surveys."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))
    source = fields.String(required=True, validate=validate.Length(min=1, max=32))


class DeliveryBouncedSchema(_Strict):
    """A message to this address bounced (a provider's report): survey lists it in Delighted's bounces."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))
    delivery_id = fields.String(required=True, validate=_SURVEY_ID)
    bounced_at = fields.AwareDateTime(required=True)


class ErasedAddressSchema(_Strict):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))


class CustomerErasedSchema(_Strict):
    """A customer was erased in survey; each consumer deletes what it holds about them.

    Only what the consumers need to find their rows: survey's ids (followup and sentiment keep those), and the
    addresses dispatch keeps deliveries and opt-outs by. The producer deletes the outbox row once every
    consumer has acknowledged it, so the addresses do not outlive the erasure.
    """

    customer_id = fields.String(required=True, validate=_SURVEY_ID)
    invitation_ids = fields.List(fields.String(validate=_SURVEY_ID), load_default=list)
    response_ids = fields.List(fields.String(validate=_SURVEY_ID), load_default=list)
    addresses = fields.List(fields.Nested(ErasedAddressSchema), load_default=list)


@dataclass(frozen=True)
class EventType:
    """One kind of event: its contract, who may emit it and who receives it."""

    name: str
    version: int
    schema: type[Schema]
    producer: str
    consumers: tuple[str, ...]


EVENTS: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType("invitation.requested", 1, InvitationRequestedSchema, "survey", ("dispatch",)),
        EventType("sms.received", 1, SmsReceivedSchema, "dispatch", ("survey",)),
        EventType("response.submitted", 1, ResponseSubmittedSchema, "survey", ("sentiment", "dispatch")),
        EventType("response.scored", 1, ResponseScoredSchema, "sentiment", ("followup", "survey")),
        EventType("referral.requested", 1, ReferralRequestedSchema, "followup", ("dispatch",)),
        EventType("review.requested", 1, ReviewRequestedSchema, "followup", ("dispatch",)),
        EventType("followup.resolved", 1, FollowupResolvedSchema, "followup", ("dispatch", "survey")),
        EventType("referral.code_used", 1, ReferralCodeUsedSchema, "survey", ("followup",)),
        EventType("customer.opted_out", 1, CustomerOptedOutSchema, "dispatch", ("survey",)),
        EventType("customer.opted_in", 1, CustomerOptedOutSchema, "dispatch", ("survey",)),
        EventType("reprompt.requested", 1, RepromptRequestedSchema, "survey", ("dispatch",)),
        EventType("unsubscribe.requested", 1, UnsubscribeRequestedSchema, "survey", ("dispatch",)),
        EventType("delivery.bounced", 1, DeliveryBouncedSchema, "dispatch", ("survey",)),
        EventType(
            "customer.erased", 1, CustomerErasedSchema, "survey", ("dispatch", "followup", "sentiment")
        ),
    )
}


class InvalidEvent(ValueError):
    """A payload that does not match its contract; it is never acted on."""

    def __init__(self, errors: Any) -> None:
        super().__init__(f"invalid event: {errors}")
        self.errors = errors


def new_event(event_type: str, data: dict[str, Any], occurred_at: datetime | None = None) -> dict[str, Any]:
    """Build an envelope, validating ``data`` against the contract before anything is stored."""
    event = EVENTS[event_type]
    payload = _instance(event.schema).dump(_load(event.schema, data))
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": event.version,
        "occurred_at": (occurred_at or utcnow()).isoformat(),
        "data": payload,
    }


def parse_event(envelope: Any, expected_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate an envelope and its data; returns (envelope, loaded data)."""
    loaded = _load(EnvelopeSchema, envelope)
    if loaded["type"] != expected_type:
        raise InvalidEvent({"type": [f"expected {expected_type}, got {loaded['type']}"]})
    event = EVENTS[expected_type]
    if loaded["version"] != event.version:
        raise InvalidEvent({"version": [f"unsupported version {loaded['version']}"]})
    return loaded, _load(event.schema, loaded["data"])


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    # Building a schema deep-copies its fields; one instance per contract serves every thread (load and
    # dump keep no state on the instance).
    return schema()


def _load(schema: type[Schema], data: Any) -> dict[str, Any]:
    try:
        return _instance(schema).load(data)
    except ValidationError as error:
        raise InvalidEvent(error.messages) from error
