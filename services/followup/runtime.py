"""What the followup service's use cases run with: its settings, a way to open a unit of work, and the HTTP
sender of its outbound webhooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.db import Database
from shared.identity.store import IdentityStore, identity_store
from shared.outbox import Outbox, OutboxPolicy
from shared.settings import Settings

from . import models
from .domain import Sla
from .providers import RequestsWebhookSender, WebhookSender
from .unit_of_work import FollowupUnitOfWork, SqlFollowupUnitOfWork


@dataclass
class FollowupRuntime:
    settings: Settings
    unit_of_work: Callable[[], FollowupUnitOfWork]
    # None in unit tests, which run the use cases on an in-memory unit of work.
    database: Database | None = None
    outbox: Outbox | None = None
    # Who may use the app: staff users and API keys; a fake in unit tests that build the app.
    identity: IdentityStore | None = None
    # Resolves receivers' hosts and POSTs webhooks and alerts; a fake in unit tests.
    webhook_sender: WebhookSender | None = None

    @property
    def sla(self) -> Sla:
        hours = self.settings
        return Sla.from_hours(
            hours.followup_sla_high_hours, hours.followup_sla_normal_hours, hours.followup_sla_low_hours
        )


def sql_runtime(settings: Settings, database: Database) -> FollowupRuntime:
    return FollowupRuntime(
        settings,
        lambda: SqlFollowupUnitOfWork(database),
        database,
        Outbox(database, models.outbox, models.consumed_events, OutboxPolicy.from_settings(settings)),
        identity_store(settings),
        RequestsWebhookSender(),
    )
