"""A unit of work's transaction on one pooled connection (shared.db.OneConnection), against real databases.

On PostgreSQL the driver's statements (shared.driver) run straight on the connection, and the session's join
the same transaction through a SQLAlchemy Connection made only when the session first needs one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import OperationalError

from shared import driver
from shared.db import Database
from shared.unit_of_work import Conflict, SqlUnitOfWork
from tests.integration.test_driver import BY_ID, INSERT, ROWS, Base, Row, values


@pytest.fixture(params=["postgres_url", "sqlite_url"])
def database(request) -> Iterator[Database]:
    yield from _database(request.getfixturevalue(request.param))


@pytest.fixture
def postgres(postgres_url) -> Iterator[Database]:
    yield from _database(postgres_url)


def _database(url: str) -> Iterator[Database]:
    database = Database(url, create_engine(url, pool_size=1) if url.startswith("postgresql") else None)
    Base.metadata.create_all(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def unit(database: Database) -> SqlUnitOfWork:
    # No event is emitted or consumed here: the test table stands in for the outbox and consumed tables.
    return SqlUnitOfWork("test", database, ROWS, ROWS)


def stored(database: Database) -> list[str]:
    with database.transaction() as session:
        return sorted(session.scalars(select(Row.id)))


def test_a_unit_of_driver_statements_alone_commits_without_a_sqlalchemy_connection(postgres):
    begun: list[object] = []
    event.listen(postgres.engine, "begin", begun.append)  # SQLAlchemy begins each Connection's transaction
    with unit(postgres) as uow:
        driver.execute(uow.session, INSERT, values("a"))
        assert driver.execute(uow.session, BY_ID, {"id": "a"}).rows == [("a",)]
    assert begun == []
    assert stored(postgres) == ["a"]
    assert postgres.engine.pool.checkedout() == 0


def test_the_driver_and_the_session_share_one_transaction_whichever_runs_first(database):
    with pytest.raises(RuntimeError), unit(database) as uow:
        driver.execute(uow.session, INSERT, values("driver"))
        uow.session.add(Row(id="orm", count=0, flag=False, content={}, at=None))
        uow.session.flush()
        raise RuntimeError("rolled back")
    with pytest.raises(RuntimeError), unit(database) as uow:
        uow.session.add(Row(id="orm", count=0, flag=False, content={}, at=None))
        uow.session.flush()
        driver.execute(uow.session, INSERT, values("driver"))
        raise RuntimeError("rolled back")
    assert stored(database) == []
    with unit(database) as uow:
        driver.execute(uow.session, INSERT, values("driver"))
        uow.session.add(Row(id="orm", count=0, flag=False, content={}, at=None))  # flushed at the commit
    assert stored(database) == ["driver", "orm"]


def test_a_failed_unit_of_driver_statements_stores_nothing_and_gives_its_connection_back(postgres):
    with pytest.raises(RuntimeError), unit(postgres) as uow:
        driver.execute(uow.session, INSERT, values("a"))
        raise RuntimeError("rolled back")
    assert postgres.engine.pool.checkedout() == 0
    with unit(postgres) as uow:  # the same pooled connection, rolled back by the pool, prepares again
        assert driver.execute(uow.session, BY_ID, {"id": "a"}).rows == []
        driver.execute(uow.session, INSERT, values("b"))
    assert stored(postgres) == ["b"]


def test_a_key_a_driver_statement_finds_taken_is_a_conflict(database):
    with unit(database) as uow:
        driver.execute(uow.session, INSERT, values("a"))
    with pytest.raises(Conflict), unit(database) as uow:
        driver.execute(uow.session, INSERT, values("a"))
    with unit(database) as uow:
        driver.execute(uow.session, INSERT, values("b"))
    assert stored(database) == ["a", "b"]


def test_a_connection_lost_in_a_unit_fails_that_unit_only(postgres):
    with unit(postgres) as uow:
        driver.execute(uow.session, INSERT, values("a"))
    with pytest.raises(OperationalError), unit(postgres) as uow:
        driver.execute(uow.session, BY_ID, {"id": "a"})
        backend = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with create_engine(postgres.url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        driver.execute(uow.session, BY_ID, {"id": "a"})
    with unit(postgres) as uow:  # on a new connection
        assert driver.execute(uow.session, BY_ID, {"id": "a"}).rows == [("a",)]


def test_a_pooled_connection_that_died_while_idle_fails_one_unit_and_is_replaced(postgres):
    with unit(postgres) as uow:
        driver.execute(uow.session, INSERT, values("a"))
        backend = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with create_engine(postgres.url).connect() as other:  # as a restart of PostgreSQL would
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    with pytest.raises(OperationalError), unit(postgres) as uow:
        driver.execute(uow.session, BY_ID, {"id": "a"})
    with unit(postgres) as uow:
        assert driver.execute(uow.session, BY_ID, {"id": "a"}).rows == [("a",)]
