"""Each service's Alembic history builds exactly the tables its models describe."""

from __future__ import annotations

import importlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import create_database_engine
from shared.migrations import upgrade
from shared.settings import SERVICES


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_migrations_match_the_models(service, database, request):
    url = request.getfixturevalue(database)
    models = importlib.import_module(f"services.{service}.models")
    upgrade(url, models.MIGRATIONS, models.VERSION_TABLE)
    upgrade(url, models.MIGRATIONS, models.VERSION_TABLE)  # a second run is a no-op

    engine = create_database_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = [
                diff
                for diff in compare_metadata(context, models.metadata)
                # Version tables are Alembic's own; every service's shares the database in embedded mode.
                if not (diff[0] == "remove_table" and diff[1].name.endswith("_alembic_version"))
            ]
    finally:
        engine.dispose()
    assert differences == []


def test_processes_starting_together_migrate_once(postgres_url):
    models = importlib.import_module("services.dispatch.models")
    with ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(upgrade, postgres_url, models.MIGRATIONS, models.VERSION_TABLE) for _ in range(4)]
    for run in runs:
        run.result()  # none of them failed on a table another had just created
    engine = create_database_engine(postgres_url)
    with engine.connect() as connection:
        assert MigrationContext.configure(
            connection, opts={"version_table": models.VERSION_TABLE}
        ).get_current_heads()
    engine.dispose()


def test_every_service_migrating_at_once_on_one_database_succeeds(postgres_url):
    # Services mode starts every web process and clock, and the gateway (all services), at once: their
    # migrations share objects such as the notify triggers' function. Processes, as there: Alembic keeps
    # its migration context in a process-wide global.
    wirings = [importlib.import_module(f"services.{name}.models") for name in SERVICES]
    with ProcessPoolExecutor(8, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = [
            pool.submit(upgrade, postgres_url, models.MIGRATIONS, models.VERSION_TABLE)
            for models in wirings * 2
        ]
    for run in runs:
        run.result()


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_a_database_with_a_first_revision_answer_upgrades_keeping_it(database, request):
    """Customers answered before an upgrade: their rows survive every later revision (SQLite rebuilds tables
    that other rows point at, which its foreign keys would otherwise forbid)."""
    url = request.getfixturevalue(database)
    models = importlib.import_module("services.survey.models")
    upgrade(url, models.MIGRATIONS, models.VERSION_TABLE, revision="survey_0001")
    now = "2026-11-01 10:00:00+00:00"
    rows = [
        "INSERT INTO survey_customers (id, external_id, locale, preferred_channel, properties, created_at,"
        f" updated_at) VALUES ('c1', 'crm-1', 'en', 'email', '{{}}', '{now}', '{now}')",
        "INSERT INTO survey_crm_events (id, source, external_id, type, occurred_at, received_at, customer_id,"
        " properties, decision, reason, invitation_id) VALUES ('e1', 'default', 'order-1',"
        f" 'purchase.completed', '{now}', '{now}', 'c1', '{{}}', 'invited', 'purchase survey', 'i1')",
        "INSERT INTO survey_invitations (id, token, customer_id, crm_event_id, touchpoint, locale,"
        f" properties, created_at) VALUES ('i1', 'token-1', 'c1', 'e1', 'purchase', 'en', '{{}}', '{now}')",
        "INSERT INTO survey_responses (id, invitation_id, customer_id, score, comment, channel, revision,"
        f" submitted_at, updated_at) VALUES ('r1', 'i1', 'c1', 3, 'late', 'email', 1, '{now}', '{now}')",
        "INSERT INTO survey_outbox (event_id, event_type, payload, created_at, published_at) VALUES"
        f" ('ev1', 'response.submitted', '{{}}', '{now}', NULL)",
    ]
    engine = create_database_engine(url)
    try:
        with engine.begin() as connection:
            for row in rows:
                connection.exec_driver_sql(row)
        upgrade(url, models.MIGRATIONS, models.VERSION_TABLE)
        with engine.connect() as connection:
            answers = connection.exec_driver_sql("SELECT id, score FROM survey_responses").all()
            outbox = connection.exec_driver_sql("SELECT consumer, next_publish_at FROM survey_outbox").all()
    finally:
        engine.dispose()
    assert [tuple(answer) for answer in answers] == [("r1", 3)]
    # Not yet published before the upgrade: due at once for its consumer.
    assert [(row[0], row[1] is not None) for row in outbox] == [("sentiment", True)]
