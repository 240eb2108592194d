"""The dispatch service's tables: deliveries and their attempts, opt-outs, inbound SMS, the sandbox outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP
from shared.outbox import consumed_events_table, outbox_table

SERVICE = "dispatch"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "dispatch_alembic_version"


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Delivery(Base):
    """One message to one address, moving scheduled -> sending -> sent -> delivered (or a failure)."""

    __tablename__ = "dispatch_deliveries"
    __table_args__ = (
        # One message per thing that asked for it: a redelivered request finds it and sends nothing again.
        UniqueConstraint("source_id", "kind", name="uq_dispatch_deliveries_source_kind"),
        Index("ix_dispatch_deliveries_invitation", "invitation_id"),
        Index("ix_dispatch_deliveries_due", "status", "next_attempt_at"),
        Index("ix_dispatch_deliveries_address", "channel", "address", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The id of what asked for it, by kind (``DeliveryKind``): an invitation, a referral request...
    source_id: Mapped[str] = mapped_column(String(64))
    # The invitation an invitation delivery carries (its source_id too; kept for the readers that look it
    # up, SMS replies among them); None for every other kind.
    invitation_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(8))
    # Rendered once when scheduled, so a retry sends exactly what the first attempt would have.
    content: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # The provider's detail of the last failure (addresses masked), its error code, and what that means in a
    # sentence a success team understands (``failures.failure_reason``).
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    # The customer's IANA time zone its sending window is reckoned in (the default when they had none).
    timezone: Mapped[str | None] = mapped_column(String(64))
    # An invitation's touchpoint and the end of its answers: reminders are configured by the one, stop at the
    # other.
    touchpoint: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None]
    # Set when an attempt's outcome is unknown (a timeout after the request left): the attempt's start, from
    # which the provider is searched for the message before any new send.
    reconcile_since: Mapped[datetime | None]
    # The channels to fall back to, in order, should this one fail for good: [[channel, address], ...]
    # (WhatsApp falls back to SMS, then email); a fallback is a delivery of its own.
    fallbacks: Mapped[list[list[str]] | None] = mapped_column(JSON)
    # Committed just before an attempt's provider call may leave. A delivery whose worker died with this
    # older than its claim (``updated_at``) never called the provider: it is tried again, not shown unknown.
    call_started_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OptOut(Base):
    __tablename__ = "dispatch_opt_outs"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_dispatch_opt_outs_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class InboundSms(Base):
    """Every inbound SMS once: Twilio's signature has no timestamp, so MessageSid is the guard."""

    __tablename__ = "dispatch_inbound_sms"

    message_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # As Twilio sent it: an E.164 number, or "whatsapp:" and one.
    from_phone: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime]


class ProviderEvent(Base):
    """Provider status reports already applied (SendGrid repeats its events)."""

    __tablename__ = "dispatch_provider_events"

    provider_event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]


class SandboxMessage(Base):
    """What a sandbox transport 'sent': shown on /sandbox instead of leaving the machine."""

    __tablename__ = "dispatch_sandbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


outbox = outbox_table(Base.metadata, SERVICE)
consumed_events = consumed_events_table(Base.metadata, SERVICE)
metadata = Base.metadata
