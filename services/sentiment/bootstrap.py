"""The sentiment service as the composition root sees it: how to build, migrate, serve and run it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db import Database
from shared.settings import Settings
from shared.wiring import ServiceWiring

from . import actors, models
from .runtime import SentimentRuntime, sql_runtime

if TYPE_CHECKING:
    from flask import Flask


def create_app(runtime: SentimentRuntime) -> Flask:
    # The web app's modules (Flask, the API's schemas, the pages) load only in a process that serves it:
    # a worker or a clock imports this module too.
    from .app import create_app as create_web_app

    return create_web_app(runtime)


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
