"""The transactional outbox and consumer de-duplication.

A service writes its state change and the events it causes in one transaction (``record_event``); a
relay publishes unpublished rows and marks them. The relay may publish a row twice (a crash between
the broker call and the commit), and dramatiq delivers at least once, so every consumer records the
event ids it has acted on in the same transaction as the effect (``first_consumption``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, String, Table, insert, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.db import Database, UTCDateTime
from shared.scheduling import PeriodicJob

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_outbox",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("published_at", UTCDateTime(), nullable=True),
        Index(f"ix_{service}_outbox_unpublished", "published_at", "created_at"),
    )


def consumed_events_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_consumed_events",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("consumed_at", UTCDateTime(), nullable=False),
    )


def record_event(session: Session, outbox: Table, envelope: dict[str, Any]) -> None:
    """Queue an event for publishing, inside the caller's transaction."""
    session.execute(
        insert(outbox).values(
            event_id=envelope["id"],
            event_type=envelope["type"],
            payload=envelope,
            created_at=utcnow(),
        )
    )


def first_consumption(session: Session, consumed: Table, event_id: str, consumer: str) -> bool:
    """Record that ``consumer`` acts on ``event_id``; False when it already did (a redelivery).

    Two concurrent deliveries of the same event both pass the check, but the primary key lets only one
    transaction commit; the other fails, is retried by dramatiq, and then sees the record.
    """
    seen = session.execute(
        select(consumed.c.event_id).where(consumed.c.event_id == event_id, consumed.c.consumer == consumer)
    ).first()
    if seen:
        return False
    session.execute(insert(consumed).values(event_id=event_id, consumer=consumer, consumed_at=utcnow()))
    return True


class OutboxRelay:
    """Publishes a service's unpublished outbox rows, oldest first. Safe to run in several processes."""

    def __init__(self, database: Database, outbox: Table, publish: Callable[[dict[str, Any]], None]) -> None:
        self.database = database
        self.outbox = outbox
        self.publish = publish

    def relay_pending(self, limit: int = 100) -> int:
        with self.database.transaction() as session:
            query = (
                select(self.outbox.c.event_id, self.outbox.c.payload)
                .where(self.outbox.c.published_at.is_(None))
                .order_by(self.outbox.c.created_at)
                .limit(limit)
            )
            if self.database.is_postgresql:
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            for row in rows:
                self.publish(row.payload)
            if rows:
                session.execute(
                    update(self.outbox)
                    .where(self.outbox.c.event_id.in_([row.event_id for row in rows]))
                    .values(published_at=utcnow())
                )
        if rows:
            log.debug("relayed %d events from %s", len(rows), self.outbox.name)
        return len(rows)


def outbox_relay_job(
    service: str, database: Database, outbox: Table, publish: Callable[[dict[str, Any]], None]
) -> PeriodicJob:
    """The clock job that relays a service's outbox; every tenth of a second keeps the loop quick."""
    return PeriodicJob(f"{service}.outbox", 0.1, OutboxRelay(database, outbox, publish).relay_pending)
