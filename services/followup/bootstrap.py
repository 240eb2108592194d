"""The followup service as the composition root sees it: how to build, migrate, serve and run it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db import Database
from shared.scheduling import PeriodicJob
from shared.settings import Settings
from shared.wiring import ServiceWiring

from . import actors, models, service
from .runtime import FollowupRuntime, sql_runtime

if TYPE_CHECKING:
    from flask import Flask


def create_app(runtime: FollowupRuntime) -> Flask:
    # The web app's modules (Flask, the API's schemas, the pages) load only in a process that serves it:
    # a worker or a clock imports this module too.
    from .app import create_app as create_web_app

    return create_web_app(runtime)


def bootstrap(settings: Settings, database: Database | None = None) -> FollowupRuntime:
    return sql_runtime(settings, database or Database(settings.database_url_for(models.SERVICE)))


def periodic_jobs(runtime: FollowupRuntime) -> list[PeriodicJob]:
    return [
        PeriodicJob("followup.due_webhooks", 1.0, lambda: service.send_due_webhooks(runtime)),
        PeriodicJob("followup.stalled_webhooks", 60.0, lambda: service.recover_stalled_webhooks(runtime)),
        # Referral and review requests wait FOLLOWUP_REQUEST_DELAY_MINUTES: a few seconds late is nothing.
        PeriodicJob("followup.due_requests", 10.0, lambda: service.send_due_requests(runtime)),
    ]


SERVICE = ServiceWiring(
    name=models.SERVICE,
    bootstrap=bootstrap,
    create_app=create_app,
    migrations=models.MIGRATIONS,
    version_table=models.VERSION_TABLE,
    consumers=actors.CONSUMERS,
    periodic_jobs=periodic_jobs,
)
