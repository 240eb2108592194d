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

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Update, bindparam, inspect, select, update
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


def claim_held_statement(
    model: type[Any],
    schedule: RetrySchedule,
    where: Iterable[ColumnElement[bool]] = (),
    also: Iterable[str] = (),
) -> Update:
    """The UPDATE ``claim_held`` runs: built once, executed with the parameters ``key`` (the row's primary
    key), ``now`` and one per column of ``also`` (more columns set in the same statement)."""
    # The table's columns, not the model's attributes: a plain UPDATE, run on the session's connection.
    table = inspect(model).local_table
    status, due_at = table.c[schedule.status_field], table.c[schedule.due_field]
    attempts, changed_at = table.c[schedule.attempts_field], table.c[schedule.changed_field]
    [key] = inspect(model).primary_key
    now = bindparam("now", type_=due_at.type)
    return (
        update(table)
        .where(key == bindparam("key"), status.in_(schedule.waiting_states), due_at <= now, *where)
        .values(
            {
                status.key: schedule.in_flight,
                attempts.key: attempts + 1,
                changed_at.key: now,
                **{column: bindparam(column, type_=table.c[column].type) for column in also},
            }
        )
    )


def claim_held(
    session: Session,
    statement: Update,
    schedule: RetrySchedule,
    row: Any,
    now: datetime,
    also: Mapping[str, Any] = MappingProxyType({}),
    parameters: Mapping[str, Any] = MappingProxyType({}),
) -> bool:
    """Claim ``row``, an object held from an earlier transaction, without reading it: ``statement`` (from
    ``claim_held_statement``, with its own ``parameters``) claims it when it is still waiting and due,
    setting the columns ``also`` too. The object is then marked claimed as ``RetrySchedule.mark_claimed``
    does (its attempts counted from its value as held). False: not claimed, nothing changed.
    """
    [key] = inspect(type(row)).primary_key
    values = {"key": getattr(row, key.key), "now": now, **also, **parameters}
    if session.connection().execute(statement, values).rowcount != 1:
        return False
    schedule.mark_claimed(row, now)
    for field, value in also.items():
        setattr(row, field, value)
    return True


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
