"""The identity tables: staff users, API keys and recent sign-in failures, migrated on their own."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "identity_alembic_version"


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class StaffUserRow(Base):
    __tablename__ = "identity_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Stored normalized (lower case), so the unique constraint is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool]
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "identity_api_keys"

    # The id is the public part of the key itself (clk_<id>_<secret>), so a key finds its row in one lookup.
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SignInFailureRow(Base):
    """One failed sign-in, counted against the email tried and against the client's address."""

    __tablename__ = "identity_sign_in_failures"
    __table_args__ = (
        Index("ix_identity_sign_in_failures_subject", "kind", "subject", "failed_at"),
        Index("ix_identity_sign_in_failures_failed_at", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # "email" or "address"
    subject: Mapped[str] = mapped_column(String(254))
    failed_at: Mapped[datetime]


metadata = Base.metadata
