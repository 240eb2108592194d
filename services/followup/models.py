"""The followup service's tables: the success team's tasks and the referral requests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP
from shared.outbox import consumed_events_table, outbox_table

SERVICE = "followup"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "followup_alembic_version"


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class FollowupTask(Base):
    """A detractor to call back; one per response, kept up to date with the response's latest revision."""

    __tablename__ = "followup_tasks"
    __table_args__ = (Index("ix_followup_tasks_queue", "status", "priority", "due_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    response_revision: Mapped[int]
    invitation_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_external_id: Mapped[str | None] = mapped_column(String(200))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    touchpoint: Mapped[str] = mapped_column(String(32))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[dict[str, Any] | None]
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReferralRequest(Base):
    """A promoter to ask for a referral; sending it is dispatch's job once referral events exist."""

    __tablename__ = "followup_referral_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    invitation_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


outbox = outbox_table(Base.metadata, SERVICE)
consumed_events = consumed_events_table(Base.metadata, SERVICE)
metadata = Base.metadata
