"""Dispatch on PostgreSQL: deliveries waiting for the morning, reminders, what the API and pages show."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from services.dispatch import service
from services.dispatch.app import create_app
from services.dispatch.models import Delivery, SandboxMessage
from shared.events import new_event
from tests.clock import Clock
from tests.conftest import make_settings, migrated_service, staff_client

TWILIO_TOKEN = "twilio-test-token"
EVENING_IN_BERLIN = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 CET
MORNING_IN_BERLIN = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)  # 08:00 CET


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(EVENING_IN_BERLIN)
    monkeypatch.setattr(service, "utcnow", clock)
    return clock


@pytest.fixture
def dispatch(postgres_url, clock):
    settings = make_settings(
        postgres_url,
        twilio_auth_token=TWILIO_TOKEN,
        quiet_hours={"email": "08:00-21:00", "sms": "08:00-21:00", "whatsapp": "08:00-21:00"},
        reminder_count=1,
        reminder_delay_hours=48.0,
        brand_name="Acme Boutique",
        brand_color="#ffcc00",
    )
    with migrated_service("dispatch", settings) as runtime:
        yield runtime


@pytest.fixture
def client(dispatch):
    return staff_client(create_app(dispatch), dispatch.identity)


def invitation_requested(invitation_id="inv-1", preferred="email", timezone="Europe/Berlin", locale="en"):
    return new_event(
        "invitation.requested",
        {
            "invitation_id": invitation_id,
            "touchpoint": "purchase",
            "locale": locale,
            "preferred_channel": preferred,
            "contact": {
                "customer_id": "c-1",
                "name": "Ada",
                "email": "ada.lovelace@example.com",
                "phone": "+4915112345678",
                "timezone": timezone,
            },
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


def deliveries(runtime, kind=None):
    with runtime.database.transaction() as session:
        query = select(Delivery).order_by(Delivery.created_at)
        if kind:
            query = query.where(Delivery.kind == kind)
        return session.scalars(query).all()


def sandbox_messages(runtime):
    with runtime.database.transaction() as session:
        return session.scalars(select(SandboxMessage).order_by(SandboxMessage.id)).all()


def test_an_invitation_at_night_waits_as_a_row_and_the_clock_releases_it_in_the_morning(dispatch, clock):
    service.schedule_invitation(dispatch, invitation_requested())
    [waiting] = deliveries(dispatch)
    assert (waiting.status, waiting.next_attempt_at) == ("quiet_hours", MORNING_IN_BERLIN)
    assert sandbox_messages(dispatch) == []

    clock.now = MORNING_IN_BERLIN - timedelta(seconds=1)
    assert service.send_due_deliveries(dispatch) == 0
    clock.now = MORNING_IN_BERLIN
    assert service.send_due_deliveries(dispatch) == 1
    assert service.send_due_deliveries(dispatch) == 0  # claimed once, even by a second clock

    [invitation] = deliveries(dispatch, "invitation")
    assert (invitation.status, invitation.attempts) == ("sent", 1)
    [reminder] = deliveries(dispatch, "reminder")
    assert (reminder.status, reminder.next_attempt_at) == (
        "scheduled",
        MORNING_IN_BERLIN + timedelta(hours=48),
    )


def test_the_reminder_goes_after_its_delay_and_an_answer_cancels_the_next(dispatch, clock):
    clock.now = MORNING_IN_BERLIN
    service.schedule_invitation(dispatch, invitation_requested(preferred="email"))
    clock.now = MORNING_IN_BERLIN + timedelta(hours=48)
    assert service.send_due_deliveries(dispatch) == 1

    first, reminder = sandbox_messages(dispatch)
    assert reminder.subject == "Reminder: How did we do?"
    assert "A reminder: we would still love to hear from you." in reminder.text

    answered = new_event(
        "response.submitted",
        {
            "response_id": "r-1",
            "invitation_id": "inv-1",
            "revision": 1,
            "score": 10,
            "locale": "en",
            "touchpoint": "purchase",
            "channel": "email",
            "customer": {"customer_id": "c-1"},
            "submitted_at": clock.now.isoformat(),
        },
    )
    service.note_answer(dispatch, answered)
    assert {delivery.kind: delivery.status for delivery in deliveries(dispatch)} == {
        "invitation": "answered",
        "reminder": "answered",
    }


def test_the_email_carries_the_brand_buttons_a_thumb_can_hit_and_a_plain_text_part(dispatch, clock):
    clock.now = MORNING_IN_BERLIN
    service.schedule_invitation(dispatch, invitation_requested(locale="tr"))
    [message] = sandbox_messages(dispatch)

    assert "Acme Boutique" in message.html and "#ffcc00" in message.html
    assert "color:#1b1f24" in message.html  # dark text on a light brand colour, readable
    buttons = re.findall(r'<a class="score"[^>]*style="([^"]*)"', message.html)
    assert len(buttons) == 11
    assert all("width:44px" in style and "height:44px" in style for style in buttons)
    assert "Bu mesajı Acme Boutique müşterisi olduğunuz için aldınız." in message.html
    assert "Bu mesajı Acme Boutique müşterisi olduğunuz için aldınız." in message.text
    assert "http://survey.test/s/token-inv-1?score=0" in message.text
    assert "/unsubscribe/" in message.text


def test_the_unsubscribe_page_speaks_the_customers_language_and_names_the_address_masked(
    dispatch, client, clock
):
    clock.now = MORNING_IN_BERLIN
    service.schedule_invitation(dispatch, invitation_requested(locale="tr"))
    [delivery] = deliveries(dispatch, "invitation")

    page = client.get(f"/unsubscribe/{delivery.id}").get_data(as_text=True)
    assert '<html lang="tr">' in page
    assert "Acme Boutique, a***@example.com adresine e-posta göndermeyi bıraksın mı?" in page
    assert "ada.lovelace" not in page

    done = client.post(f"/unsubscribe/{delivery.id}").get_data(as_text=True)
    assert "Abonelikten çıktınız" in done and "a***@example.com" in done


def test_the_unsubscribe_page_in_english(dispatch, client, clock):
    clock.now = MORNING_IN_BERLIN
    service.schedule_invitation(dispatch, invitation_requested(locale="en-GB"))
    [delivery] = deliveries(dispatch, "invitation")
    page = client.get(f"/unsubscribe/{delivery.id}").get_data(as_text=True)
    assert "Stop Acme Boutique&#39;s emails to a***@example.com?" in page


def test_help_is_answered_with_the_configured_text(dispatch, clock):
    dispatch.settings = replace(dispatch.settings, sms_help_text="{brand}: surveys. Reply STOP to stop.")
    client = create_app(dispatch).test_client()
    form = {"MessageSid": "SM" + "d" * 32, "From": "+4915112345678", "Body": "help"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        "http://testserver/webhooks/twilio/sms", form
    )

    answer = client.post("/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})

    assert answer.status_code == 200
    assert "<Message>Acme Boutique: surveys. Reply STOP to stop.</Message>" in answer.get_data(as_text=True)


def test_a_failed_delivery_shows_the_providers_code_and_a_sentence(dispatch, client, clock):
    clock.now = MORNING_IN_BERLIN
    service.schedule_invitation(dispatch, invitation_requested(preferred="sms"))
    [delivery] = deliveries(dispatch, "invitation")
    form = {"MessageSid": delivery.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30006"}
    path = f"/webhooks/twilio/status?delivery_id={delivery.id}"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"http://testserver{path}", form)
    assert client.post(path, data=form, headers={"X-Twilio-Signature": signature}).status_code == 204

    [shown] = [
        row
        for row in client.get("/v1/deliveries?invitation_id=inv-1").get_json()
        if row["kind"] == "invitation"
    ]
    assert (shown["status"], shown["error_code"]) == ("undelivered", "30006")
    assert (
        shown["failure_reason"]
        == "The number cannot receive SMS (a landline, or a carrier that cannot be reached)."
    )
    assert shown["timezone"] == "Europe/Berlin"

    by_phone = client.get("/v1/deliveries", query_string={"phone": "+4915112345678"}).get_json()
    assert [row["id"] for row in by_phone if row["kind"] == "invitation"] == [delivery.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"channel": "sms", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"channel": "pigeon", "timezone": "Europe/Berlin"}, "channel"),
    ],
)
def test_the_sending_window_refuses_an_unknown_time_zone_or_channel_naming_it(client, query, field):
    answer = client.get("/v1/sending-window", query_string=query)
    assert answer.status_code == 422
    assert field in str(answer.get_json()["errors"])


def test_deliveries_by_phone_refuse_a_number_not_in_e164_naming_it(client):
    answer = client.get("/v1/deliveries", query_string={"phone": "0151 12345678"})
    assert answer.status_code == 422
    assert "phone" in str(answer.get_json()["errors"])


def test_the_sending_window_says_when_a_message_would_go_out(client, clock):
    answer = client.get("/v1/sending-window", query_string={"channel": "sms", "timezone": "Europe/Berlin"})
    assert answer.status_code == 200
    assert answer.get_json() == {
        "channel": "sms",
        "timezone": "Europe/Berlin",
        "window": "08:00-21:00",
        "open_now": False,
        "next_sending_time": "2026-03-03T07:00:00+00:00",
    }


def test_the_sandbox_page_refreshes_by_itself(dispatch, client, clock):
    clock.now = MORNING_IN_BERLIN
    before = client.get("/sandbox").get_data(as_text=True)
    service.schedule_invitation(dispatch, invitation_requested())
    after = client.get("/sandbox").get_data(as_text=True)

    marker = re.compile(r'data-latest="([^"]*)"')
    assert marker.search(before).group(1) != marker.search(after).group(1)
    assert "location.reload()" in after


def test_the_sandbox_page_lists_what_waits_for_the_customers_morning(dispatch, client):
    service.schedule_invitation(dispatch, invitation_requested())  # 22:30 in Berlin
    page = client.get("/sandbox").get_data(as_text=True)
    assert "invitation by email to ada.lovelace@example.com: quiet hours" in page
    assert "until 2026-03-03 07:00 UTC (Europe/Berlin)" in page
