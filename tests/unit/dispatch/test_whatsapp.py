"""WhatsApp as a third channel: where the customer prefers it, through an approved template, falling back to
SMS then email, its replies through the same inbound webhook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.dispatch import service
from services.dispatch.domain import DeliveryKind, DeliveryState, channel_order
from services.dispatch.providers import OutgoingWhatsApp, PermanentDeliveryError
from services.dispatch.providers.webhooks import ProviderStatus, ProviderStatusEvent, SmsReplyKind
from shared.events import new_event
from tests.clock import Clock

from .fakes import FakeDispatchUnitOfWork, fake_runtime

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PHONE = "+905321234567"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(START)
    monkeypatch.setattr(service, "utcnow", clock)
    return clock


@pytest.fixture
def uow() -> FakeDispatchUnitOfWork:
    return FakeDispatchUnitOfWork()


@pytest.fixture
def runtime(uow, clock):
    return fake_runtime(uow, whatsapp=True)


def invitation_requested(
    invitation_id: str = "inv-1", email: str | None = "ada@example.com"
) -> dict[str, Any]:
    return new_event(
        "invitation.requested",
        {
            "invitation_id": invitation_id,
            "touchpoint": "purchase",
            "locale": "en",
            "preferred_channel": "whatsapp",
            "contact": {"customer_id": "c-1", "name": "Ada", "email": email, "phone": PHONE},
            "message": {
                "subject": "How did we do?",
                "greeting": "Hello Ada,",
                "question": "How likely are you to recommend us?",
                "low_label": "Not at all likely",
                "high_label": "Extremely likely",
                "sms_body": "How likely are you to recommend us? Reply 0-10",
                "answer_url": f"http://survey.test/s/token-{invitation_id}",
            },
        },
    )


def deliveries(uow) -> list:
    return sorted(uow.deliveries.rows.values(), key=lambda row: (row.created_at, row.source_id))


def test_whatsapp_is_tried_only_where_preferred_then_sms_then_email():
    both = ("email", "sms", "whatsapp")
    assert channel_order("whatsapp", "a@example.com", PHONE, available=both) == [
        ("whatsapp", PHONE),
        ("sms", PHONE),
        ("email", "a@example.com"),
    ]
    assert channel_order("sms", "a@example.com", PHONE, available=both) == [
        ("sms", PHONE),
        ("email", "a@example.com"),
    ]
    assert channel_order("whatsapp", "a@example.com", PHONE) == [("sms", PHONE), ("email", "a@example.com")]
    assert channel_order("whatsapp", None, PHONE, opted_out={"whatsapp"}, available=both) == [("sms", PHONE)]


def test_a_customer_who_prefers_whatsapp_gets_the_approved_template(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested())

    [delivery] = deliveries(uow)
    assert (delivery.channel, delivery.status) == ("whatsapp", DeliveryState.SENT)
    assert delivery.fallbacks == [["sms", PHONE], ["email", "ada@example.com"]]
    [message] = runtime.whatsapp.messages
    assert isinstance(message, OutgoingWhatsApp) and message.to == PHONE
    assert message.variables == {
        "1": "Hello Ada,",
        "2": "How likely are you to recommend us?",
        "3": "http://survey.test/s/token-inv-1",
    }
    assert (
        message.status_callback_url == f"http://testserver/webhooks/twilio/status?delivery_id={delivery.id}"
    )


def test_without_whatsapp_configured_the_customer_gets_an_sms(uow, clock):
    runtime = fake_runtime(uow)
    service.schedule_invitation(runtime, invitation_requested())
    [delivery] = deliveries(uow)
    assert delivery.channel == "sms" and len(runtime.sms.messages) == 1


def test_a_whatsapp_refusal_falls_back_to_sms(runtime, uow):
    runtime.whatsapp.failures.append(
        PermanentDeliveryError("Twilio answered 400 (error 63003)", code="63003")
    )
    service.schedule_invitation(runtime, invitation_requested())

    whatsapp, sms = deliveries(uow)
    assert (whatsapp.status, whatsapp.failure_reason) == (
        DeliveryState.FAILED,
        "The number has no WhatsApp account.",
    )
    assert (sms.channel, sms.status, sms.source_id) == ("sms", DeliveryState.SENT, "inv-1:sms")
    assert sms.invitation_id == "inv-1" and sms.fallbacks == [["email", "ada@example.com"]]
    assert [message.body for message in runtime.sms.messages] == [
        "How likely are you to recommend us? Reply 0-10"
    ]


def test_an_undelivered_whatsapp_report_falls_back_to_sms_then_a_failed_sms_to_email(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested())
    [whatsapp] = deliveries(uow)
    service.apply_status_event(runtime, report(whatsapp.id, "63016"))
    sms = next(row for row in deliveries(uow) if row.channel == "sms")
    assert sms.status == DeliveryState.SENT

    # SMS does not fall back by itself (its reach is the customer's phone number as given).
    service.apply_status_event(runtime, report(sms.id, "30006"))
    assert [row.channel for row in deliveries(uow)] == ["whatsapp", "sms"]


def report(reference: str, code: str) -> ProviderStatusEvent:
    return ProviderStatusEvent(
        provider="twilio",
        provider_event_id=f"{reference}:undelivered",
        reference=reference,
        provider_message_id=None,
        status=ProviderStatus.UNDELIVERED,
        occurred_at=START,
        reason=f"Twilio error {code}",
        error_code=code,
    )


def test_a_whatsapp_reply_answers_the_invitation_through_the_same_webhook(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested())

    assert (
        service.receive_sms(runtime, "SM" + "f" * 32, f"whatsapp:{PHONE}", "10 lovely") is SmsReplyKind.ANSWER
    )

    [event] = [event for event in uow.events if event["type"] == "sms.received"]
    assert event["data"]["invitation_id"] == "inv-1" and event["data"]["body"] == "10 lovely"


def test_stop_on_whatsapp_opts_out_of_whatsapp_only(runtime, uow):
    service.receive_sms(runtime, "SM" + "0" * 32, f"whatsapp:{PHONE}", "STOP")
    assert set(uow.opt_outs.rows) == {("whatsapp", PHONE)}

    service.schedule_invitation(runtime, invitation_requested())
    [delivery] = deliveries(uow)
    assert delivery.channel == "sms"


def test_messages_without_a_whatsapp_template_go_by_sms(runtime, uow):
    referral = new_event(
        "referral.requested",
        {
            "referral_id": "ref-1",
            "customer": {
                "customer_id": "c-1",
                "name": "Ada",
                "phone": PHONE,
                "preferred_channel": "whatsapp",
            },
            "referral_url": "https://shop.example.com/r/abc",
            "locale": "en",
        },
    )
    service.schedule_referral_request(runtime, referral)
    [delivery] = deliveries(uow)
    assert (delivery.kind, delivery.channel) == (DeliveryKind.REFERRAL, "sms")
