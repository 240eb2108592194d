"""Erasure in sentiment: it keeps no customer data but the events it has not finished passing on."""

from __future__ import annotations

from shared.consumers import ReceivedEvent, consumes, record_erasure
from shared.outbox import forget_events_mentioning
from shared.unit_of_work import UnitOfWork

from . import models
from .runtime import SentimentRuntime


@consumes("customer.erased")
def erase_customer(runtime: SentimentRuntime, uow: UnitOfWork, event: ReceivedEvent) -> None:
    record_erasure(uow, event.data["customer_id"])
    # response.scored carries the customer's contact and comment until its consumer acknowledges it.
    forget_events_mentioning(uow.session, models.outbox, event.data["customer_id"])  # type: ignore[attr-defined]
