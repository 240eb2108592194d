"""Alembic, once per service: each service has its own migrations folder and version table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from shared.db import UTCDateTime, create_database_engine, ensure_database


def alembic_config(database_url: str, script_location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("version_table", version_table)
    return config


def upgrade(database_url: str, script_location: Path, version_table: str) -> None:
    ensure_database(database_url)
    command.upgrade(alembic_config(database_url, script_location, version_table), "head")


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # UTCDateTime only converts on the Python side; the column itself is a plain timezone-aware DateTime.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(metadata: MetaData) -> None:
    """Body of each service's migrations/env.py (online mode only: we always have a database)."""
    from alembic import context

    config = context.config
    engine = create_database_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=config.get_main_option("version_table"),
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
