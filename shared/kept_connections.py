"""Connections kept out of a service's pool, one per thread, for a hot path whose whole transaction is one
statement (the CRM intake on PostgreSQL, issue 19); made by ``Database.kept_connections`` on first use."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Engine

from shared.libpq import PreparedStatements, run_prepared, text_rows

log = logging.getLogger(__name__)


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
        kept = self._own(thread) or self._open(thread)
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
        return (self._own(thread) or self._open(thread)).connection

    def _own(self, thread: int) -> _KeptConnection | None:
        """This thread's connection, if it has one opened in this process (not a parent's, through fork)."""
        return self._kept.get(thread) if self._pid == os.getpid() else None

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
        self._prepared = PreparedStatements("kept")

    def fetchone(self, sql: str, parameters: Sequence[str | None]) -> tuple[str | None, ...] | None:
        result = run_prepared(self.pgconn, self._prepared, sql, parameters, self.encoding)
        rows = text_rows(result, self.encoding)
        return rows[0] if rows else None
