"""Periodic jobs (outbox relays, due deliveries, answer settling) run by a clock loop.

Due times live in the database, so a clock may run in several processes at once: each job claims its
rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and is safe to run twice.

A clock is also woken when new outbox rows are committed, so the relay publishes them at once instead of
at its next poll: in one process by ``COMMITTED_EVENTS`` (set by the unit of work after a commit that
emitted events), across processes by PostgreSQL's ``NOTIFY`` (``PostgresWakeup``, from a trigger on each
outbox table). A service's queue table wakes its clock the same way (survey's received CRM events: the
intake's commit in-process, a trigger's NOTIFY on ``ServiceWiring.wake_channels`` across processes). The poll
remains, less often, for redeliveries and anything a wake-up missed.
"""

from __future__ import annotations

import logging
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


class Wakeup(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when woken because events were committed."""
        ...


class CommittedEvents:
    """The in-process wake-up: set after a commit that emitted events, waited on by a clock in the process."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        if not self._event.wait(timeout):
            return False
        # Cleared before the jobs run, so a commit after this point wakes the next wait instead of being lost.
        self._event.clear()
        return True


COMMITTED_EVENTS = CommittedEvents()


class PostgresWakeup:
    """Wakes a clock when another process commits outbox rows: LISTEN on what their triggers notify."""

    def __init__(self, dsn: str, channels: Sequence[str]) -> None:
        self._dsn = dsn
        self._channels = tuple(channels)
        self._connection: Any = None

    def wait(self, timeout: float) -> bool:
        import psycopg  # noqa: PLC0415 (only services mode on PostgreSQL listens)
        from psycopg import sql  # noqa: PLC0415

        try:
            if self._connection is None:
                self._connection = psycopg.connect(self._dsn, autocommit=True)
                for channel in self._channels:
                    self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                return True  # notifications sent while not listening are lost: look once now
            return any(True for _ in self._connection.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as error:
            log.warning("listening for committed events failed (%s); polling until it works again", error)
            self.close()
            time.sleep(timeout)
            return True

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def run_due_jobs(jobs: Sequence[PeriodicJob], monotonic: Callable[[], float] = time.monotonic) -> int:
    """Runs each job whose interval has passed; a failing job is logged and tried again next time."""
    done = 0
    for job in jobs:
        now = monotonic()
        if now < job.next_run:
            continue
        try:
            done += job.run()
        except Exception:
            log.exception("periodic job %s failed", job.name)
        job.next_run = now + job.interval
    return done


def run_clock(
    jobs: Sequence[PeriodicJob], stop: threading.Event, tick: float = 0.1, wakeup: Wakeup | None = None
) -> None:
    while not stop.is_set():
        run_due_jobs(jobs)
        if wakeup is None:
            stop.wait(tick)
        elif wakeup.wait(tick):
            for job in jobs:
                if job.on_wakeup:
                    job.next_run = 0.0
