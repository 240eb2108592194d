"""The survey service's tables: customers, CRM events, invitations, score clicks, responses and follow-ups."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import TYPE_ANNOTATION_MAP
from shared.outbox import consumed_events_table, outbox_table

SERVICE = "survey"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "survey_alembic_version"
# A CRM event's status: stored by the intake and waiting for its decision, or decided.
EVENT_RECEIVED = "received"
EVENT_DECIDED = "decided"
# What the intake's process NOTIFYs on PostgreSQL after it stored events (PostgresWaker): wakes the decider.
EVENTS_RECEIVED_CHANNEL = "survey_crm_events_received"


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Customer(Base):
    """A person a CRM told us about; ``properties`` holds the CRM attributes (Delighted person properties)."""

    __tablename__ = "survey_customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    preferred_channel: Mapped[str] = mapped_column(String(8))
    # None: never said; False: withdrew consent to surveys (never asked then); True: consented.
    consent: Mapped[bool | None]
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChannelOptOut(Base):
    """Whether an address takes our messages on a channel, as dispatch last reported (customer.opted_out/in).

    Kept by address, as dispatch keeps it: an opt-out may come before survey knows the customer, and a
    customer who changes their email is reachable again at the new one.
    """

    __tablename__ = "survey_opt_outs"

    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    # As shared.channels.normal_address writes it.
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    opted_out: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(32))
    # When dispatch recorded the change: an older event arriving late never undoes a newer one.
    changed_at: Mapped[datetime]


class CrmEvent(Base):
    """Every accepted CRM event and what we decided about it; (source, external_id) is unique.

    The intake stores an event as ``received`` (its customer's fields kept in ``customer_fields``) and answers
    at once; the decider (``service.decide_received_events``) upserts the customer, takes the decision and
    marks it ``decided``. The stored event is the work item: a crash between the two loses nothing.
    """

    __tablename__ = "survey_crm_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_survey_crm_events_source_id"),
        # The clock's query for delayed surveys come due, and a customer's decisions newest first.
        Index("ix_survey_crm_events_due", "decision", "due_at"),
        Index("ix_survey_crm_events_customer", "customer_id", "received_at"),
        # The decider's queue: only the few events waiting for their decision are in it.
        Index(
            "ix_survey_crm_events_received",
            "received_at",
            postgresql_where=text("status = 'received'"),
            sqlite_where=text("status = 'received'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    # received (waiting for the decider) or decided.
    status: Mapped[str] = mapped_column(String(16), default=EVENT_DECIDED, server_default=EVENT_DECIDED)
    # The event's customer as the CRM sent it, until the decider has upserted the customer (then None).
    customer_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The intake request's id (X-Request-Id): the decision's events carry it, as if made in that request.
    request_id: Mapped[str | None] = mapped_column(String(64))
    # None until decided.
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("survey_customers.id"))
    # Never loaded (lazy="raise"): declared so that one flush inserts a new customer before the rows naming
    # it (a flush orders classes by relationship(), not by foreign key), and a batch of decisions can add
    # its customers without a flush each (issue 19).
    _customer: Mapped[Customer | None] = relationship(lazy="raise")
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # invited, delayed (waits for due_at) or skipped; a delayed one becomes one of the others when due.
    # The decision's columns are None while the event is received.
    decision: Mapped[str | None] = mapped_column(String(16))
    # domain.ReasonCode, for machines; reason and explanation are the sentences for people.
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(200))
    explanation: Mapped[str | None] = mapped_column(String(400))
    due_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    invitation_id: Mapped[str | None] = mapped_column(String(36))


class Invitation(Base):
    __tablename__ = "survey_invitations"
    __table_args__ = (Index("ix_survey_invitations_customer", "customer_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The secret in the answer link; the id never leaves the system in a URL.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
    _customer: Mapped[Customer] = relationship(lazy="raise")  # as CrmEvent's: orders the flush
    # The CRM event that led to it; None for a follow-up survey, which a resolved followup task led to.
    crm_event_id: Mapped[str | None] = mapped_column(ForeignKey("survey_crm_events.id"))
    # The earlier response a follow-up survey asks about again, so its answer can be compared with it. No
    # foreign key: responses refer to invitations already, and a cycle of keys would order every insert.
    follows_up_response_id: Mapped[str | None] = mapped_column(String(36), index=True)
    touchpoint: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    # The customer's attributes and the event's properties when we asked: what the answer is sliced by
    # (segment, plan, store...), and Delighted's person_properties for integrations that still speak its API.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    # After this the answer page says the survey is closed; None: it stays open.
    expires_at: Mapped[datetime | None]
    # When an unreadable SMS reply was answered with the one re-prompt an invitation gets; None: not yet.
    reprompted_at: Mapped[datetime | None]


class ScoreClick(Base):
    """A score a person clicked: posted by the answer page's script once it ran, never by a link's GET."""

    __tablename__ = "survey_score_clicks"
    __table_args__ = (Index("ix_survey_score_clicks_invitation", "invitation_id", "clicked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invitation_id: Mapped[str] = mapped_column(ForeignKey("survey_invitations.id"))
    score: Mapped[int]
    clicked_at: Mapped[datetime]
    user_agent: Mapped[str | None] = mapped_column(String(200))


class Response(Base):
    """One answer per invitation; a later comment or a changed score makes a new revision."""

    __tablename__ = "survey_responses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    invitation_id: Mapped[str] = mapped_column(ForeignKey("survey_invitations.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))
    revision: Mapped[int] = mapped_column(default=1)
    submitted_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AnswerMessage(Base):
    """Everything a customer wrote back, as written: SMS replies and comments sent from the answer page.

    A response holds the latest comment; earlier ones stay here, its history. A reply that could not be
    read is kept too, with how it was read.
    """

    __tablename__ = "survey_answer_messages"
    __table_args__ = (Index("ix_survey_answer_messages_invitation", "invitation_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    invitation_id: Mapped[str] = mapped_column(ForeignKey("survey_invitations.id"))
    channel: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    # answers.Reading: score, comment, out_of_range, ambiguous, empty.
    reading: Mapped[str] = mapped_column(String(16))
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]


class MessageTemplateRow(Base):
    """Staff's wording of one touchpoint's survey in one language; without a row the shipped one is used."""

    __tablename__ = "survey_message_templates"

    touchpoint: Mapped[str] = mapped_column(String(32), primary_key=True)
    locale: Mapped[str] = mapped_column(String(8), primary_key=True)
    nps_question: Mapped[str] = mapped_column(String(500))
    follow_up_question: Mapped[str] = mapped_column(String(500))
    sms_text: Mapped[str] = mapped_column(String(1000))
    email_subject: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class BrandRow(Base):
    """The brand customers see, as set on the admin page (one row); a null column keeps the setting's."""

    __tablename__ = "survey_brand"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    color: Mapped[str | None] = mapped_column(String(7))
    updated_at: Mapped[datetime]


class SettingsVersion(Base):
    """One row: a number moved by triggers on every change to the trigger rules, templates and brand, so the
    decider may keep what it read of them until the number moves (issue 19)."""

    __tablename__ = "survey_settings_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class FollowUpSurvey(Base):
    """A survey to send again once a detractor's task is resolved: waits for ``due_at``, then is invited."""

    __tablename__ = "survey_follow_up_surveys"
    __table_args__ = (Index("ix_survey_follow_up_surveys_due", "status", "due_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # One per earlier response: a task resolved again moves its due time, it never asks twice.
    response_id: Mapped[str] = mapped_column(ForeignKey("survey_responses.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
    # The followup task whose resolution asked for it.
    task_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    invitation_id: Mapped[str | None] = mapped_column(ForeignKey("survey_invitations.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TriggerRuleRow(Base):
    """A stored trigger rule; an event type without one follows domain.DEFAULT_RULES (or is not surveyed)."""

    __tablename__ = "survey_trigger_rules"

    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool]
    touchpoint: Mapped[str] = mapped_column(String(32))
    delay_hours: Mapped[int]
    quarantine_after_invitation_days: Mapped[int]
    quarantine_after_answer_days: Mapped[int]
    priority: Mapped[int]
    sampling_rate: Mapped[float] = mapped_column(Float)
    # [{"property": "amount", "operator": "gte", "value": 100}, ...]
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    max_event_age_days: Mapped[int]
    invitation_expiry_days: Mapped[int | None]
    updated_at: Mapped[datetime]


class EventSourceRow(Base):
    """A CRM event source staff added through the API (PUT /v1/sources/{name}); CLOSELOOP_SOURCES adds others.

    The secret is kept as it is: checking an HMAC needs it, not a hash of it. It is never shown again.
    """

    __tablename__ = "survey_sources"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- NPS analytics (services/survey/analytics) ----------------------------------------------------------


class ResponseSentiment(Base):
    """Sentiment's reading of a response's comment (response.scored), kept for its highest revision."""

    __tablename__ = "survey_response_sentiments"

    response_id: Mapped[str] = mapped_column(ForeignKey("survey_responses.id"), primary_key=True)
    revision: Mapped[int]
    # positive, neutral, negative...; None when that revision had no comment to score.
    label: Mapped[str | None] = mapped_column(String(16))
    polarity: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    scored_at: Mapped[datetime]


class ResponseKeyPhrase(Base):
    """A key phrase sentiment found in a response's latest scored comment, lower-cased."""

    __tablename__ = "survey_response_key_phrases"

    response_id: Mapped[str] = mapped_column(ForeignKey("survey_responses.id"), primary_key=True)
    phrase: Mapped[str] = mapped_column(String(200), primary_key=True)


class NpsDaily(Base):
    """The daily rollup the NPS breakdowns read: counts per UTC day, touchpoint, channel and segment.

    Responses count on the day they were first submitted, with their current score; invitations on the day
    they were sent, under the channel "" (survey does not know how dispatch will deliver them). Each
    response and invitation is counted once under the attribute "" (everyone), and once per segment
    attribute (NPS_SEGMENT_ATTRIBUTES) with its value then ("" when it had none). Derived data: rebuilt
    from the responses and invitations, never edited by hand.
    """

    __tablename__ = "survey_nps_daily"
    __table_args__ = (Index("ix_survey_nps_daily_attribute_day", "attribute", "day"),)

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    touchpoint: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    attribute: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    invitations: Mapped[int]
    responses: Mapped[int]
    promoters: Mapped[int]
    passives: Mapped[int]
    detractors: Mapped[int]


class NpsRollupState(Base):
    """One row: how far the rollup is up to date, and which segment attributes it was built with."""

    __tablename__ = "survey_nps_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    refreshed_through: Mapped[datetime | None]
    attributes: Mapped[str] = mapped_column(String(1000))


# What the rollup's refresh looks for: responses changed and invitations sent since it last ran, and the
# dashboard's responses of a time range.
Index("ix_survey_responses_updated_at", Response.updated_at)
Index("ix_survey_responses_submitted_at", Response.submitted_at)
Index("ix_survey_invitations_created_at", Invitation.created_at)
# --- The Delighted-compatible API (services/survey/delighted) ---------------------------------------------
# Delighted's people are survey customers, found by email or phone number, and listed in creation order.
Index("ix_survey_customers_email", Customer.email)
Index("ix_survey_customers_phone", Customer.phone)
Index("ix_survey_customers_created", Customer.created_at, Customer.id)
# Delighted lists responses by creation or update time.
Index("ix_survey_responses_submitted", Response.submitted_at)
Index("ix_survey_responses_updated", Response.updated_at)


class DelightedSurveyRequest(Base):
    """A survey asked for through Delighted's ``POST /people``: waits for ``scheduled_at`` (its ``delay``)."""

    __tablename__ = "survey_delighted_survey_requests"
    __table_args__ = (
        Index("ix_survey_delighted_survey_requests_due", "status", "scheduled_at"),
        Index("ix_survey_delighted_survey_requests_customer", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
    channel: Mapped[str] = mapped_column(String(8))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # pending (waits for scheduled_at), sent (its invitation was requested), cancelled, or skipped.
    status: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime]
    invitation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]


class DelightedSuppression(Base):
    """An unsubscribe or a bounce as Delighted's API lists them: made through it, or imported."""

    __tablename__ = "survey_delighted_suppressions"
    __table_args__ = (UniqueConstraint("kind", "email", name="uq_survey_delighted_suppressions_email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # unsubscribe or bounce
    email: Mapped[str] = mapped_column(String(320))
    customer_id: Mapped[str | None] = mapped_column(String(36), index=True)
    occurred_at: Mapped[datetime]


class DelightedImport(Base):
    """A row of a Delighted export already imported, by the export's own id: a second run skips it."""

    __tablename__ = "survey_delighted_imports"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Ours: the customer's or the response's id; erasure deletes the rows of a customer it erases.
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    imported_at: Mapped[datetime]


outbox = outbox_table(Base.metadata, SERVICE)
consumed_events = consumed_events_table(Base.metadata, SERVICE)
metadata = Base.metadata
