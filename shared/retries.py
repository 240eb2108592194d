"""How a row that waits for an attempt is retried: due times, attempts counted when claimed, backoff, a lease.

Pure: the domain and the unit tests' fakes use it on plain objects; ``shared.claims`` is its SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class RetrySchedule:
    """How the rows of one table are claimed and retried; states and field names are the table's own."""

    waiting: str  # due at its due time and free to claim
    in_flight: str  # claimed: an attempt is under way
    given_up: str  # no attempt left, or one that cannot succeed
    first_delay: timedelta = timedelta(seconds=30)
    max_attempts: int = 6
    # A provider's Retry-After beyond this is read as this: a day is long enough to wait for anyone, and
    # a hostile header cannot overflow the date.
    max_delay: timedelta = timedelta(days=1)
    # A row in flight for longer than this lost its worker; it must exceed a batch's calls end to end.
    lease: timedelta = timedelta(minutes=15)
    # More states a row waits in and is claimed from when due, as from ``waiting`` (dispatch's quiet hours).
    also_waiting: tuple[str, ...] = ()
    status_field: str = "status"
    due_field: str = "next_attempt_at"
    attempts_field: str = "attempts"
    changed_field: str = "updated_at"

    def next_attempt_at(
        self, attempts: int, now: datetime, retry_after: float | None = None
    ) -> datetime | None:
        """When to try again after ``attempts`` tries (30 s, 1, 2, 4, 8 min...), or None: give up.

        ``retry_after`` is the provider's own wait in seconds; it lengthens the backoff, never shortens it.
        """
        if attempts >= self.max_attempts:
            return None
        delay = min(self.first_delay * 2 ** max(attempts - 1, 0), self.max_delay)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, timedelta(seconds=min(retry_after, self.max_delay.total_seconds())))
        return now + delay

    @property
    def waiting_states(self) -> tuple[str, ...]:
        return (self.waiting, *self.also_waiting)

    def is_due(self, row: Any, now: datetime) -> bool:
        due_at = getattr(row, self.due_field)
        return getattr(row, self.status_field) in self.waiting_states and due_at is not None and due_at <= now

    def is_stalled(self, row: Any, now: datetime) -> bool:
        changed_at = getattr(row, self.changed_field)
        return getattr(row, self.status_field) == self.in_flight and changed_at <= now - self.lease

    def mark_claimed(self, row: Any, now: datetime) -> None:
        """In flight from ``now``, one attempt more."""
        setattr(row, self.status_field, self.in_flight)
        setattr(row, self.attempts_field, getattr(row, self.attempts_field) + 1)
        setattr(row, self.changed_field, now)

    def retry_later(self, row: Any, now: datetime, retry_after: float | None = None) -> datetime | None:
        """Back to waiting until the next attempt is due; given up (None) when no attempt is left."""
        retry_at = self.next_attempt_at(getattr(row, self.attempts_field), now, retry_after)
        if retry_at is None:
            self.finish(row, self.given_up, now)
            return None
        setattr(row, self.status_field, self.waiting)
        setattr(row, self.due_field, retry_at)
        setattr(row, self.changed_field, now)
        return retry_at

    def finish(self, row: Any, status: str, now: datetime) -> None:
        """Out of the schedule in ``status`` (done, or ``given_up``): nothing is due any more."""
        setattr(row, self.status_field, status)
        setattr(row, self.due_field, None)
        setattr(row, self.changed_field, now)
