"""Claims on a real database: claimers in several processes never take the same row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Integer, MetaData, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.claims import claim_due, recover_stalled
from shared.db import TYPE_ANNOTATION_MAP, Database
from shared.retries import RetrySchedule

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule(waiting="waiting", in_flight="calling", given_up="gave_up")


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Job(Base):
    __tablename__ = "claims_test_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


@contextmanager
def jobs_database(url: str, count: int) -> Iterator[Database]:
    """A database with ``count`` waiting jobs, the one with the highest id due first."""
    database = Database(url)
    Base.metadata.create_all(database.engine)
    with database.transaction() as session:
        session.add_all(
            Job(
                id=n, status="waiting", next_attempt_at=NOW - timedelta(seconds=n), attempts=0, updated_at=NOW
            )
            for n in range(count)
        )
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def postgres_jobs(postgres_url) -> Iterator[Database]:
    with jobs_database(postgres_url, 10) as database:
        yield database


def jobs(database: Database) -> list[Job]:
    with database.transaction() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def test_second_claimer_skips_the_rows_the_first_holds(postgres_jobs):
    first, second = postgres_jobs.session(), postgres_jobs.session()
    with first.begin():
        taken_first = {job.id for job in claim_due(first, Job, SCHEDULE, NOW, limit=6)}
        with second.begin():
            # Waiting for the first claimer's locks would be a failure too, not a hang.
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            taken_second = {job.id for job in claim_due(second, Job, SCHEDULE, NOW, limit=6)}

    assert len(taken_first) == 6 and len(taken_second) == 4
    assert taken_first.isdisjoint(taken_second)
    assert taken_first == {9, 8, 7, 6, 5, 4}  # earliest due first
    assert {(job.status, job.attempts) for job in jobs(postgres_jobs)} == {("calling", 1)}


def test_concurrent_claimers_take_every_row_exactly_once(postgres_url):
    with jobs_database(postgres_url, 200) as database:
        claimed: list[list[int]] = [[] for _ in range(4)]
        start = threading.Barrier(4)

        def claimer(mine: list[int]) -> None:
            start.wait()
            while True:
                with database.transaction() as session:
                    batch = claim_due(session, Job, SCHEDULE, NOW, limit=5)
                    mine.extend(job.id for job in batch)
                if not batch:
                    return

        threads = [threading.Thread(target=claimer, args=(mine,)) for mine in claimed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        every_claim = [job_id for mine in claimed for job_id in mine]
        assert sorted(every_claim) == list(range(200))
        assert {job.attempts for job in jobs(database)} == {1}


def test_stalled_claims_are_put_back_on_the_schedule(postgres_jobs):
    with postgres_jobs.transaction() as session:
        claim_due(session, Job, SCHEDULE, NOW, limit=3)
    later = NOW + SCHEDULE.lease
    with postgres_jobs.transaction() as session:
        assert recover_stalled(session, Job, SCHEDULE, later - timedelta(seconds=1)) == []
        recovered = recover_stalled(session, Job, SCHEDULE, later)

    assert len(recovered) == 3
    assert {
        (job.status, job.attempts, job.next_attempt_at) for job in jobs(postgres_jobs) if job.id >= 7
    } == {("waiting", 1, later + timedelta(seconds=30))}


def test_claims_on_sqlite_take_due_rows_without_row_locks(sqlite_url):
    with jobs_database(sqlite_url, 3) as database:
        with database.transaction() as session:
            assert [job.id for job in claim_due(session, Job, SCHEDULE, NOW, limit=2)] == [2, 1]
        with database.transaction() as session:
            assert [job.id for job in claim_due(session, Job, SCHEDULE, NOW, limit=2)] == [0]
