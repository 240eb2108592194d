"""Core statements run on libpq inside a session's transaction (shared.driver), against real databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Integer, MetaData, String, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import driver
from shared.db import TYPE_ANNOTATION_MAP, Database

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


def values(row_id: str, **fields: Any) -> dict[str, Any]:
    row = {"id": row_id, "count": 1, "flag": True, "content": {"said": "İyi", "n": [1, None]}, "at": WHEN}
    return {f"new_{key}": value for key, value in (row | fields).items()}


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path) -> Iterator[Database]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path}/d.db"
    )
    database = Database(url)
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


def test_a_naive_time_or_a_missing_value_is_refused(database):
    with pytest.raises(StatementError, match="naive"), database.transaction() as session:
        driver.execute(session, INSERT, values("a", at=WHEN.replace(tzinfo=None)))
    with pytest.raises(StatementError, match="below"), database.transaction() as session:
        driver.execute(session, COUNT_UP, {})
    with database.transaction() as session:
        assert session.scalars(select(Row.id)).all() == []


def test_on_postgresql_each_statement_is_prepared_once_per_connection(postgres_url):
    database = Database(postgres_url)
    Base.metadata.create_all(database.engine)
    try:
        for n in range(3):
            with database.transaction() as session:
                driver.execute(session, INSERT, values(f"p{n}", at=WHEN + timedelta(minutes=n)))
                driver.execute(session, BY_ID, {"id": f"p{n}"})
                pooled = session.connection().connection
                prepared = session.execute(text("SELECT name FROM pg_prepared_statements")).scalars().all()
        assert len(pooled.info[driver.PREPARED]) == 2
        assert sorted(name for name in prepared if name.startswith("closeloop_")) == [
            "closeloop_0",
            "closeloop_1",
        ]
    finally:
        database.dispose()


def test_a_parameter_expanded_at_run_time_is_refused_on_postgresql(postgres_url):
    database = Database(postgres_url)
    Base.metadata.create_all(database.engine)
    expanding = select(ROWS.c.id).where(ROWS.c.id.in_(bindparam("ids", expanding=True)))
    try:
        with pytest.raises(NotImplementedError), database.transaction() as session:
            driver.execute(session, expanding, {"ids": ["a"]})
    finally:
        database.dispose()
