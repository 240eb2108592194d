"""Wires the survey service to its database and settings; the app, the worker and the clock share it."""

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
class SurveyRuntime:
    settings: Settings
    database: Database

    @property
    def answer_base_url(self) -> str:
        return self.settings.public_url_for(models.SERVICE) + "/s/"


def bootstrap(settings: Settings, database: Database | None = None) -> SurveyRuntime:
    return SurveyRuntime(settings, database or Database(settings.database_url_for(models.SERVICE)))


def migrate(runtime: SurveyRuntime) -> None:
    upgrade(runtime.database.url, models.MIGRATIONS, models.VERSION_TABLE)


def periodic_jobs(runtime: SurveyRuntime, publish: Callable[[dict[str, Any]], None]) -> list[PeriodicJob]:
    # Imported here: service imports this module for its runtime type.
    from .service import settle_clicked_answers

    return [
        outbox_relay_job(models.SERVICE, runtime.database, models.outbox, publish),
        PeriodicJob("survey.settle_answers", 30.0, lambda: settle_clicked_answers(runtime)),
    ]
