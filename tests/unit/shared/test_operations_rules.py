"""Limits read from the environment, phone numbers as E.164 exactly, masked logs, request ids in events."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field

import pytest
from marshmallow import ValidationError
from prometheus_client import REGISTRY

from shared.consumers import ReceivedEvent, consumes
from shared.logs import configure_logging, current_request_id, mask_contacts, request_id_scope
from shared.metrics import times_sends
from shared.settings import LIMIT_VARIABLES, Limits, Settings
from shared.sms import E164
from shared.unit_of_work import InMemoryUnitOfWork
from tests.unit.shared.test_events import SUBMITTED


def test_limits_default_and_come_from_their_variables():
    assert Settings.from_env({}).limits == Limits()
    settings = Settings.from_env({"MAX_EVENT_BYTES": "1000", "SENTIMENT_MAX_BATCH_CHARS": "50"})
    assert settings.limits.event_bytes == 1000 and settings.limits.sentiment_batch_chars == 50
    assert set(LIMIT_VARIABLES) == set(Limits.__dataclass_fields__)


@pytest.mark.parametrize("value", ["0", "-5", "1e3", "٣", "²", "lots"])
def test_a_limit_must_be_a_whole_number_in_ascii_digits(value):
    with pytest.raises(ValueError, match="MAX_JSON_DEPTH"):
        Settings.from_env({"MAX_JSON_DEPTH": value})


def test_each_route_has_its_body_limit():
    limits = Limits()
    assert limits.body_bytes_for("/v1/events", "POST") == limits.event_bytes
    assert limits.body_bytes_for("/webhooks/twilio/sms", "POST") == limits.webhook_bytes
    assert limits.body_bytes_for("/s/token", "POST") == limits.answer_bytes
    assert limits.body_bytes_for("/v1/analyze", "POST") == limits.request_bytes


@pytest.mark.parametrize(
    "phone", ["+12025550123\n", "+12025550123\r", "+1202555012३", "12025550123", "+0123456789"]
)
def test_not_e164_is_refused(phone):
    with pytest.raises(ValidationError):
        E164(phone)


def test_e164_is_accepted():
    assert E164("+905321234567") == "+905321234567"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("to ayse.yilmaz@example.com.tr", "to a***@***"),
        ("SMS to +905321234567 failed", "SMS to +9***67 failed"),
        ("call 415-555-0123 now", "call 41***23 now"),
        ("delivery 8f14e45f-ceea-467a-9af0-2b0f4e7b6b1c at 2026-11-26T10:00:00", None),
        ("due on 2026-11-26 at 10:00", None),
        # An event id whose groups are all digits, and a datetime as str() writes it.
        ("event c23dff26-3512-4567-8998-90f778c8c243 given up", None),
        ("sent 2026-11-26 12:00:00+00:00", None),
        ("SMS from +905551112233: 9", "SMS from +9***33: 9"),
    ],
)
def test_contacts_are_masked_and_ids_and_times_are_not(line, masked):
    assert mask_contacts(line) == (masked or line)


@dataclass
class Runtime:
    uow: InMemoryUnitOfWork = field(default_factory=lambda: InMemoryUnitOfWork("sentiment"))
    request_ids: list[str | None] = field(default_factory=list)

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return self.uow


@consumes("response.submitted")
def note_request_id(runtime: Runtime, uow: InMemoryUnitOfWork, event: ReceivedEvent) -> None:
    runtime.request_ids.append(current_request_id())


def _emitted(request_id: str | None) -> dict:
    producer = InMemoryUnitOfWork("survey")
    with request_id_scope(request_id), producer:
        return producer.emit("response.submitted", SUBMITTED)


def test_an_event_carries_the_request_id_and_its_consumer_acts_under_it():
    envelope = _emitted("req-7")
    runtime = Runtime()

    note_request_id(runtime, envelope)

    assert envelope["request_id"] == "req-7"
    assert runtime.request_ids == ["req-7"] and current_request_id() is None


def test_an_event_without_a_request_id_has_none():
    assert "request_id" not in _emitted(None)


class TransientDeliveryError(Exception):
    pass


@dataclass
class Delivery:
    channel: str


def _sends(channel: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("closeloop_sends_total", {"channel": channel, "outcome": outcome}) or 0.0


def _timed(channel: str) -> float:
    return REGISTRY.get_sample_value("closeloop_provider_request_seconds_count", {"channel": channel}) or 0.0


def test_sends_are_counted_by_channel_and_outcome_and_timed():
    @times_sends
    def send(runtime, delivery):
        if delivery.channel == "sms":
            raise TransientDeliveryError("429")
        return "receipt"

    before = _sends("email", "sent"), _sends("sms", "transient")
    timed_before = _timed("sms")

    assert send(None, Delivery("email")) == "receipt"
    with pytest.raises(TransientDeliveryError):
        send(None, Delivery("sms"))

    assert (_sends("email", "sent"), _sends("sms", "transient")) == (before[0] + 1, before[1] + 1)
    assert _timed("sms") == timed_before + 1


def test_configured_logging_masks_every_handler_once_and_keeps_them(monkeypatch):
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", root.level)

    configure_logging(json_lines=True)
    configure_logging(json_lines=True)
    with request_id_scope("req-9"):
        logging.getLogger("closeloop.test").warning("bounce from %s", "ana@example.com")

    assert root.handlers == [handler] and len(handler.filters) == 1
    line = json.loads(stream.getvalue())
    assert line["message"] == "bounce from a***@***" and line["request_id"] == "req-9"
