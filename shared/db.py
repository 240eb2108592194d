"""SQLAlchemy set-up shared by the services; each service keeps its own tables and its own engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, DateTime, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.types import TypeDecorator

from shared.clock import as_utc
from shared.scheduling import PostgresWaker

if TYPE_CHECKING:
    from shared.kept_connections import KeptConnections


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


# Every session of ours: objects keep their loaded values after a commit (use cases read them after it).
_SESSION_OPTIONS: dict[str, Any] = {"expire_on_commit": False}


class OneConnection:
    """The one pooled connection of a unit of work's transaction on PostgreSQL, taken when a statement first
    needs it: ``shared.driver``'s statements run straight on it, the session's through a SQLAlchemy
    ``Connection`` made of it only when the session first runs one.

    A transaction of driver statements alone (the dispatch worker's: issue 19) thus skips the session's and
    the ``Connection``'s machinery at begin, commit and close: ~200 us of CPU a transaction.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pooled: PoolProxiedConnection | None = None
        self._connection: Connection | None = None

    def pooled(self) -> PoolProxiedConnection:
        if self._pooled is None:
            self._pooled = self.engine.raw_connection()
        return self._pooled

    def connection(self) -> Connection:
        """The transaction's connection as SQLAlchemy runs statements on it; begun (a driver statement may
        have begun the transaction on the server already: SQLAlchemy sends no BEGIN of its own here)."""
        if self._connection is None:
            self._connection = Connection(self.engine, self.pooled())
            self._connection.begin()
        return self._connection

    def commit(self) -> None:
        if self._connection is not None:
            self._connection.commit()
        elif self._pooled is not None:
            try:
                self._pooled.commit()
            except self.engine.dialect.loaded_dbapi.Error as error:
                # As SQLAlchemy raises it, so a unit of work tells a Conflict from any other failure.
                raise DBAPIError.instance(
                    "COMMIT", None, error, self.engine.dialect.loaded_dbapi.Error
                ) from error

    def rollback(self) -> None:
        if self._pooled is not None:
            # Through SQLAlchemy, even for driver statements alone: it tells a lost connection by the error,
            # and then replaces every connection of the pool (a restarted server lost them all).
            self.connection().rollback()

    def close(self) -> None:
        pooled, connection, self._pooled, self._connection = self._pooled, self._connection, None, None
        if connection is not None:
            connection.close()  # gives the pooled connection back
        elif pooled is not None:
            pooled.close()


class OneConnectionSession(Session):
    """A unit of work's session whose statements run on its ``OneConnection``. The session joins that
    connection's transaction without owning it: the unit of work commits it, after the session's flush."""

    def __init__(self, one_connection: OneConnection, **options: Any) -> None:
        super().__init__(join_transaction_mode="rollback_only", **options)
        self.one_connection = one_connection

    def get_bind(self, *args: Any, **kwargs: Any) -> Connection:  # type: ignore[override]
        return self.one_connection.connection()


class Database:
    """An engine and the transactions of one service."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or create_database_engine(url)
        self._sessions = sessionmaker(self.engine, **_SESSION_OPTIONS)
        self._kept_connections: KeptConnections | None = None
        self._kept_lock = threading.Lock()
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

    def unit_session(self) -> tuple[Session, OneConnection | None]:
        """A unit of work's session and, on PostgreSQL, the ``OneConnection`` its transaction runs on (which
        the unit of work commits and closes after the session); None: the session's own transaction."""
        if not self.is_postgresql:
            return self._sessions(), None
        one = OneConnection(self.engine)
        return OneConnectionSession(one, **_SESSION_OPTIONS), one

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    @property
    def kept_connections(self) -> KeptConnections:
        """Connections kept per thread for a one-statement hot path (the CRM intake on PostgreSQL), made on
        first use: psycopg is imported only by a process that runs one (~60 ms and 9 MiB at start-up in
        every other, embedded mode on SQLite included)."""
        kept = self._kept_connections
        if kept is None:
            with self._kept_lock:
                if self._kept_connections is None:
                    from shared.kept_connections import KeptConnections  # noqa: PLC0415 (see above)

                    self._kept_connections = KeptConnections(self.engine)
                kept = self._kept_connections
        return kept

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
        if self._kept_connections is not None:
            self._kept_connections.close()
        self.engine.dispose()
