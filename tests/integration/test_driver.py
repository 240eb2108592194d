"""Core statements run on libpq inside a session's transaction (shared.driver), against real databases.

And a unit of work's transaction on one pooled connection (shared.db.OneConnection): the driver's statements
run straight on it, the session's through a SQLAlchemy Connection made only when the session first needs one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    MetaData,
    String,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import driver
from shared.db import TYPE_ANNOTATION_MAP, Database
from shared.unit_of_work import Conflict, SqlUnitOfWork
from tests.conftest import CheckedThread, waits_for_a_lock

WHEN = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Row(Base):
    __tablename__ = "driver_test_rows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    flag: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime | None]


ROWS = Row.__table__
INSERT = insert(ROWS).values(
    {column.key: bindparam(f"new_{column.key}", type_=column.type) for column in ROWS.c}
)
INSERT_RETURNING = INSERT.returning(ROWS.c.id, ROWS.c.count, ROWS.c.flag, ROWS.c.content)
COUNT_UP = update(ROWS).where(ROWS.c.count < bindparam("below", type_=Integer)).values(count=ROWS.c.count + 1)
BY_ID = select(ROWS.c.id).where(ROWS.c.id == bindparam("id", type_=ROWS.c.id.type))
LOCK = select(func.pg_advisory_xact_lock(bindparam("key", type_=Integer)))
SLEEP = select(func.pg_sleep(bindparam("seconds", type_=Integer)))


def values(row_id: str, **fields: Any) -> dict[str, Any]:
    row = {"id": row_id, "count": 1, "flag": True, "content": {"said": "İyi", "n": [1, None]}, "at": WHEN}
    return {f"new_{key}": value for key, value in (row | fields).items()}


@pytest.fixture(params=["postgres_url", "sqlite_url"])
def database(request) -> Iterator[Database]:
    yield from _database(request.getfixturevalue(request.param))


@pytest.fixture
def postgres(postgres_url) -> Iterator[Database]:
    """PostgreSQL, on one pooled connection: each transaction on the same one."""
    yield from _database(postgres_url, create_engine(postgres_url, pool_size=1))


def _database(url: str, engine: Any = None) -> Iterator[Database]:
    database = Database(url, engine)
    Base.metadata.create_all(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def test_a_statement_stores_and_answers_each_type_as_sqlalchemy_would(database):
    with database.transaction() as session:
        result = driver.execute(
            session, INSERT_RETURNING, values("a", content={"said": "İyi", "n": [1, None]})
        )
        assert result.rows == [("a", 1, True, {"said": "İyi", "n": [1, None]})]
        driver.execute(session, INSERT, values("b", flag=False, at=None))
    with database.transaction() as session:
        stored = {row.id: row for row in session.scalars(select(Row))}
    assert stored["a"].at == WHEN and stored["a"].content == {"said": "İyi", "n": [1, None]}
    assert stored["b"].at is None and stored["b"].flag is False


def test_it_runs_in_the_sessions_transaction_before_or_after_the_orm(database):
    with pytest.raises(RuntimeError), database.transaction() as session:
        session.add(Row(id="orm", count=0, flag=False, content={}, at=None))
        session.flush()  # the ORM's statement first: then the driver's joins its transaction
        driver.execute(session, INSERT, values("driver"))
        raise RuntimeError("rolled back")
    with database.transaction() as session:
        driver.execute(session, INSERT, values("driver"))  # the driver first: then the ORM's joins it
        session.add(Row(id="orm", count=0, flag=False, content={}, at=None))
        session.flush()
        session.rollback()
    with database.transaction() as session:
        assert session.scalars(select(Row.id)).all() == []


def test_the_rows_changed_are_counted_and_rows_read(database):
    with database.transaction() as session:
        for n in range(3):
            driver.execute(session, INSERT, values(f"r{n}", count=n))
        assert driver.execute(session, COUNT_UP, {"below": 2}).rowcount == 2
        assert driver.execute(session, BY_ID, {"id": "r1"}).rows == [("r1",)]
        assert driver.execute(session, BY_ID, {"id": "missing"}).rows == []


def test_a_key_taken_fails_as_sqlalchemy_fails_it_and_the_connection_goes_on(database):
    with database.transaction() as session:
        driver.execute(session, INSERT, values("a"))
    with pytest.raises(IntegrityError), database.transaction() as session:
        driver.execute(session, INSERT, values("a"))
    with database.transaction() as session:
        driver.execute(session, INSERT, values("b"))
        assert len(session.scalars(select(Row.id)).all()) == 2


def test_statements_sent_together_run_in_order_each_after_the_one_before(database):
    with database.transaction() as session:
        inserted, read, counted = driver.execute_all(
            session, [(INSERT, values("a", count=0)), (BY_ID, {"id": "a"}), (COUNT_UP, {"below": 1})]
        )
        assert (inserted.rowcount, read.rows, counted.rowcount) == (1, [("a",)], 1)
    with database.transaction() as session:
        assert session.scalars(select(Row.count)).all() == [1]


def test_a_statement_sent_together_that_fails_raises_its_own_error_and_the_connection_goes_on(database):
    with database.transaction() as session:
        driver.execute(session, INSERT, values("a"))
    with pytest.raises(IntegrityError), database.transaction() as session:
        driver.execute_all(session, [(INSERT, values("a")), (INSERT, values("b"))])
    with database.transaction() as session:  # the connection goes on
        assert driver.execute_all(session, [(BY_ID, {"id": "a"}), (BY_ID, {"id": "b"})])[1].rows == []


def test_without_libpqs_pipeline_mode_statements_sent_together_run_one_round_trip_each(postgres, monkeypatch):
    from shared import libpq

    monkeypatch.setattr(libpq, "PIPELINES", False)  # a system's libpq older than 14
    with postgres.transaction() as session:
        inserted, read = driver.execute_all(session, [(INSERT, values("a")), (BY_ID, {"id": "a"})])
        assert (inserted.rowcount, read.rows) == (1, [("a",)])
    with pytest.raises(IntegrityError), postgres.transaction() as session:
        driver.execute_all(session, [(INSERT, values("a")), (INSERT, values("b"))])
    assert stored(postgres) == ["a"]


def test_each_statement_sent_together_reads_what_was_committed_while_the_one_before_waited(postgres):
    # A consumer's lock and its look-up of an erasure's mark rely on it (outbox.first_consumption_unless).
    read: list[list[tuple[Any, ...]]] = []
    with postgres.engine.connect() as other:
        other.execute(LOCK, {"key": 19})
        other.execute(INSERT, values("committed-meanwhile"))
        reader = CheckedThread(_locked_then_read, postgres, read)
        reader.start()
        assert waits_for_a_lock(postgres.engine, reader), "the lock was not waited for"
        other.commit()  # the row, and the lock released
    reader.join(timeout=30)
    assert reader.failures == [] and read == [[("committed-meanwhile",)]]


def _locked_then_read(database: Database, read: list[list[tuple[Any, ...]]]) -> None:
    statements = [(LOCK, {"key": 19}), (BY_ID, {"id": "committed-meanwhile"})]
    with database.transaction() as session:
        read.append(driver.execute_all(session, statements)[1].rows)


def test_a_statement_waited_for_leaves_the_other_threads_running(postgres):
    # libpq's own wait for a result holds the GIL; the driver waits without it.
    sleeper = CheckedThread(_sent_together, postgres, [(SLEEP, {"seconds": 2})])
    sleeper.start()
    _wait_until_running(postgres, "pg_sleep", sleeper)
    counted, deadline = 0, time.monotonic() + 0.3
    while time.monotonic() < deadline:
        counted += 1
    assert sleeper.is_alive() and counted > 1000
    sleeper.join(timeout=30)
    assert sleeper.failures == []


def _sent_together(database: Database, statements: list[tuple[Any, dict[str, Any]]]) -> None:
    with database.transaction() as session:
        driver.execute_all(session, statements)


def _wait_until_running(database: Database, function: str, thread: threading.Thread) -> None:
    """Until a statement calling ``function`` runs on PostgreSQL, or ``thread`` ended."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE :call"
        " AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 60  # a loaded CI machine starts threads late
    with database.engine.connect() as watcher:
        while thread.is_alive() and time.monotonic() < deadline:
            running = watcher.execute(query, {"call": f"%{function}(%"}).scalar_one()
            watcher.rollback()  # pg_stat_activity is read once per transaction
            if running:
                return
            time.sleep(0.02)


