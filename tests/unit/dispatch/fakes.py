"""The dispatch service on an in-memory unit of work and fake transports: no database, no provider.

Rows are the service's own ORM classes used as plain objects. A failed block drops the rows it added, as a
rollback would; changes it made to rows that were already there stay, so tests check outcomes, not that.
Claims follow ``DELIVERY_RETRIES`` as the SQL ones do.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from services.dispatch import models
from services.dispatch.domain import DELIVERY_RETRIES
from services.dispatch.models import Delivery, InboundSms, OptOut, ProviderEvent
from services.dispatch.providers import OutgoingEmail, OutgoingSms, OutgoingWhatsApp, SendReceipt
from services.dispatch.runtime import DispatchRuntime
from services.dispatch.unit_of_work import DispatchUnitOfWork
from shared.unit_of_work import Conflict, InMemoryUnitOfWork
from tests.conftest import make_settings
from tests.fakes import FakeIdentityStore


class FakeDeliveries:
    def __init__(self, opt_outs: FakeOptOuts) -> None:
        self.rows: dict[str, Delivery] = {}
        self.opt_outs = opt_outs

    def add(self, delivery: Delivery) -> None:
        if delivery.source_id is not None and any(
            (row.source_id, row.kind) == (delivery.source_id, delivery.kind) for row in self.rows.values()
        ):
            raise Conflict("uq_dispatch_deliveries_source_kind")
        self.rows[delivery.id] = delivery

    def add_new(self, delivery: Delivery) -> bool:
        if any(
            (row.source_id, row.kind) == (delivery.source_id, delivery.kind) for row in self.rows.values()
        ):
            return False
        self.rows[delivery.id] = delivery
        return True

    def add_new_to_send(self, delivery: Delivery, opt_out_address: str) -> tuple[bool, bool]:
        added = self.add_new(delivery)
        return added, added and self.opt_outs.has(delivery.channel, opt_out_address)

    def save_claimed(
        self,
        delivery: Delivery,
        change: Callable[[Delivery], None],
        then_add: Callable[[Delivery], Delivery | None] | None = None,
    ) -> bool:
        # The fake's rows are the objects the service holds: a report that came first shows in the row.
        row = self.rows.get(delivery.id)
        if row is None or row.status != DELIVERY_RETRIES.in_flight:
            return False
        change(row)
        added = then_add(row) if then_add is not None else None
        if added is not None:
            self.add_new(added)
        return True

    def get(self, delivery_id: str) -> Delivery | None:
        return self.rows.get(delivery_id)

    def for_invitation(self, invitation_id: str) -> list[Delivery]:
        rows = [row for row in self.rows.values() if row.invitation_id == invitation_id]
        return sorted(rows, key=lambda row: row.created_at)

    def for_source(self, source_id: str) -> list[Delivery]:
        rows = [row for row in self.rows.values() if row.source_id == source_id]
        return sorted(rows, key=lambda row: row.created_at)

    def with_provider_message_id(self, provider_message_id: str) -> Delivery | None:
        return next(
            (row for row in self.rows.values() if row.provider_message_id == provider_message_id), None
        )

    def to_address(self, channel: str, address: str, limit: int) -> list[Delivery]:
        rows = [row for row in self.rows.values() if (row.channel, row.address) == (channel, address)]
        return sorted(rows, key=lambda row: row.created_at, reverse=True)[:limit]

    def claim(self, delivery_id: str, now: datetime) -> Delivery | None:
        delivery = self.rows.get(delivery_id)
        if delivery is None or not DELIVERY_RETRIES.is_due(delivery, now):
            return None
        DELIVERY_RETRIES.mark_claimed(delivery, now)
        return delivery

    def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        due = [row for row in self.rows.values() if DELIVERY_RETRIES.is_due(row, now)]
        claimed = sorted(due, key=lambda row: row.next_attempt_at)[:limit]
        for delivery in claimed:
            DELIVERY_RETRIES.mark_claimed(delivery, now)
        return claimed

    def stalled(self, now: datetime, lease: timedelta) -> list[Delivery]:
        schedule = replace(DELIVERY_RETRIES, lease=lease)
        return [row for row in self.rows.values() if schedule.is_stalled(row, now)]

    def latest_to(
        self, channel: str, address: str, states: Collection[str], since: datetime
    ) -> Delivery | None:
        candidates = [
            row
            for row in self.rows.values()
            if (row.channel, row.address) == (channel, address)
            and row.status in states
            and row.created_at >= since
        ]
        return max(candidates, key=lambda row: row.created_at, default=None)


class FakeOptOuts:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], OptOut] = {}

    def has(self, channel: str, address: str) -> bool:
        return (channel, address) in self.rows

    def add(self, opt_out: OptOut) -> None:
        self.rows[(opt_out.channel, opt_out.address)] = opt_out

    def remove(self, channel: str, address: str) -> None:
        self.rows.pop((channel, address), None)


class FakeInboundMessages:
    def __init__(self) -> None:
        self.rows: dict[str, InboundSms] = {}

    def has(self, message_sid: str) -> bool:
        return message_sid in self.rows

    def add(self, message: InboundSms) -> None:
        self.rows[message.message_sid] = message


class FakeProviderReports:
    def __init__(self) -> None:
        self.rows: dict[str, ProviderEvent] = {}

    def has(self, provider_event_id: str) -> bool:
        return provider_event_id in self.rows

    def add(self, report: ProviderEvent) -> None:
        self.rows[report.provider_event_id] = report


class FakeDispatchUnitOfWork(InMemoryUnitOfWork, DispatchUnitOfWork):
    def __init__(self) -> None:
        super().__init__(models.SERVICE)
        self.opt_outs = FakeOptOuts()
        self.deliveries = FakeDeliveries(self.opt_outs)
        self.inbound_sms = FakeInboundMessages()
        self.provider_events = FakeProviderReports()
        self.repositories = [self.deliveries, self.opt_outs, self.inbound_sms, self.provider_events]


class FakeTransport:
    """An EmailTransport and SmsTransport that records every message it is asked to send.

    ``failures`` are raised first, one per call; ``while_sending`` runs during each call, before its answer
    (what happens elsewhere while the provider is being called).
    """

    def __init__(self) -> None:
        self.messages: list[OutgoingEmail | OutgoingSms | OutgoingWhatsApp] = []
        self.failures: list[Exception] = []
        self.while_sending: Callable[[OutgoingEmail | OutgoingSms | OutgoingWhatsApp], None] | None = None

    def send_email(self, email: OutgoingEmail) -> SendReceipt:
        return self._answer(email)

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        return self._answer(sms)

    def send_whatsapp(self, message: OutgoingWhatsApp) -> SendReceipt:
        return self._answer(message)

    def _answer(self, message: OutgoingEmail | OutgoingSms | OutgoingWhatsApp) -> SendReceipt:
        self.messages.append(message)
        if self.while_sending:
            self.while_sending(message)
        if self.failures:
            raise self.failures.pop(0)
        return SendReceipt("fake", f"fake-{len(self.messages)}")


class LookingUpTransport(FakeTransport):
    """A FakeTransport whose provider can be asked for a message it may have taken (as Twilio can).

    ``provider_has`` is what the provider took, by delivery reference, whatever our calls were answered.
    """

    def __init__(self) -> None:
        super().__init__()
        self.provider_has: dict[str, SendReceipt] = {}
        self.lookups: list[tuple[str, datetime]] = []

    def find_sent(
        self, message: OutgoingEmail | OutgoingSms | OutgoingWhatsApp, since: datetime
    ) -> SendReceipt | None:
        self.lookups.append((message.reference, since))
        return self.provider_has.get(message.reference)


def fake_runtime(uow: FakeDispatchUnitOfWork, whatsapp: bool = False, **settings: Any) -> DispatchRuntime:
    """A dispatch runtime whose every unit of work is ``uow``, with a FakeTransport for email, a
    LookingUpTransport (Twilio can be asked) for SMS and, with ``whatsapp``, another for WhatsApp.

    Its public URL is http://testserver; ``settings`` override the tests' settings.
    """
    transports = FakeTransport(), LookingUpTransport()
    return DispatchRuntime(
        make_settings("sqlite://", **settings),
        lambda: uow,
        *transports,
        identity=FakeIdentityStore(),
        whatsapp=LookingUpTransport() if whatsapp else None,
    )
