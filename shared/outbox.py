"""The transactional outbox, its relay and consumer de-duplication: nothing accepted is lost or done twice.

A service writes its state change and the events it causes in one transaction: one outbox row per event and
consuming service. An event is done when its consumer has acted, not when it was published: the consumer
acknowledges each event after its transaction commits (``Outbox.acknowledge``, reached through the broker),
and the relay publishes again every row not acknowledged in time, with a growing delay, until it is. So a
message lost by the broker (an in-process queue dying with its process, Redis without a fsync, a worker
killed while holding it) comes back; the consumers record the event ids they acted on in the same
transaction as the effect (``first_consumption``), so a second delivery changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import Session

from shared import driver
from shared.clock import utcnow
from shared.db import Database, UTCDateTime
from shared.events import EVENTS
from shared.settings import Settings

log = logging.getLogger(__name__)

# Publishes an envelope to one consuming service's queue; returns once the broker has accepted it.
Publish = Callable[[str, dict[str, Any]], None]


def outbox_channel(service: str) -> str:
    """What a trigger on the service's outbox table NOTIFYs on PostgreSQL when rows are inserted."""
    return f"{service}_outbox_committed"


def outbox_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_outbox",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("consumer", String(32), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("publish_attempts", Integer, nullable=False, default=0),
        Column("published_at", UTCDateTime(), nullable=True),
        # When the relay publishes this row (again); None once acknowledged or given up.
        Column("next_publish_at", UTCDateTime(), nullable=True),
        Column("acknowledged_at", UTCDateTime(), nullable=True),
        Index(f"ix_{service}_outbox_due", "next_publish_at"),
    )


def consumed_events_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_consumed_events",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("consumed_at", UTCDateTime(), nullable=False, index=True),
    )


def record_event(session: Session, outbox: Table, envelope: dict[str, Any]) -> None:
    """Queue an event for each of its consumers, inside the caller's transaction.

    On the session's connection, not through the session: no autoflush first. The rows refer to nothing, and
    what the transaction changed meanwhile is written with its next flush (one flush for a decision's
    invitation and the next decision's customer, not one each)."""
    insert_outbox_rows(session, outbox, outbox_rows(envelope, utcnow()))


