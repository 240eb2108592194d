"""The survey service's tables: customers, CRM events, invitations, score clicks, responses and follow-ups."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
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
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_survey_crm_events_source_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    customer_id: Mapped[str] = mapped_column(ForeignKey("survey_customers.id"))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
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


outbox = outbox_table(Base.metadata, SERVICE)
consumed_events = consumed_events_table(Base.metadata, SERVICE)
metadata = Base.metadata
