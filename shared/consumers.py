"""Consumers: use cases that react to an event, declared once with ``@consumes``.

The decorator does what every consumer needs and nothing else: it validates the envelope against the
event's contract, opens the service's unit of work, skips an event this consumer already acted on (the
record is written in the same transaction as the effect, under the handler's name), and calls the handler
with the runtime, the unit of work and the event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.channels import normal_address
from shared.events import EVENTS, parse_event
from shared.logs import request_id_scope
from shared.unit_of_work import Consumption, UnitOfWork

log = logging.getLogger(__name__)


class HasUnitOfWork(Protocol):
    def unit_of_work(self) -> UnitOfWork: ...


@dataclass(frozen=True)
class ReceivedEvent:
    """An event that passed its contract: ``data`` as its schema loaded it, ``payload`` the JSON as sent."""

    id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    payload: dict[str, Any]


Handler = Callable[[Any, Any, ReceivedEvent], None]


@dataclass(frozen=True)
class Consumer:
    """A use case bound to an event type; call it with a runtime and an envelope (plain JSON)."""

    event_type: str
    name: str
    handler: Handler

    def __call__(self, runtime: HasUnitOfWork, envelope: Any) -> None:
        envelope, data = parse_event(envelope, self.event_type)
        event = ReceivedEvent(
            envelope["id"], envelope["type"], envelope["occurred_at"], data, envelope["data"]
        )
        # What the handler logs and emits carries the id of the request that started it all.
        with request_id_scope(envelope.get("request_id")), runtime.unit_of_work() as uow:
            consumption = uow.consume(event.id, self.name, _erasure_marks(event))
            if consumption is Consumption.REPEAT:
                log.info("%s already acted on %s %s", self.name, event.type, event.id)
                return
            if consumption is Consumption.MARKED:
                # Sent before the customer was erased, arrived after: acting on it would bring data back.
                log.info("%s ignores %s %s: its customer was erased", self.name, event.type, event.id)
                return
            self.handler(runtime, uow, event)


def consumes(event_type: str) -> Callable[[Handler], Consumer]:
    """Make ``handler(runtime, uow, event)`` the consumer of ``event_type``, de-duplicated by its name."""
    if event_type not in EVENTS:
        raise ValueError(f"{event_type} is not in shared.events.EVENTS")

    def declare(handler: Handler) -> Consumer:
        return Consumer(event_type, handler.__name__, handler)

    return declare


# An erasure leaves a mark in the consumed-events table of each service that acted on it (the customer's
# opaque id, nothing personal), kept as long as those records: an event about the customer that was on its
# way meanwhile is then ignored instead of recreating what was erased.
ERASURE_CONSUMER = "erasure"
ERASED_EVENT = "customer.erased"


def _erasure_mark(customer_id: str) -> str:
    return f"erased:{customer_id}"


def _address_mark(channel: str, address: str) -> str:
    # Events naming only an address (an opt-out, a bounce) are matched by a digest of it, so the mark holds
    # no address; it goes with the consumed-events records (OUTBOX_RETENTION_DAYS). Meanwhile an opt-out of a
    # new customer with the same address is ignored by this service too (dispatch keeps its own opt-outs).
    digest = hashlib.sha256(f"{channel}:{normal_address(channel, address)}".encode()).hexdigest()
    return f"erased:{digest[:40]}"


def record_erasure(uow: UnitOfWork, customer_id: str, addresses: Iterable[Mapping[str, str]] = ()) -> None:
    """Called by a ``customer.erased`` consumer before it deletes anything: later events about this customer
    or their addresses (``{"channel", "address"}`` items) are ignored, and a consumer already acting on one is
    waited for, so that what it wrote is there to delete."""
    marks = [(_erasure_mark(customer_id), ERASURE_CONSUMER)]
    marks += [(_address_mark(item["channel"], item["address"]), ERASURE_CONSUMER) for item in addresses]
    uow.hold_marks(marks, exclusive=True)
    for mark in marks:
        uow.first_consumption(*mark)


def _erasure_marks(event: ReceivedEvent) -> list[tuple[str, str]]:
    """The consumed-event records whose existence means the event is about an erased customer or address."""
    marks = []
    customer_id = _customer_of(event)
    if customer_id:
        marks.append((_erasure_mark(customer_id), ERASURE_CONSUMER))
    channel, address = event.data.get("channel"), event.data.get("address")
    if event.type != ERASED_EVENT and isinstance(channel, str) and isinstance(address, str):
        marks.append((_address_mark(channel, address), ERASURE_CONSUMER))
    return marks


def _customer_of(event: ReceivedEvent) -> str | None:
    """The survey customer an event is about: ``customer`` or ``contact`` (their ``customer_id``), or its own
    ``customer_id``; None for the erasure itself and for events about no one customer."""
    if event.type == ERASED_EVENT:
        return None
    data = event.data
    for key in ("customer", "contact"):
        if isinstance(data.get(key), dict) and isinstance(data[key].get("customer_id"), str):
            return data[key]["customer_id"]
    customer_id = data.get("customer_id")
    return customer_id if isinstance(customer_id, str) else None
