"""The sentiment service keeps no customer data: only its outbox and the events it has consumed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from shared.outbox import consumed_events_table, outbox_table

SERVICE = "sentiment"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "sentiment_alembic_version"

metadata = MetaData()
outbox = outbox_table(metadata, SERVICE)
consumed_events = consumed_events_table(metadata, SERVICE)
