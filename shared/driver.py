"""A hot path's SQLAlchemy Core statement run straight on libpq, inside a session's transaction (issue 19).

On PostgreSQL most of such a statement's CPU is Python around it: SQLAlchemy's execution (its parameters
processed, a result built) and psycopg's (the query converted, each value adapted), some 150-250 us, against
a few tens for libpq to send it and read its answer. ``execute`` keeps the statement as written with Core:
compiled once with numbered parameters, prepared once per connection (``shared.libpq``), and run on the
session's own connection, in its transaction, with each parameter as text converted by its SQLAlchemy type
as that type's bind processor would; the rows come back converted by each column's type. A transaction's
BEGIN goes with its first statement, and ``execute_all`` sends statements together: one round trip each
time, not one per command (a round trip costs the client and the server some 25 us of CPU each, in the
kernel mostly). On any other database (SQLite: embedded mode and tests) the same statement runs through
SQLAlchemy.

Only the types the hot statements use are known (strings, integers, booleans, JSON, ``UTCDateTime``); a
statement with another one, or with a parameter expanded at run time, fails when first run, not quietly.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Engine, event
from sqlalchemy import types as sqltypes
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from shared.clock import as_utc
from shared.db import UTCDateTime

# Each driver connection's prepared statements, going with it. Not in the pool's record of the connection: a
# record that gives its connection away (``detach``, as the intake's kept connections do) keeps its info for
# the next connection it opens, which has none of them. Forgotten whenever psycopg may have deallocated them
# (``_watch``).
PREPARED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_WATCHED: weakref.WeakSet[Engine] = weakref.WeakSet()


class DriverResult(NamedTuple):
    rows: list[tuple[Any, ...]]
    rowcount: int


def execute(session: Session, statement: Executable, values: Mapping[str, Any] | None = None) -> DriverResult:
    """Run ``statement`` with ``values`` in ``session``'s transaction: its rows (as tuples of Python values)
    and the rows it changed. A unit of work's session on PostgreSQL runs it on its ``OneConnection``, with no
    SQLAlchemy ``Connection`` made for it. ``statement`` must be built once (a module's constant, or cached):
    it is compiled once per statement object."""
    return execute_all(session, [(statement, values or {})])[0]


def execute_all(
    session: Session, statements: Sequence[tuple[Executable, Mapping[str, Any]]]
) -> list[DriverResult]:
    """``execute`` for each ``(statement, values)`` in order, sent at once on PostgreSQL (one round trip, with
    the transaction's BEGIN when it is the first): each runs once the one before ended, on a snapshot of its
    own (a lock the one before waited for is held, and what was committed meanwhile is read)."""
    one = getattr(session, "one_connection", None)  # a unit of work's session on PostgreSQL (shared.db)
    if one is not None:
        engine, driver = one.engine, one.pooled().driver_connection
    else:
        connection = session.connection()
        engine, driver = connection.engine, connection.connection.driver_connection
    if engine.dialect.driver != "psycopg" or not _default_transactions(driver):
        return [_through_sqlalchemy(session, statement, values) for statement, values in statements]

    from shared import libpq  # noqa: PLC0415 (imports psycopg: PostgreSQL's processes only)

    calls = [(_compiled(statement), values) for statement, values in statements]
    runs = [(compiled.sql, _parameters(compiled, values)) for compiled, values in calls]
    pgconn = driver.pgconn
    encoding = driver.info.encoding
    if engine not in _WATCHED:
        _watch(engine)
    prepared = PREPARED.get(driver) or PREPARED.setdefault(driver, libpq.PreparedStatements("driver"))
    try:
        # Begun as psycopg begins one before its first statement (its commit and rollback read libpq's state),
        # the BEGIN sent with the statements.
        begin = pgconn.transaction_status == libpq.IDLE
        results = libpq.run_all_prepared(pgconn, prepared, runs, encoding, begin=begin)
    except libpq.Error as error:
        if error.sqlstate == libpq.UNKNOWN_STATEMENT:
            # Deallocated behind our back all the same: this transaction fails, the next one prepares again.
            PREPARED.pop(driver, None)
        # As SQLAlchemy raises it (a unique key taken is an IntegrityError, a unit of work's Conflict).
        sql, parameters = runs[0] if len(runs) == 1 else ("; ".join(sql for sql, _ in runs), None)
        raise DBAPIError.instance(sql, parameters, error, libpq.Error) from error
    return [
        DriverResult(libpq.text_rows(result, encoding, compiled.columns), int(result.command_tuples or 0))
        for result, (compiled, _) in zip(results, calls, strict=True)
    ]


def _through_sqlalchemy(session: Session, statement: Executable, values: Mapping[str, Any]) -> DriverResult:
    result = session.connection().execute(statement, values)
    return DriverResult([tuple(row) for row in result] if result.returns_rows else [], result.rowcount)


def _parameters(compiled: _Compiled, values: Mapping[str, Any]) -> list[str | None]:
    """Each ``$n``'s value as text, in order (None: null)."""
    try:
        return [
            None
            if (value := values[name] if required else values.get(name, default)) is None
            else to_text(value)
            for name, required, default, to_text in compiled.parameters
        ]
    except (KeyError, TypeError, ValueError) as error:
        # As SQLAlchemy refuses a value its type cannot bind, or a value missing.
        message = (
            f"a value is required for bind parameter {error}" if isinstance(error, KeyError) else str(error)
        )
        raise StatementError(message, compiled.sql, dict(values), error) from error


def _watch(engine: Engine) -> None:
    """Forget a connection's prepared statements when psycopg deallocates them: it sends DEALLOCATE ALL after
    each ROLLBACK of a transaction (or to a savepoint) once it has prepared statements of its own."""

    def rolling_back(connection: Any, *_args: Any) -> None:
        if _usable(connection):
            _forget_unless_idle(connection.connection.driver_connection)

    def to_savepoint(connection: Any, *_args: Any) -> None:
        if _usable(connection):
            PREPARED.pop(connection.connection.driver_connection, None)

    def resetting(dbapi_connection: Any, *_args: Any) -> None:
        _forget_unless_idle(dbapi_connection)  # checked in: rolled back, unless no transaction is open

    event.listen(engine, "rollback", rolling_back)
    event.listen(engine, "rollback_savepoint", to_savepoint)
    event.listen(engine.pool, "reset", resetting)
    _WATCHED.add(engine)


def _usable(connection: Any) -> bool:
    # An invalidated connection (lost) has no driver connection to ask for: asking would reconnect, or raise
    # inside the rollback. Its next one is new, with no statements to forget.
    return not (connection.invalidated or connection.closed)


def _forget_unless_idle(driver: Any) -> None:
    # psycopg's rollback of a connection with no transaction open sends nothing, and deallocates nothing.
    if driver in PREPARED:  # then shared.libpq was imported to prepare them
        from shared import libpq  # noqa: PLC0415

        if driver.pgconn.transaction_status != libpq.IDLE:
            PREPARED.pop(driver, None)


def _default_transactions(driver: Any) -> bool:
    """Whether the connection's transactions begin with a plain BEGIN (no isolation level, no read-only)."""
    return (
        not driver.autocommit
        and driver.isolation_level is None
        and driver.read_only is None
        and driver.deferrable is None
    )


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Each ``$n`` in order: its name, whether the caller must give it, its value if not, and its conversion.
    parameters: tuple[tuple[str, bool, Any, Callable[[Any], str]], ...]
    # Each column of the rows: its conversion from text.
    columns: tuple[Callable[[str], Any], ...]


@lru_cache(maxsize=256)
def _compiled(statement: Executable) -> _Compiled:
    compiled = statement.compile(dialect=_dialect())
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise NotImplementedError("a parameter expanded at run time cannot be prepared: give each its own")
    defaults = compiled.construct_params(_check=False)
    parameters = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        parameters.append((name, bool(bind.required), defaults.get(name), _to_text(bind.type)))
    columns = getattr(statement, "exported_columns", ())
    return _Compiled(str(compiled), tuple(parameters), tuple(_from_text(column.type) for column in columns))


@cache
def _dialect() -> Any:
    from sqlalchemy.dialects.postgresql.psycopg import dialect  # noqa: PLC0415

    return dialect(paramstyle="numeric_dollar")


def _datetime_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")  # as UTCDateTime
    return as_utc(value).isoformat()


def _string_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _to_text(type_: Any) -> Callable[[Any], str]:
    if isinstance(type_, UTCDateTime):
        return _datetime_text
    if isinstance(type_, sqltypes.JSON):
        return json.dumps  # SQLAlchemy's own JSON serializer: no engine of ours sets another
    if isinstance(type_, sqltypes.Boolean):
        return lambda value: "t" if value else "f"
    if isinstance(type_, sqltypes.Integer):
        return lambda value: str(int(value))
    if isinstance(type_, sqltypes.String):
        return _string_text
    raise NotImplementedError(f"no text form of {type_!r} parameters: run this statement through SQLAlchemy")


def _from_text(type_: Any) -> Callable[[str], Any]:
    if isinstance(type_, sqltypes.Boolean):
        return lambda text: text == "t"
    if isinstance(type_, sqltypes.Integer):
        return int
    if isinstance(type_, sqltypes.JSON):
        return json.loads
    if isinstance(type_, (sqltypes.String, sqltypes.NullType)):
        return str  # untyped (a function's void answer): its text
    raise NotImplementedError(f"no reading of {type_!r} columns from text: run it through SQLAlchemy")
