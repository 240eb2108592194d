"""The claim-and-retry rules, on plain objects: backoff, claims, retries, stalled claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from shared.retries import RetrySchedule

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule(waiting="waiting", in_flight="calling", given_up="gave_up", max_attempts=4)


@dataclass
class Row:
    status: str = "waiting"
    next_attempt_at: datetime | None = NOW
    attempts: int = 0
    updated_at: datetime = NOW


@pytest.mark.parametrize(("attempts", "wait"), [(1, 30), (2, 60), (3, 120)])
def test_backoff_starts_at_thirty_seconds_and_doubles(attempts, wait):
    assert SCHEDULE.next_attempt_at(attempts, NOW) == NOW + timedelta(seconds=wait)


def test_no_attempt_after_the_last():
    assert SCHEDULE.next_attempt_at(4, NOW) is None
    assert SCHEDULE.next_attempt_at(4, NOW, retry_after=1) is None


def test_providers_retry_after_lengthens_the_wait_and_never_shortens_it():
    assert SCHEDULE.next_attempt_at(1, NOW, retry_after=600) == NOW + timedelta(minutes=10)
    assert SCHEDULE.next_attempt_at(2, NOW, retry_after=5) == NOW + timedelta(seconds=60)


def test_absurd_retry_after_waits_at_most_a_day():
    assert SCHEDULE.next_attempt_at(1, NOW, retry_after=1e15) == NOW + timedelta(days=1)


def test_row_is_due_only_while_waiting_and_once_its_time_has_come():
    assert SCHEDULE.is_due(Row(), NOW)
    assert not SCHEDULE.is_due(Row(next_attempt_at=NOW + timedelta(seconds=1)), NOW)
    assert not SCHEDULE.is_due(Row(next_attempt_at=None), NOW)
    assert not SCHEDULE.is_due(Row(status="calling"), NOW)


def test_claim_counts_the_attempt_and_starts_the_lease():
    row = Row(attempts=2, updated_at=NOW - timedelta(hours=1))
    SCHEDULE.mark_claimed(row, NOW)
    assert (row.status, row.attempts, row.updated_at) == ("calling", 3, NOW)


def test_claim_is_stalled_only_once_its_lease_has_passed():
    row = Row(status="calling", updated_at=NOW)
    assert not SCHEDULE.is_stalled(row, NOW + timedelta(minutes=14))
    assert SCHEDULE.is_stalled(row, NOW + timedelta(minutes=15))
    assert not SCHEDULE.is_stalled(Row(status="waiting", updated_at=NOW), NOW + timedelta(hours=1))


def test_failed_attempt_waits_for_the_next_one():
    row = Row(status="calling", attempts=2)
    assert SCHEDULE.retry_later(row, NOW, retry_after=90) == NOW + timedelta(seconds=90)
    assert (row.status, row.next_attempt_at, row.updated_at) == ("waiting", NOW + timedelta(seconds=90), NOW)


def test_failed_last_attempt_gives_the_row_up():
    row = Row(status="calling", attempts=4)
    assert SCHEDULE.retry_later(row, NOW) is None
    assert (row.status, row.next_attempt_at) == ("gave_up", None)


def test_finished_row_has_nothing_due():
    row = Row(status="calling", attempts=1)
    SCHEDULE.finish(row, "done", NOW)
    assert (row.status, row.next_attempt_at, row.updated_at) == ("done", None, NOW)
    assert not SCHEDULE.is_due(row, NOW)


def test_a_table_names_its_own_fields():
    @dataclass
    class Webhook:
        state: str
        deliver_at: datetime
        tries: int
        claimed_at: datetime

    schedule = RetrySchedule(
        "pending",
        "posting",
        "abandoned",
        status_field="state",
        due_field="deliver_at",
        attempts_field="tries",
        changed_field="claimed_at",
    )
    webhook = Webhook("pending", NOW, 0, NOW)
    assert schedule.is_due(webhook, NOW)
    schedule.mark_claimed(webhook, NOW)
    assert schedule.retry_later(webhook, NOW) == NOW + timedelta(seconds=30)
    assert (webhook.state, webhook.tries) == ("pending", 1)
