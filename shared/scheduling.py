"""Periodic jobs (outbox relays, due deliveries, answer settling) run by a clock loop.

Due times live in the database, so a clock may run in several processes at once: each job claims its
rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and is safe to run twice.

A clock is also woken when new outbox rows are committed, so the relay publishes them at once instead of
at its next poll: in one process by ``COMMITTED_EVENTS`` (set by the unit of work after a commit that
emitted events), across processes by PostgreSQL's ``NOTIFY`` (``PostgresWakeup``, from a trigger on each
outbox table). A service's queue table wakes its clock on ``ServiceWiring.wake_channels`` (survey's received
CRM events: the intake's commit in-process, and across processes a NOTIFY the intake's process sends after
its commits, ``PostgresWaker``). The poll remains, less often, for redeliveries and anything a wake-up missed.
Across processes a notification wakes only the jobs of its channel (``PeriodicJob.wake_channel``), and a job
that did a whole batch runs again at once (``PeriodicJob.batch``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    interval: float
    run: Callable[[], int]
    next_run: float = field(default=0.0)
    # Run at once when the clock is woken (events committed), besides every ``interval``.
    on_wakeup: bool = False
    # Woken only by notifications on this channel (None: by any), so a clock woken by new outbox rows does not
    # also look for received CRM events, nor the other way round: each look is a transaction (issue 19).
    wake_channel: str | None = None
    # A run that did this many (a whole batch) is followed by another at once, without waiting for a wake-up
    # or the interval: the rest of a backlog is next. None: every run waits.
    batch: int | None = None


# What a wake-up that cannot tell what it heard (in-process, or on connecting) wakes: every job woken by any.
EVERY_CHANNEL = frozenset({"*"})
NOTHING_HEARD: frozenset[str] = frozenset()


class Wakeup(Protocol):
    def wait(self, timeout: float) -> frozenset[str]:
        """Block up to ``timeout`` seconds; the channels heard (``EVERY_CHANNEL`` when it cannot tell which),
        empty when nothing was committed meanwhile."""
        ...


class CommittedEvents:
    """The in-process wake-up: set after a commit that emitted events, waited on by a clock in the process."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> frozenset[str]:
        if not self._event.wait(timeout):
            return NOTHING_HEARD
        # Cleared before the jobs run, so a commit after this point wakes the next wait instead of being lost.
        self._event.clear()
        return EVERY_CHANNEL


COMMITTED_EVENTS = CommittedEvents()


class PostgresWakeup:
    """Wakes a clock when another process commits outbox rows: LISTEN on what their triggers notify."""

    def __init__(self, dsn: str, channels: Sequence[str]) -> None:
        self._dsn = dsn
        self._channels = tuple(channels)
        self._connection: Any = None

    def wait(self, timeout: float) -> frozenset[str]:
        import psycopg  # noqa: PLC0415 (only services mode on PostgreSQL listens)
        from psycopg import sql  # noqa: PLC0415

        try:
            if self._connection is None:
                self._connection = psycopg.connect(self._dsn, autocommit=True)
                for channel in self._channels:
                    self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                return EVERY_CHANNEL  # notifications sent while not listening are lost: look once now
            # The first notification ends the wait; any others already queued are heard by the next one.
            notes = self._connection.notifies(timeout=timeout, stop_after=1)
            return frozenset(note.channel for note in notes)
        except psycopg.Error as error:
            log.warning("listening for committed events failed (%s); polling until it works again", error)
            self.close()
            time.sleep(timeout)
            return EVERY_CHANNEL

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


_NOTIFY = "SELECT pg_notify($1, '')"


