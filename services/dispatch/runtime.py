"""What the dispatch service's use cases run with: settings, a unit of work, its email and SMS transports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.db import Database
from shared.identity.store import IdentityStore, identity_store
from shared.outbox import Outbox, OutboxPolicy
from shared.settings import Settings

from . import models
from .providers import EmailTransport, SmsTransport, WhatsAppTransport
from .unit_of_work import DispatchUnitOfWork, SqlDispatchUnitOfWork


@dataclass
class DispatchRuntime:
    settings: Settings
    unit_of_work: Callable[[], DispatchUnitOfWork]
    email: EmailTransport
    sms: SmsTransport
    # None in unit tests, which run the use cases on an in-memory unit of work.
    database: Database | None = None
    outbox: Outbox | None = None
    # Who may use the app: staff users and API keys; a fake in unit tests that build the app.
    identity: IdentityStore | None = None
    # None: WhatsApp is not configured, and customers who prefer it get SMS (then email).
    whatsapp: WhatsAppTransport | None = None

    @property
    def public_url(self) -> str:
        return self.settings.public_url_for(models.SERVICE)


def sql_runtime(
    settings: Settings,
    database: Database,
    email: EmailTransport,
    sms: SmsTransport,
    whatsapp: WhatsAppTransport | None = None,
) -> DispatchRuntime:
    return DispatchRuntime(
        settings,
        lambda: SqlDispatchUnitOfWork(database),
        email,
        sms,
        database,
        Outbox(database, models.outbox, models.consumed_events, OutboxPolicy.from_settings(settings)),
        identity_store(settings),
        whatsapp,
    )
