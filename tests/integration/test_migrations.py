"""Each service's Alembic history builds exactly the tables its models describe."""

from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor

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
