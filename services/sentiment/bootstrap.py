"""The sentiment service as the composition root sees it: how to build, migrate, serve and run it."""

from __future__ import annotations

from shared.db import Database
from shared.settings import Settings
from shared.wiring import ServiceWiring

from . import actors, models
from .app import create_app
from .runtime import SentimentRuntime, sql_runtime


def bootstrap(settings: Settings, database: Database | None = None) -> SentimentRuntime:
    return sql_runtime(settings, database or Database(settings.database_url_for(models.SERVICE)))


SERVICE = ServiceWiring(
    name=models.SERVICE,
    bootstrap=bootstrap,
    create_app=create_app,
    migrations=models.MIGRATIONS,
    version_table=models.VERSION_TABLE,
    consumers=actors.CONSUMERS,
)
