"""Periodic jobs (outbox relays, due deliveries, answer settling) run by a clock loop.

Due times live in the database, so a clock may run in several processes at once: each job claims its
rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and is safe to run twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    interval: float
    run: Callable[[], int]
    next_run: float = field(default=0.0)


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


def run_clock(jobs: Sequence[PeriodicJob], stop: threading.Event, tick: float = 0.1) -> None:
    while not stop.is_set():
        run_due_jobs(jobs)
        stop.wait(tick)
