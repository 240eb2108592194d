"""``@consumes``: parse, de-duplicate by the handler's name, act in one unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shared.consumers import ReceivedEvent, consumes, record_erasure
from shared.events import InvalidEvent, new_event
from shared.unit_of_work import InMemoryUnitOfWork
from tests.unit.shared.test_events import SUBMITTED


@dataclass
class Runtime:
    uow: InMemoryUnitOfWork = field(default_factory=lambda: InMemoryUnitOfWork("sentiment"))
    seen: list[ReceivedEvent] = field(default_factory=list)

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return self.uow


@consumes("response.submitted")
def remember_submission(runtime: Runtime, uow: InMemoryUnitOfWork, event: ReceivedEvent) -> None:
    runtime.seen.append(event)


def test_consumer_gets_the_loaded_data_and_the_json_as_it_came():
    runtime = Runtime()
    envelope = new_event("response.submitted", SUBMITTED)
    remember_submission(runtime, envelope)

    [event] = runtime.seen
    assert event.id == envelope["id"] and event.type == "response.submitted"
    assert event.data["submitted_at"].year == 2026  # loaded: a datetime
    assert event.payload["submitted_at"] == SUBMITTED["submitted_at"]  # as it came: the JSON string


def test_redelivered_event_reaches_the_handler_once_under_its_name():
    runtime = Runtime()
    envelope = new_event("response.submitted", SUBMITTED)
    remember_submission(runtime, envelope)
    remember_submission(runtime, envelope)

    assert len(runtime.seen) == 1
    assert runtime.uow.consumed == {(envelope["id"], "remember_submission")}


def test_event_that_breaks_its_contract_never_reaches_the_handler():
    runtime = Runtime()
    envelope = new_event("response.submitted", SUBMITTED)
    envelope["data"]["score"] = 42
    with pytest.raises(InvalidEvent):
        remember_submission(runtime, envelope)
    assert runtime.seen == [] and runtime.uow.consumed == set()


def test_event_of_another_type_is_refused():
    with pytest.raises(InvalidEvent, match="expected response.submitted"):
        remember_submission(Runtime(), {**new_event("response.submitted", SUBMITTED), "type": "sms.received"})


def test_only_declared_event_types_can_be_consumed():
    with pytest.raises(ValueError, match="EVENTS"):
        consumes("no.such_event")


def test_an_event_about_an_erased_customer_that_arrives_after_the_erasure_is_ignored():
    runtime = Runtime()
    with runtime.uow:
        record_erasure(runtime.uow, SUBMITTED["customer"]["customer_id"])
    late = new_event("response.submitted", SUBMITTED)
    remember_submission(runtime, late)
    assert runtime.seen == []
    # Another customer's events still arrive.
    other = {**SUBMITTED, "customer": {**SUBMITTED["customer"], "customer_id": "someone-else"}}
    remember_submission(runtime, new_event("response.submitted", other))
    assert len(runtime.seen) == 1


@consumes("customer.opted_out")
def remember_opt_out(runtime: Runtime, uow: InMemoryUnitOfWork, event: ReceivedEvent) -> None:
    runtime.seen.append(event)


def test_an_opt_out_naming_only_an_erased_address_that_arrives_after_the_erasure_is_ignored():
    runtime = Runtime()
    with runtime.uow:
        record_erasure(runtime.uow, "customer-1", [{"channel": "email", "address": "Nora@Example.com"}])
    # The mark holds a digest, not the address.
    assert not any("nora" in event_id.lower() for event_id, _ in runtime.uow.consumed)

    late = {"channel": "email", "address": "nora@example.com", "reason": "delighted"}
    remember_opt_out(runtime, new_event("customer.opted_out", late))
    assert runtime.seen == []
    # The same address on another channel, and other addresses, still arrive.
    remember_opt_out(
        runtime, new_event("customer.opted_out", {**late, "channel": "sms", "address": "+15555550100"})
    )
    remember_opt_out(runtime, new_event("customer.opted_out", {**late, "address": "ada@example.com"}))
    assert len(runtime.seen) == 2
