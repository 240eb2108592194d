"""The survey service's tables: customers, CRM events, invitations, score clicks, responses and follow-ups."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP
from shared.outbox import consumed_events_table, outbox_table

SERVICE = "survey"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "survey_alembic_version"


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
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CrmEvent(Base):
    """Every accepted CRM event and what we decided about it; (source, external_id) is unique."""

    __tablename__ = "survey_crm_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_survey_crm_events_source_id"),
        # The clock's query for delayed surveys come due, and a customer's decisions newest first.
        Index("ix_survey_crm_events_due", "decision", "due_at"),
        Index("ix_survey_crm_events_customer", "customer_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # invited, delayed (waits for due_at) or skipped; a delayed one becomes one of the others when due.
    decision: Mapped[str] = mapped_column(String(16))
    # domain.ReasonCode, for machines; reason and explanation are the sentences for people.
    reason_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    explanation: Mapped[str] = mapped_column(String(400))
    due_at: Mapped[datetime | None]
    decided_at: Mapped[datetime]
    invitation_id: Mapped[str | None] = mapped_column(String(36))


class Invitation(Base):
    __tablename__ = "survey_invitations"
    __table_args__ = (Index("ix_survey_invitations_customer", "customer_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The secret in the answer link; the id never leaves the system in a URL.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
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


class ScoreClick(Base):
    """A GET of a one-click score link: provisional until confirmed on the page or settled."""

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