def test_a_naive_time_or_a_missing_value_is_refused(database):
    with pytest.raises(StatementError, match="naive"), database.transaction() as session:
        driver.execute(session, INSERT, values("a", at=WHEN.replace(tzinfo=None)))
    with pytest.raises(StatementError, match="below"), database.transaction() as session:
        driver.execute(session, COUNT_UP, {})
    with database.transaction() as session:
        assert session.scalars(select(Row.id)).all() == []


def test_on_postgresql_each_statement_is_prepared_once_per_connection(postgres):
    for n in range(3):
        with postgres.transaction() as session:
            driver.execute(session, INSERT, values(f"p{n}", at=WHEN + timedelta(minutes=n)))
            driver.execute(session, BY_ID, {"id": f"p{n}"})
            connection = session.connection().connection.driver_connection
            prepared = session.execute(text("SELECT name FROM pg_prepared_statements")).scalars().all()
    names = [name.decode() for name in driver.PREPARED[connection].names.values()]
    assert len(names) == 2 and sorted(name for name in prepared if name.startswith("driver_")) == sorted(
        names
    )


def test_a_connection_that_served_the_driver_can_then_be_kept_for_the_intake_and_replaced(postgres):
    # The intake's kept connections come out of the same pool: their statements are named apart, and the
    # pool's record of the connection given away opens a new one, with none of its prepared statements.
    with postgres.transaction() as session:
        driver.execute(session, BY_ID, {"id": "a"})
    assert postgres.kept_connections.fetchone("SELECT $1::text", ["kept"]) == ("kept",)
    with postgres.transaction() as session:
        assert driver.execute(session, BY_ID, {"id": "a"}).rows == []


