"""Prepared statements run through libpq itself, parameters and answers as text: the hot paths' way to
PostgreSQL (issue 19), under ``KeptConnections`` (the CRM intake) and ``driver.execute`` (statements inside a
session's transaction). psycopg's Python layer around a statement (the query converted, each value adapted,
a cursor's result built) costs more CPU than the statement's round trip; libpq's own calls do not.

Imported only by a process that runs such a path on PostgreSQL: it imports psycopg.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import pq

Error = psycopg.Error
IDLE = pq.TransactionStatus.IDLE  # no transaction open on the connection
# The SQLSTATE of a prepared statement the server does not know (deallocated).
UNKNOWN_STATEMENT = "26000"


class PreparedStatements:
    """The statements one user (``prefix``: its names' start) prepared on one connection, by their SQL.

    A connection the pool hands out may have served another user before (a kept connection is taken out of
    the pool that sessions use): each names its statements apart, psycopg's own (``_pg3_N``) included. And
    no two of this process's sets share a name: a set forgotten while its statements still exist (``driver``
    cannot always tell) never collides with the next one's; they go with psycopg's next DEALLOCATE ALL or the
    connection."""

    def __init__(self, prefix: str) -> None:
        self.prefix = f"{prefix}_{next(_SETS)}"
        self.names: dict[str, bytes] = {}


_SETS = itertools.count()


# What a statement that succeeded answers: rows, or a command's tag alone.
_SUCCEEDED = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)


def run_prepared(
    pgconn: Any, prepared: PreparedStatements, sql: str, parameters: Sequence[str | None], encoding: str
) -> Any:
    """Run ``sql`` (parameters ``$1``, ``$2``...) with ``parameters`` (text, or None for null) on ``pgconn``,
    prepared on first use and named in ``prepared``, and return libpq's result; a failed statement raises
    psycopg's error for it."""
    name = prepared.names.get(sql) or _prepare(pgconn, prepared, sql, encoding)
    values = []
    for value in parameters:
        if value is not None and "\x00" in value:
            # libpq takes text parameters up to a NUL; psycopg refuses them too.
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        values.append(None if value is None else value.encode(encoding))
    result = pgconn.exec_prepared(name, values)
    if result.status not in _SUCCEEDED:
        raise psycopg.errors.error_from_result(result, encoding)
    return result


def begin_unless_begun(pgconn: Any, encoding: str) -> None:
    """BEGIN, unless a transaction is open on ``pgconn`` already."""
    if pgconn.transaction_status != IDLE:
        return
    result = pgconn.exec_(b"BEGIN")
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding)


def text_rows(
    result: Any, encoding: str, conversions: Sequence[Callable[[str], Any]] | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``result``: each cell as text, or as its column's conversion reads it (None: null)."""
    conversions = conversions if conversions is not None else (str,) * result.nfields
    return [
        tuple(
            None if (cell := result.get_value(row, column)) is None else convert(cell.decode(encoding))
            for column, convert in enumerate(conversions)
        )
        for row in range(result.ntuples)
    ]


def _prepare(pgconn: Any, prepared: PreparedStatements, sql: str, encoding: str) -> bytes:
    name = f"{prepared.prefix}_{len(prepared.names)}".encode()
    result = pgconn.prepare(name, sql.encode(encoding))
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding)
    prepared.names[sql] = name
    return name
