"""A wall clock for tests: what the code under test reads as now, moved by hand instead of by sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.clock import utcnow


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
