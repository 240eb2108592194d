"""Rows that wait for an attempt: claimed when due, counted when claimed, retried with backoff, recovered
when the worker holding them died.

A table that uses this has a status, a due time, an attempts counter and the time its row was last changed
(which, for a claimed row, is when the claim began). A worker claims due rows in a short transaction and
commits, makes its call outside any transaction, then records the outcome in another. The attempt is
counted at claim time, so a row that keeps killing its worker still stops at ``max_attempts``
(dramatiq gives a SIGKILLed worker's message back regardless of its retry count).

``shared.retries.RetrySchedule`` says when; ``claim_due`` and ``recover_stalled`` are its SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from shared.retries import RetrySchedule

Row = TypeVar("Row")


def claim_due(
    session: Session,
    model: type[Row],
    schedule: RetrySchedule,
    now: datetime,
    limit: int,
    where: Iterable[ColumnElement[bool]] = (),
) -> list[Row]:
    """Claim up to ``limit`` due rows of ``model`` (and ``where``), earliest due first.

    Commit the caller's transaction before making the calls: the claim holds from then on.
    """
    status, due_at = _column(model, schedule.status_field), _column(model, schedule.due_field)
    query = select(model).where(status.in_(schedule.waiting_states), due_at <= now, *where)
    query = query.order_by(due_at).limit(limit)
    rows = list(session.scalars(_skip_locked(session, query)).all())
    for row in rows:
        schedule.mark_claimed(row, now)
    return rows


def recover_stalled(session: Session, model: type[Row], schedule: RetrySchedule, now: datetime) -> list[Row]:
    """Put rows whose claim outlived the lease back on the schedule (or give them up), and return them.

    The call they were making may have reached its provider: a rare repeat beats a message never sent.
    """
    rows = stalled(session, model, schedule, now)
    for row in rows:
        schedule.retry_later(row, now)
    return rows


def stalled(session: Session, model: type[Row], schedule: RetrySchedule, now: datetime) -> list[Row]:
    """Rows whose claim outlived the lease, locked and unchanged: for a caller that decides their fate."""
    status, changed_at = _column(model, schedule.status_field), _column(model, schedule.changed_field)
    query = select(model).where(status == schedule.in_flight, changed_at <= now - schedule.lease)
    return list(session.scalars(_skip_locked(session, query)).all())


def _skip_locked(session: Session, query: Select[Any]) -> Select[Any]:
    # PostgreSQL: claimers in several processes each take different rows, none waits for another.
    # SQLite needs nothing: its transactions begin IMMEDIATE (shared.db), one writer at a time.
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _column(model: type[Any], field: str) -> Any:
    return getattr(model, field)
