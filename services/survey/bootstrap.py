"""The survey service as the composition root sees it: how to build, migrate, serve and run it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db import Database
from shared.scheduling import PeriodicJob
from shared.settings import Settings
from shared.wiring import ServiceWiring

from . import actors, models, privacy, service
from .analytics import service as analytics
from .delighted import service as delighted
from .runtime import SurveyRuntime, sql_runtime

if TYPE_CHECKING:
    from flask import Flask


def create_app(runtime: SurveyRuntime) -> Flask:
    # The web app's modules (Flask, the API's schemas, the pages) load only in a process that serves it:
    # a worker or a clock imports this module too.
    from .app import create_app as create_web_app

    return create_web_app(runtime)


def bootstrap(settings: Settings, database: Database | None = None) -> SurveyRuntime:
    return sql_runtime(settings, database or Database(settings.database_url_for(models.SERVICE)))


def periodic_jobs(runtime: SurveyRuntime) -> list[PeriodicJob]:
    return [
        # CRM events the intake stored: decided at once when the clock is woken (the NOTIFY the intake's
        # process sends after its commits, or the commit in this process), and by this poll if one is missed.
        PeriodicJob(
            "survey.crm_events",
            1.0,
            lambda: service.decide_received_events(runtime),
            on_wakeup=True,
            wake_channel=models.EVENTS_RECEIVED_CHANNEL,
            batch=service.DECISION_BATCH,
        ),
        PeriodicJob("survey.follow_up_surveys", 60.0, lambda: service.invite_due_follow_ups(runtime)),
        # Delayed surveys (a trigger rule's delay after the event) are rows released when due.
        PeriodicJob("survey.delayed_surveys", 60.0, lambda: service.invite_due_surveys(runtime)),
        # Reads refresh the NPS rollup themselves; this keeps the day's recount small between them.
        PeriodicJob("survey.nps_rollup", 300.0, lambda: analytics.refresh_rollup(runtime)),
        # Delighted's POST /people with a delay: the survey request waits as a row with a due time.
        PeriodicJob("survey.delighted_requests", 10.0, lambda: delighted.send_due_survey_requests(runtime)),
        PeriodicJob("survey.forget_erasures", 60.0, lambda: privacy.forget_acknowledged_erasures(runtime)),
    ]


SERVICE = ServiceWiring(
    name=models.SERVICE,
    bootstrap=bootstrap,
    create_app=create_app,
    migrations=models.MIGRATIONS,
    version_table=models.VERSION_TABLE,
    consumers=actors.CONSUMERS,
    periodic_jobs=periodic_jobs,
    wake_channels=(models.EVENTS_RECEIVED_CHANNEL,),
)
