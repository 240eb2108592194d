"""A unit of work: one transaction of one service, the events it emits, and the events it has consumed.

Use cases take a service runtime whose ``unit_of_work()`` gives one of these; they read and change state
through its repositories and call ``emit`` for the events the change causes. The SQL implementation writes
the state and the outbox rows in one database transaction; ``InMemoryUnitOfWork`` is the fake the unit
tests use, so every use case is tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import copy
from enum import Enum
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.db import Database
from shared.events import EVENTS, new_event
from shared.logs import current_request_id
from shared.outbox import (
    first_consumption,
    first_consumption_unless,
    hold_marks,
    insert_outbox_rows,
    outbox_rows,
    record_event,
)
from shared.scheduling import COMMITTED_EVENTS


class Conflict(Exception):
    """A concurrent transaction changed what this one relied on (a unique key taken meanwhile): try again."""


class Consumption(Enum):
    """What ``UnitOfWork.consume`` found: act on the event, or not."""

    FIRST = "first"  # recorded now: act on it
    REPEAT = "repeat"  # acted on before (a redelivery)
    MARKED = "marked"  # recorded now, but one of the marks exists: do not act (an erased customer's event)


class UnitOfWork:
    """``with uow:`` commits when the block ends and rolls back if it raises; the object can be reused."""

    service: str

    def __enter__(self) -> Self:
        self._after_commit: list[Callable[[], Any]] = []
        self._begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        actions, self._after_commit = self._after_commit, []
        try:
            if exc is not None:
                self._rollback()
                conflict = self._conflict(exc)
                if conflict is not None:
                    raise conflict from exc
                return
            try:
                self._commit()
            except Exception as error:
                self._rollback()
                conflict = self._conflict(error)
                if conflict is not None:
                    raise conflict from error
                raise
        finally:
            self._close()
        for action in actions:
            action()

    def emit(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Validate an event against its contract and queue it for its consumers, in this transaction."""
        producer = EVENTS[event_type].producer
        if producer != self.service:
            raise ValueError(f"{self.service} cannot emit {event_type}: only {producer} does")
        envelope = new_event(event_type, data)
        # The request (or the consumed event) that caused this one: logs across services tell one story.
        if request_id := current_request_id():
            envelope["request_id"] = request_id
        self._store_event(envelope)
        return envelope

    def emit_at_commit(self) -> None:
        """Store the events emitted from now on together when the transaction commits, instead of one by one
        (the survey clock's batch of decisions: one outbox INSERT for the batch, issue 19). Only for a
        transaction that reads no outbox row after emitting: until the commit they are not in the table."""

    def after_commit(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once this transaction has committed (a provider call: never inside one)."""
        self._after_commit.append(action)

    def wake_clock(self) -> None:
        """Once this transaction has committed, wake the clock of this process: its jobs run on wake-ups
        (the outbox relay, a queue's worker) run at once instead of at their next poll. Other processes'
        clocks hear PostgreSQL's NOTIFY, from triggers on the tables they wait on."""
        self.after_commit(COMMITTED_EVENTS.set)

    def first_consumption(self, event_id: str, consumer: str) -> bool:
        """Record that ``consumer`` acts on ``event_id`` in this transaction; False when it already did."""
        raise NotImplementedError

    def was_consumed(self, event_id: str, consumer: str) -> bool:
        """True when ``consumer`` acted on ``event_id`` (a committed record), without recording anything."""
        raise NotImplementedError

    def consume(self, event_id: str, consumer: str, marks: Sequence[tuple[str, str]] = ()) -> Consumption:
        """``first_consumption``, then whether any of ``marks`` (``(event_id, consumer)`` records) exists."""
        if not self.first_consumption(event_id, consumer):
            return Consumption.REPEAT
        if any(self.was_consumed(*mark) for mark in marks):
            return Consumption.MARKED
        return Consumption.FIRST

    def hold_marks(self, marks: Sequence[tuple[str, str]], *, exclusive: bool) -> None:
        """Until this transaction ends, hold ``marks`` (``(event_id, consumer)`` records): shared by
        transactions that act unless a mark exists, exclusive by the one recording them. Each waits for the
        other way's holders to finish, so an erasure sees what a consumer wrote, or the consumer sees the
        erasure's mark, never neither. Only PostgreSQL needs it (its ``consume`` holds them shared): SQLite's
        writers are serialised already."""

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def _store_event(self, envelope: dict[str, Any]) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release what the transaction held."""

    def _conflict(self, error: BaseException) -> Conflict | None:
        """The ``Conflict`` an implementation's error means, if it means one."""
        return None


class SqlUnitOfWork(UnitOfWork):
    """A database transaction (``self.session``) with the service's outbox; subclasses add repositories."""

    def __init__(self, service: str, database: Database, outbox: Table, consumed: Table) -> None:
        self.service = service
        self.database = database
        self.outbox = outbox
        self.consumed = consumed

    def _begin(self) -> None:
        self._wakes_clock = False
        # The outbox rows of the events emitted, as each was emitted; None: stored as they are emitted.
        self._rows_at_commit: list[dict[str, Any]] | None = None
        self.session: Session
        self.session, self._one_connection = self.database.unit_session()
        if self._one_connection is None:
            self.session.begin()
        self._open_repositories(self.session)

    def _open_repositories(self, session: Session) -> None:
        """Subclasses create their repositories on ``session`` here."""

    def emit_at_commit(self) -> None:
        if self._rows_at_commit is None:
            self._rows_at_commit = []

    def _commit(self) -> None:
        if self._rows_at_commit:
            insert_outbox_rows(self.session, self.outbox, self._rows_at_commit)
        one = self._one_connection
        if one is None:
            self.session.commit()
            return
        self.session.flush()  # nothing to do (no statement) when the session holds no change
        if self.session.in_transaction():
            self.session.commit()  # the transaction is the connection's: committed next
        one.commit()

    def _rollback(self) -> None:
        self.session.rollback()
        if self._one_connection is not None:
            self._one_connection.rollback()

    def _close(self) -> None:
        one = self._one_connection
        if one is None:
            self.session.close()
            return
        session = self.session
        if session.in_transaction() or session.identity_map or session.new:
            session.close()  # its objects let go: none loads anything after its connection went back
        one.close()

    def _conflict(self, error: BaseException) -> Conflict | None:
        # A unique key another transaction took first: its caller may try again and find that row.
        return Conflict(str(error.orig)) if isinstance(error, IntegrityError) else None

    def _store_event(self, envelope: dict[str, Any]) -> None:
        if self._rows_at_commit is not None:
            # Created and due when emitted, as record_event would have written them then.
            self._rows_at_commit += outbox_rows(envelope, utcnow())
        else:
            record_event(self.session, self.outbox, envelope)
        if not self._wakes_clock:
            # A clock in this process relays the new rows at once (other processes hear PostgreSQL's NOTIFY).
            self._wakes_clock = True
            self.wake_clock()

    def first_consumption(self, event_id: str, consumer: str) -> bool:
        return first_consumption(self.session, self.consumed, event_id, consumer)

    def consume(self, event_id: str, consumer: str, marks: Sequence[tuple[str, str]] = ()) -> Consumption:
        if not self.database.is_postgresql:
            return super().consume(event_id, consumer, marks)
        # One round trip: the marks held, then the consumer's record and the marks' look-up in one statement.
        first, marked = first_consumption_unless(self.session, self.consumed, event_id, consumer, marks)
        if not first:
            return Consumption.REPEAT
        return Consumption.MARKED if marked else Consumption.FIRST

    def hold_marks(self, marks: Sequence[tuple[str, str]], *, exclusive: bool) -> None:
        if self.database.is_postgresql:
            hold_marks(self.session, marks, exclusive=exclusive)

    def was_consumed(self, event_id: str, consumer: str) -> bool:
        table = self.consumed
        query = select(table.c.event_id).where(table.c.event_id == event_id, table.c.consumer == consumer)
        return self.session.execute(query).first() is not None


class InMemoryUnitOfWork(UnitOfWork):
    """The fake: keeps committed events and consumptions in lists; what a failed block did is dropped.

    Service fakes subclass it and keep their repositories in plain containers, shared across blocks; those
    listed in ``repositories`` (each with a ``rows`` attribute) get their rows back when a block fails, so a
    rolled-back block leaves no row it added (changes to rows that existed before stay, as objects do).
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.events: list[dict[str, Any]] = []
        self.consumed: set[tuple[str, str]] = set()
        self.commits = 0
        self.repositories: list[Any] = []
        self._pending_events: list[dict[str, Any]] = []
        self._pending_consumed: set[tuple[str, str]] = set()
        self._saved_rows: list[Any] | None = None
        self._conflicts: list[Callable[[], Any]] = []

    def fail_next_commit_with_conflict(self, committed_meanwhile: Callable[[], Any] = lambda: None) -> None:
        """The next commit fails as a database's would after ``committed_meanwhile`` committed first.

        Called again, it fails the commit after that as well.
        """
        self._conflicts.append(committed_meanwhile)

    def _begin(self) -> None:
        self._pending_events, self._pending_consumed = [], set()
        self._saved_rows = [copy(repository.rows) for repository in self.repositories]

    def _commit(self) -> None:
        if self._conflicts:
            self._rollback()
            self._conflicts.pop(0)()
            raise Conflict("a concurrent transaction took a unique key first")
        self.events.extend(self._pending_events)
        self.consumed |= self._pending_consumed
        self.commits += 1
        self._saved_rows = None

    def _rollback(self) -> None:
        self._pending_events, self._pending_consumed = [], set()
        if self._saved_rows is not None:
            for repository, rows in zip(self.repositories, self._saved_rows, strict=True):
                repository.rows = rows
            self._saved_rows = None

    def _store_event(self, envelope: dict[str, Any]) -> None:
        self._pending_events.append(envelope)

    def first_consumption(self, event_id: str, consumer: str) -> bool:
        key = (event_id, consumer)
        if key in self.consumed or key in self._pending_consumed:
            return False
        self._pending_consumed.add(key)
        return True

    def was_consumed(self, event_id: str, consumer: str) -> bool:
        return (event_id, consumer) in self.consumed or (event_id, consumer) in self._pending_consumed

    def emitted(self, event_type: str) -> list[dict[str, Any]]:
        """The data of every committed event of this type, oldest first."""
        return [event["data"] for event in self.events if event["type"] == event_type]
