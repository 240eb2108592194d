"""Wires the dispatch service to its database and its transports (sandbox, or SendGrid and Twilio)."""

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
from .providers import EmailTransport, SmsTransport
from .sandbox import SandboxTransport


@dataclass
class DispatchRuntime:
    settings: Settings
    database: Database
    email: EmailTransport
    sms: SmsTransport

    @property
    def public_url(self) -> str:
        return self.settings.public_url_for(models.SERVICE)


def bootstrap(settings: Settings, database: Database | None = None) -> DispatchRuntime:
    database = database or Database(settings.database_url_for(models.SERVICE))
    if settings.transport == "sandbox":
        sandbox = SandboxTransport(database)
        return DispatchRuntime(settings, database, sandbox, sandbox)
    if settings.transport != "providers":
        raise ValueError("CLOSELOOP_TRANSPORT must be sandbox or providers")
    return DispatchRuntime(settings, database, _sendgrid(settings), _twilio(settings))


def _sendgrid(settings: Settings) -> EmailTransport:
    from .providers.sendgrid_email import SendGridEmailTransport

    if not settings.sendgrid_api_key:
        raise ValueError("CLOSELOOP_TRANSPORT=providers needs SENDGRID_API_KEY")
    return SendGridEmailTransport(
        settings.sendgrid_api_key,
        settings.sendgrid_from_email,
        settings.sendgrid_from_name,
        api_base_url=settings.sendgrid_api_base_url,
    )


def _twilio(settings: Settings) -> SmsTransport:
    from .providers.twilio_sms import TwilioSmsTransport

    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise ValueError("CLOSELOOP_TRANSPORT=providers needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return TwilioSmsTransport(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        api_base_url=settings.twilio_api_base_url,
    )


def migrate(runtime: DispatchRuntime) -> None:
    upgrade(runtime.database.url, models.MIGRATIONS, models.VERSION_TABLE)


def periodic_jobs(runtime: DispatchRuntime, publish: Callable[[dict[str, Any]], None]) -> list[PeriodicJob]:
    # Imported here: service imports this module for its runtime type.
    from .service import recover_stalled_deliveries, send_due_deliveries

    return [
        outbox_relay_job(models.SERVICE, runtime.database, models.outbox, publish),
        PeriodicJob("dispatch.due_deliveries", 1.0, lambda: send_due_deliveries(runtime)),
        PeriodicJob("dispatch.stalled_deliveries", 60.0, lambda: recover_stalled_deliveries(runtime)),
    ]