def test_prepared_statements_are_prepared_again_after_psycopg_deallocates_them(postgres):
    # psycopg sends DEALLOCATE ALL after a rollback, once it has prepared statements of its own (after five
    # runs of one): the driver's go too.
    for _ in range(6):
        with postgres.transaction() as session:
            session.execute(select(Row.id)).all()
            driver.execute(session, BY_ID, {"id": "a"})
    with pytest.raises(RuntimeError), postgres.transaction() as session:
        driver.execute(session, BY_ID, {"id": "a"})
        raise RuntimeError("rolled back")
    with postgres.transaction() as session:
        assert driver.execute(session, BY_ID, {"id": "a"}).rows == []
        with session.begin_nested() as savepoint:
            driver.execute(session, BY_ID, {"id": "a"})
            savepoint.rollback()
        assert driver.execute(session, BY_ID, {"id": "a"}).rows == []
    with postgres.transaction() as session:
        session.execute(text("DEALLOCATE ALL"))  # behind the driver's back: one transaction fails...
    with pytest.raises(ProgrammingError), postgres.transaction() as session:
        driver.execute(session, BY_ID, {"id": "a"})
    with postgres.transaction() as session:  # ...the next prepares again
        assert driver.execute(session, BY_ID, {"id": "a"}).rows == []


def test_a_parameter_expanded_at_run_time_is_refused_on_postgresql(postgres):
    expanding = select(ROWS.c.id).where(ROWS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(NotImplementedError), postgres.transaction() as session:
        driver.execute(session, expanding, {"ids": ["a"]})


def test_a_connection_lost_in_a_transaction_rolls_back_as_before_and_the_next_transaction_works(postgres):
    # The rollback of a connection found lost runs the driver's listeners too: they must not fail it.
    with postgres.transaction() as session:
        driver.execute(session, BY_ID, {"id": "a"})
    with pytest.raises(OperationalError), postgres.transaction() as session:
        driver.execute(session, BY_ID, {"id": "a"})
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with create_engine(postgres.url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        session.execute(select(Row.id)).all()
    with postgres.transaction() as session:
        assert driver.execute(session, BY_ID, {"id": "a"}).rows == []


# --- A unit of work's one connection (shared.db.OneConnection) ------------------------------------------


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
