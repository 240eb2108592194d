"""SQLAlchemy set-up shared by the services; each service keeps its own tables and its own engine."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import JSON, DateTime, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from shared.clock import as_utc
from shared.scheduling import PostgresWaker

log = logging.getLogger(__name__)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back an aware datetime, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


# Each service's DeclarativeBase uses these, so every model stores times as aware UTC and dicts as JSON.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


def create_database_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        return _create_sqlite_engine(url, **options)
    # No ping per checkout (a round trip on every transaction): a connection found dead fails its one
    # request or message, which the CRM or dramatiq retries, and SQLAlchemy then replaces the whole pool.
    return create_engine(url, **options)


def _create_sqlite_engine(url: str, **options: Any) -> Engine:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN so we can make it IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # The web thread, the worker threads and the clock share one file in embedded mode; taking the
        # write lock up front avoids SQLITE_BUSY when a reader later tries to upgrade to a writer.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database ``url`` names unless it exists (SQLite files create themselves)."""
    target = make_url(url)
    if not target.drivername.startswith("postgresql") or not target.database:
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).first()
            # Another service's process may create it a moment before we do.
            with suppress(ProgrammingError, IntegrityError):
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


class Database:
    """An engine and the transactions of one service."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or create_database_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.kept_connections = KeptConnections(self.engine)
        self._wakers: dict[str, PostgresWaker] = {}

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def dsn(self) -> str:
        """The URL as the database driver itself takes it (for a connection outside SQLAlchemy)."""
        return (
            make_url(self.url).set(drivername=self.engine.dialect.name).render_as_string(hide_password=False)
        )

    def session(self) -> Session:
        """A new session, for a unit of work that begins and ends its transaction itself."""
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def waker(self, channel: str) -> PostgresWaker:
        """What wakes the clocks listening on ``channel`` after a commit here (PostgreSQL); closed with the
        database."""
        waker = self._wakers.get(channel)
        if waker is None:
            waker = self._wakers.setdefault(channel, PostgresWaker(self.dsn, channel))
        return waker

    def dispose(self) -> None:
        for waker in self._wakers.values():
            waker.close()
        self.kept_connections.close()
        self.engine.dispose()


class KeptConnections:
    """One psycopg connection per thread, taken out of the engine's pool and kept open in autocommit, for a
    hot path whose whole transaction is one statement (the CRM intake, issue 19): no pool checkout and
    check-in, no autocommit switch, no cursor. Its statements are prepared once per connection and run
    through libpq itself (parameters and answers as text), without psycopg's Python layer around them, which
    cost more CPU than the statement's round trip.

    A connection found lost (the server restarted, a proxy dropped it) is replaced and the statement run once
    more on a new one, so the statement must be safe to run twice: it may have been committed before the
    answer was lost. The pool's idle connections are closed then too, as SQLAlchemy does on a disconnect.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._kept: dict[int, _KeptConnection] = {}  # by thread id
        self._pid = os.getpid()
        # A parent process's connections, inherited through fork: never closed here (closing one would end
        # the parent's session), never used.
        self._inherited: list[dict[int, _KeptConnection]] = []

    def fetchone(self, sql: str, parameters: Sequence[str | None]) -> tuple[str | None, ...] | None:
        """The first row ``sql`` (parameters ``$1``, ``$2``...) answers, as text, run with ``parameters``
        (text, or None for null) and committed on this thread's own connection; None when it has no row."""
        thread = threading.get_ident()
        kept = self._kept.get(thread) if self._pid == os.getpid() else None
        if kept is None:
            kept = self._open(thread)
        try:
            return kept.fetchone(sql, parameters)
        except psycopg.Error as error:
            if kept.pgconn.status == pq.ConnStatus.OK:
                raise  # the statement failed, not the connection: in autocommit it is ready for the next
            log.warning("a kept database connection was lost (%s): the statement runs on a new one", error)
            self._discard(thread)
            self._engine.pool.dispose()  # its idle connections are likely lost too
        return self._open(thread).fetchone(sql, parameters)

    def connection(self) -> psycopg.Connection[Any]:
        """This thread's connection (opened now if it has none): to trace it, or to end it in a test."""
        thread = threading.get_ident()
        kept = self._kept.get(thread) if self._pid == os.getpid() else None
        return (kept or self._open(thread)).connection

    def _open(self, thread: int) -> _KeptConnection:
        if self._pid != os.getpid():
            self._inherited.append(self._kept)
            self._kept, self._pid = {}, os.getpid()
        pooled = self._engine.raw_connection()  # connected as the engine connects (its events, its arguments)
        pooled.detach()  # ours from now on: the pool neither resets nor hands it out
        kept = self._kept[thread] = _KeptConnection(pooled.dbapi_connection)
        return kept

    def _discard(self, thread: int) -> None:
        kept = self._kept.pop(thread)
        with suppress(Exception):
            kept.connection.close()

    def close(self) -> None:
        """Close this process's kept connections (the database is disposed of)."""
        if self._pid != os.getpid():
            return
        for thread in list(self._kept):
            self._discard(thread)


class _KeptConnection:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        connection.autocommit = True  # each statement its own transaction: no BEGIN, no COMMIT
        self.connection = connection
        self.pgconn = connection.pgconn
        self.encoding = connection.info.encoding
        self._prepared: dict[str, bytes] = {}  # statement -> its name on this connection

    def fetchone(self, sql: str, parameters: Sequence[str | None]) -> tuple[str | None, ...] | None:
        name = self._prepared.get(sql) or self._prepare(sql)
        encoding = self.encoding
        values = []
        for value in parameters:
            if value is not None and "\x00" in value:
                # libpq takes text parameters up to a NUL; psycopg refuses them too.
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            values.append(None if value is None else value.encode(encoding))
        result = self.pgconn.exec_prepared(name, values)
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise psycopg.errors.error_from_result(result, encoding)
        if result.ntuples == 0:
            return None
        return tuple(
            None if (cell := result.get_value(0, column)) is None else cell.decode(encoding)
            for column in range(result.nfields)
        )

    def _prepare(self, sql: str) -> bytes:
        name = f"kept_{len(self._prepared)}".encode()
        result = self.pgconn.prepare(name, sql.encode(self.encoding))
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, self.encoding)
        self._prepared[sql] = name
        return name