def outbox_rows(envelope: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of an event emitted at ``now``: one per consumer, due at once."""
    return [
        {
            "event_id": envelope["id"],
            "consumer": consumer,
            "event_type": envelope["type"],
            "payload": envelope,
            "created_at": now,
            "publish_attempts": 0,
            "next_publish_at": now,
        }
        for consumer in EVENTS[envelope["type"]].consumers
    ]


def insert_outbox_rows(session: Session, outbox: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``outbox_rows`` of any number of events in one statement, as ``record_event`` writes them."""
    session.connection().execute(insert(outbox), rows)


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


def hold_marks(session: Session, marks: Sequence[tuple[str, str]], *, exclusive: bool) -> None:
    """PostgreSQL: take a transaction-scoped advisory lock per mark (shared, or exclusive for the transaction
    that records the marks), waiting for any transaction holding one the other way."""
    locks = _marks_held(marks, exclusive=exclusive)
    if locks:
        # Straight to the driver: this runs once per event consumed, on the loop's hot path (issue 19).
        driver.execute_all(session, locks)


def _marks_held(
    marks: Sequence[tuple[str, str]], *, exclusive: bool
) -> list[tuple[Select[Any], dict[str, Any]]]:
    """The statement that holds ``marks`` (``hold_marks``), with its values; none for no marks."""
    # Sorted keys: two transactions taking several locks take them in the same order, never crosswise.
    keys = sorted({_lock_key(event_id, consumer) for event_id, consumer in marks})
    if not keys:
        return []
    return [(_lock_statement(len(keys), exclusive), {f"key_{n}": key for n, key in enumerate(keys)})]


@lru_cache(maxsize=32)
def _lock_statement(count: int, exclusive: bool) -> Select[Any]:
    """The locks of ``count`` keys, taken left to right (as PostgreSQL evaluates a row's expressions)."""
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    return select(*(lock(bindparam(f"key_{n}", type_=BigInteger)) for n in range(count)))


def _lock_key(event_id: str, consumer: str) -> int:
    digest = hashlib.blake2b(f"{consumer}:{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def first_consumption_unless(
    session: Session, consumed: Table, event_id: str, consumer: str, marks: Sequence[tuple[str, str]]
) -> tuple[bool, bool]:
    """PostgreSQL, in one statement: record that ``consumer`` acts on ``event_id`` unless it already did,
    and whether any of ``marks`` (other consumed-event records) exists. (first consumption, a mark exists).
    The marks are held first (shared: ``hold_marks``), by a statement of their own sent with this one: the
    look-up reads what was committed while the lock waited.

    A concurrent delivery of the same event waits for the first one's transaction: committed, it records
    nothing and reads as a repeat; rolled back, it records the consumption itself.
    """
    values = {"event_id": event_id, "consumer": consumer, "consumed_at": utcnow()}
    for n, (mark_event_id, mark_consumer) in enumerate(marks):
        values |= {f"mark_event_id_{n}": mark_event_id, f"mark_consumer_{n}": mark_consumer}
    statement = _consumption_statement(consumed, len(marks))
    statements = [*_marks_held(marks, exclusive=False), (statement, values)]
    ((first, marked),) = driver.execute_all(session, statements)[-1].rows
    return bool(first), bool(marked)


@lru_cache(maxsize=64)
def _consumption_statement(consumed: Table, marks: int) -> Select[Any]:
    # Built once per table and number of marks (a parameter each: prepared, it keeps one shape).
    recorded = (
        postgresql_insert(consumed)
        .values(
            event_id=bindparam("event_id"),
            consumer=bindparam("consumer"),
            consumed_at=bindparam("consumed_at", type_=consumed.c.consumed_at.type),
        )
        .on_conflict_do_nothing()
        .returning(literal(1))
        .cte("recorded")
    )
    named = [
        and_(
            consumed.c.event_id == bindparam(f"mark_event_id_{n}", type_=consumed.c.event_id.type),
            consumed.c.consumer == bindparam(f"mark_consumer_{n}", type_=consumed.c.consumer.type),
        )
        for n in range(marks)
    ]
    marked = exists().where(or_(*named)) if named else false()
    return select(exists(select(recorded)), marked)


# The rows a relay's run publishes at most; a run that published this many is followed by another at once.
RELAY_BATCH = 100


@dataclass(frozen=True)
class OutboxPolicy:
    """How long the relay waits for an acknowledgement, and how long rows are kept."""

    # A first publish not acknowledged within this is published again; each further wait doubles.
    redeliver_after: timedelta = timedelta(seconds=60)
    max_redeliver_delay: timedelta = timedelta(hours=1)
    # After this many publishes the row is given up and logged as an error (about a day with the defaults).
    max_publishes: int = 30
    # Acknowledged and given-up rows, and consumed-event records, are deleted after this: they hold
    # personal data, and no redelivery can come later than the relay gives up.
    retention: timedelta = timedelta(days=7)

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxPolicy:
        return cls(
            redeliver_after=timedelta(seconds=settings.outbox_redeliver_after),
            retention=timedelta(days=settings.outbox_retention_days),
        )

    def next_publish_at(self, publishes: int, now: datetime) -> datetime | None:
        if publishes >= self.max_publishes:
            return None
        delay = self.redeliver_after * 2 ** min(publishes - 1, 20)
        return now + min(delay, self.max_redeliver_delay)


class Outbox:
    """One service's outbox: relayed to the broker until every consumer has acknowledged each event."""

    def __init__(
        self,
        database: Database,
        table: Table,
        consumed: Table,
        policy: OutboxPolicy | None = None,
    ) -> None:
        self.database = database
        self.table = table
        self.consumed = consumed
        self.policy = policy or OutboxPolicy()

    def relay_due(self, publish: Publish, limit: int = RELAY_BATCH, now: datetime | None = None) -> int:
        """Publish the rows whose time has come, oldest first. Safe to run in several processes."""
        now = now or utcnow()
        table = self.table
        with self.database.transaction() as session:
            query = (
                select(table.c.event_id, table.c.consumer, table.c.payload, table.c.publish_attempts)
                .where(table.c.next_publish_at <= now)
                .order_by(table.c.next_publish_at)
                .limit(limit)
            )
            if self.database.is_postgresql:
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            # Rows published as often as each other are marked together: one UPDATE for a batch of new rows.
            published: dict[int, list[tuple[str, str]]] = {}
            for row in rows:
                # Returns only once the broker has the message (RabbitMQ: its publisher confirm); a failure
                # rolls the whole batch back, to be published again next time.
                publish(row.consumer, row.payload)
                publishes = row.publish_attempts + 1
                if self.policy.next_publish_at(publishes, now) is None:
                    log.error(
                        "%s: %s event %s was published %d times and never acknowledged by %s; giving up",
                        table.name,
                        row.payload["type"],
                        row.event_id,
                        publishes,
                        row.consumer,
                    )
                published.setdefault(publishes, []).append((row.event_id, row.consumer))
            for publishes, keys in published.items():
                session.execute(
                    update(table)
                    .where(tuple_(table.c.event_id, table.c.consumer).in_(keys))
                    .values(
                        publish_attempts=publishes,
                        published_at=now,
                        next_publish_at=self.policy.next_publish_at(publishes, now),
                    )
                )
        if rows:
            log.debug("relayed %d events from %s", len(rows), table.name)
        return len(rows)

    def acknowledge(self, event_id: str, consumer: str) -> None:
        """``consumer`` has acted on ``event_id`` (or refused it for good): stop publishing it."""
        self.acknowledge_all([event_id], consumer)

    def acknowledge_all(self, event_ids: Sequence[str], consumer: str) -> None:
        """``acknowledge`` for many events of one consumer, in one statement."""
        if not event_ids:
            return
        with self.database.transaction() as session:
            session.execute(
                update(self.table)
                .where(
                    self.table.c.event_id.in_(event_ids),
                    self.table.c.consumer == consumer,
                    self.table.c.acknowledged_at.is_(None),
                )
                .values(acknowledged_at=utcnow(), next_publish_at=None)
            )

    def backlog(self) -> tuple[int, datetime | None]:
        """How many rows wait to be acknowledged (due or published), and when the oldest was written."""
        waiting = self.table.c.next_publish_at.is_not(None)
        with self.database.transaction() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(self.table.c.created_at)).where(waiting)
            ).one()
        return int(count), oldest

    def prune(self, now: datetime | None = None) -> int:
        """Delete what is older than the retention: finished outbox rows and consumed-event records."""
        cutoff = (now or utcnow()) - self.policy.retention
        with self.database.transaction() as session:
            finished = session.execute(
                delete(self.table).where(
                    and_(self.table.c.created_at < cutoff, self.table.c.next_publish_at.is_(None))
                )
            ).rowcount
            consumed = session.execute(
                delete(self.consumed).where(self.consumed.c.consumed_at < cutoff)
            ).rowcount
        return finished + consumed


def forget_events_mentioning(session: Session, table: Table, marker: str) -> int:
    """Delete the outbox rows whose event mentions ``marker`` (an erased customer's id or address): their
    payloads carry that customer's personal data."""
    if len(marker) < 6:
        raise ValueError("forget_events_mentioning needs an id or an address, not a fragment")
    condition = cast(table.c.payload, Text).contains(marker, autoescape=True)
    return session.execute(delete(table).where(condition)).rowcount