class PostgresWaker:
    """Wakes the clocks listening on ``channel`` (``PostgresWakeup``) after commits that did not NOTIFY
    themselves: ``wake()`` only sets a flag, and a thread of this process sends the notifications on a
    connection of its own, at most one every ``interval`` seconds: the first commit after a quiet while is
    heard at once, a busy process's commits cost a notification every ``interval`` (not a round trip each).

    Why not a trigger's NOTIFY in the committing transaction (issue 19): PostgreSQL queues every transaction
    that notifies behind one lock of the whole server, held until its commit is on disk, so the intake's
    commits could not share a disk flush with each other (nor with other services' notifying commits). A
    wake-up is not a record: it is sent without waiting for the disk (``synchronous_commit`` off), tried again
    every second while it fails, and one lost with its process is made up by the clock's poll.
    """

    def __init__(self, dsn: str, channel: str, interval: float = 0.01) -> None:
        self._dsn = dsn
        self._channel = channel
        self._interval = interval
        self._pending = threading.Event()
        self._started_in = 0  # the process whose thread sends (gunicorn forks its workers)
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def wake(self) -> None:
        if self._started_in != os.getpid():
            self._start()
        self._pending.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._started_in == os.getpid() or self._closed:
                return
            self._pending = threading.Event()  # not a parent's, whose thread did not come through fork
            self._thread = threading.Thread(target=self._send, name=f"waker-{self._channel}", daemon=True)
            self._started_in = os.getpid()
            self._thread.start()

    def _send(self) -> None:
        import psycopg  # noqa: PLC0415 (only services mode on PostgreSQL wakes another process)

        from shared import libpq  # noqa: PLC0415 (imports psycopg too)

        pending, connection, failing = self._pending, None, False
        while True:
            pending.wait()
            if self._closed:
                break
            pending.clear()  # before sending: a commit from now on is followed by another notification
            try:
                if connection is None:
                    connection = psycopg.connect(self._dsn, autocommit=True)
                    connection.execute("SET synchronous_commit = off")
                    prepared = libpq.PreparedStatements("waker")
                # On libpq itself: psycopg's cursor cost the intake's process more than the round trip.
                libpq.run_prepared(
                    connection.pgconn, prepared, _NOTIFY, [self._channel], connection.info.encoding
                )
                failing = False
                time.sleep(self._interval)  # the commits meanwhile share the next notification
            except psycopg.Error as error:
                if not failing:  # once, not every second while the database is away
                    log.warning("waking the clocks on %s failed (%s); trying again", self._channel, error)
                failing = True
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(1.0)
                pending.set()  # the commits it was for are still to be heard of
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Stop this process's sending thread (the database is disposed of)."""
        self._closed = True
        self._pending.set()
        if self._thread is not None and self._started_in == os.getpid():
            self._thread.join(timeout=5)


def run_due_jobs(jobs: Sequence[PeriodicJob], monotonic: Callable[[], float] = time.monotonic) -> int:
    """Runs each job whose interval has passed; a failing job is logged and tried again next time."""
    done = 0
    for job in jobs:
        now = monotonic()
        if now < job.next_run:
            continue
        ran = 0
        try:
            ran = job.run()
        except Exception:
            log.exception("periodic job %s failed", job.name)
        done += ran
        job.next_run = now if job.batch is not None and ran >= job.batch else now + job.interval
    return done


def run_clock(
    jobs: Sequence[PeriodicJob], stop: threading.Event, tick: float = 0.1, wakeup: Wakeup | None = None
) -> None:
    while not stop.is_set():
        run_due_jobs(jobs)
        # A job's backlog goes on at once; what was committed meanwhile is heard all the same.
        backlog = any(job.next_run <= time.monotonic() for job in jobs)
        if wakeup is None:
            if not backlog:
                stop.wait(tick)
            continue
        heard = wakeup.wait(0.0 if backlog else tick)
        for job in jobs:
            if job.on_wakeup and _woken(job, heard):
                job.next_run = 0.0


def _woken(job: PeriodicJob, heard: frozenset[str]) -> bool:
    if not heard:
        return False
    return job.wake_channel is None or job.wake_channel in heard or heard >= EVERY_CHANNEL
