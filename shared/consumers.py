"""Consumers: use cases that react to an event, declared once with ``@consumes``.

The decorator does what every consumer needs and nothing else: it validates the envelope against the
event's contract, opens the service's unit of work, skips an event this consumer already acted on (the
record is written in the same transaction as the effect, under the handler's name), and calls the handler
with the runtime, the unit of work and the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.events import EVENTS, parse_event
from shared.logs import request_id_scope
from shared.unit_of_work import UnitOfWork

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
            if not uow.first_consumption(event.id, self.name):
                log.info("%s already acted on %s %s", self.name, event.type, event.id)
                return
            self.handler(runtime, uow, event)


def consumes(event_type: str) -> Callable[[Handler], Consumer]:
    """Make ``handler(runtime, uow, event)`` the consumer of ``event_type``, de-duplicated by its name."""
    if event_type not in EVENTS:
        raise ValueError(f"{event_type} is not in shared.events.EVENTS")

    def declare(handler: Handler) -> Consumer:
        return Consumer(event_type, handler.__name__, handler)

    return declare
