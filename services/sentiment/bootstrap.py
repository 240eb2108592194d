"""Wires the sentiment service to its database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.db import Database
from shared.migrations import upgrade
from shared.outbox import outbox_relay_job
from shared.scheduling import PeriodicJob
from shared.settings import Settings

from . import models


@dataclass
class SentimentRuntime:
    settings: Settings
    database: Database


def bootstrap(settings: Settings, database: Database | None = None) -> SentimentRuntime:
    return SentimentRuntime(settings, database or Database(settings.database_url_for(models.SERVICE)))


def migrate(runtime: SentimentRuntime) -> None:
    upgrade(runtime.database.url, models.MIGRATIONS, models.VERSION_TABLE)


def periodic_jobs(runtime: SentimentRuntime, publish: Callable[[dict[str, Any]], None]) -> list[PeriodicJob]:
    return [outbox_relay_job(models.SERVICE, runtime.database, models.outbox, publish)]
