"""Prepared statements run through libpq itself, parameters and answers as text: the hot paths' way to
PostgreSQL (issue 19), under ``KeptConnections`` (the CRM intake) and ``driver.execute`` (statements inside a
session's transaction). psycopg's Python layer around a statement (the query converted, each value adapted,
a cursor's result built) costs more CPU than the statement's round trip; libpq's own calls do not.

Imported only by a process that runs such a path on PostgreSQL: it imports psycopg.
"""

from __future__ import annotations

import itertools
import select
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


# Pipeline mode came with libpq 14: psycopg's binary package brings a newer one; a system's may be older.
PIPELINES = pq.version() >= 140000

# What a statement that succeeded answers: rows, or a command's tag alone.
_SUCCEEDED = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)


def run_prepared(
    pgconn: Any, prepared: PreparedStatements, sql: str, parameters: Sequence[str | None], encoding: str
) -> Any:
    """Run ``sql`` (parameters ``$1``, ``$2``...) with ``parameters`` (text, or None for null) on ``pgconn``,
    prepared on first use and named in ``prepared``, and return libpq's result; a failed statement raises
    psycopg's error for it."""
    return run_all_prepared(pgconn, prepared, [(sql, parameters)], encoding)[0]


def run_all_prepared(
    pgconn: Any,
    prepared: PreparedStatements,
    statements: Sequence[tuple[str, Sequence[str | None]]],
    encoding: str,
    *,
    begin: bool = False,
) -> list[Any]:
    """``run_prepared`` for each ``(sql, parameters)`` in order, and their results; ``begin``: a BEGIN first.
    More than one command is sent at once (one round trip): each runs once the one before ended, and the
    first that fails raises its error (the rest were not run)."""
    runs = [
        (prepared.names.get(sql) or _prepare(pgconn, prepared, sql, encoding), _encoded(parameters, encoding))
        for sql, parameters in statements
    ]
    if (begin or len(runs) > 1) and PIPELINES:
        results = [
            _succeeded(result, encoding)
            for result in _pipelined(pgconn, [(b"BEGIN", None), *runs] if begin else runs)
        ]
        return results[1:] if begin else results
    # One round trip each.
    if begin:
        _succeeded(pgconn.exec_(b"BEGIN"), encoding)
    return [_succeeded(pgconn.exec_prepared(*run), encoding) for run in runs]


def _succeeded(result: Any, encoding: str) -> Any:
    if result.status not in _SUCCEEDED:
        raise psycopg.errors.error_from_result(result, encoding)
    return result


def _encoded(parameters: Sequence[str | None], encoding: str) -> list[bytes | None]:
    values = []
    for value in parameters:
        if value is not None and "\x00" in value:
            # libpq takes text parameters up to a NUL; psycopg refuses them too.
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        values.append(None if value is None else value.encode(encoding))
    return values


def _pipelined(pgconn: Any, commands: Sequence[tuple[bytes, list[bytes | None] | None]]) -> list[Any]:
    """Each command's result, the commands sent at once in libpq's pipeline mode: ``(b"SQL", None)`` a plain
    query, ``(name, values)`` a prepared statement's run. The server runs them in order, each once the one
    before ended (a failed one aborts the rest: their results say so); the transaction they are in is as
    they left it, no more (the pipeline's sync point ends no transaction that BEGIN opened).

    The results are awaited as psycopg awaits them, with the GIL released (libpq's own blocking read would
    hold it, stalling this process's other threads for the round trip). A connection that fails meanwhile is
    closed: psycopg and SQLAlchemy then see it as lost, and replace it."""
    pgconn.enter_pipeline_mode()
    try:
        for command, values in commands:
            if values is None:
                pgconn.send_query_params(command, None)
            else:
                pgconn.send_query_prepared(command, values)
        pgconn.pipeline_sync()  # also sends what was queued
        results = []
        while True:
            result = _next_result(pgconn)
            if result is None:  # the end of one command's results
                continue
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                break
            results.append(result)
        pgconn.exit_pipeline_mode()
    except BaseException:
        pgconn.finish()
        raise
    return results


def _next_result(pgconn: Any) -> Any:
    while pgconn.is_busy():
        readable = select.poll()
        readable.register(pgconn.socket, select.POLLIN)
        readable.poll()
        pgconn.consume_input()
    return pgconn.get_result()


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
