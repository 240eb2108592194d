"""The dispatch service as the composition root sees it: its database, its transports (sandbox, or SendGrid
and Twilio), its consumers and due jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db import Database
from shared.scheduling import PeriodicJob
from shared.settings import Settings
from shared.wiring import ServiceWiring

from . import actors, models, service
from .providers import EmailTransport
from .runtime import DispatchRuntime, sql_runtime
from .sandbox import SandboxTransport

if TYPE_CHECKING:
    from flask import Flask

    from .providers.twilio_sms import TwilioSmsTransport


def create_app(runtime: DispatchRuntime) -> Flask:
    # The web app's modules (Flask, the API's schemas, the pages) load only in a process that serves it:
    # a worker or a clock imports this module too.
    from .app import create_app as create_web_app

    return create_web_app(runtime)


def bootstrap(settings: Settings, database: Database | None = None) -> DispatchRuntime:
    database = database or Database(settings.database_url_for(models.SERVICE))
    if settings.transport == "sandbox":
        sandbox = SandboxTransport(database)
        runtime = sql_runtime(settings, database, sandbox, sandbox, sandbox)
    elif settings.transport == "providers":
        twilio = _twilio(settings)
        whatsapp = twilio if settings.twilio_whatsapp_from and settings.twilio_whatsapp_content_sid else None
        runtime = sql_runtime(settings, database, _sendgrid(settings), twilio, whatsapp)
    else:
        raise ValueError("CLOSELOOP_TRANSPORT must be sandbox or providers")
    service.check_settings(runtime)
    return runtime


def _sendgrid(settings: Settings) -> EmailTransport:
    from .providers.sendgrid_email import SendGridEmailTransport

    if not settings.sendgrid_api_key:
        raise ValueError("CLOSELOOP_TRANSPORT=providers needs SENDGRID_API_KEY")
    return SendGridEmailTransport(
        settings.sendgrid_api_key,
        settings.sendgrid_from_email,
        settings.sendgrid_from_name,
        api_base_url=settings.sendgrid_api_base_url,
        timeout=settings.provider_timeout_seconds,
    )


def _twilio(settings: Settings) -> TwilioSmsTransport:
    from .providers.twilio_sms import TwilioSmsTransport

    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise ValueError("CLOSELOOP_TRANSPORT=providers needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return TwilioSmsTransport(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        api_base_url=settings.twilio_api_base_url,
        timeout=settings.provider_timeout_seconds,
        whatsapp_from=settings.twilio_whatsapp_from,
        whatsapp_content_sid=settings.twilio_whatsapp_content_sid,
    )


def periodic_jobs(runtime: DispatchRuntime) -> list[PeriodicJob]:
    return [
        PeriodicJob("dispatch.due_deliveries", 1.0, lambda: service.send_due_deliveries(runtime)),
        # Looked for a few times per lease, so a dead worker's deliveries wait little more than the lease.
        PeriodicJob(
            "dispatch.stalled_deliveries",
            min(60.0, runtime.settings.delivery_lease_seconds / 4),
            lambda: service.recover_stalled_deliveries(runtime),
        ),
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
