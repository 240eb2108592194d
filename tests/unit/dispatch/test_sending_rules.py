"""When dispatch sends: quiet hours, reminders, sends of unknown outcome; on the in-memory unit of work."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.dispatch import service
from services.dispatch.domain import DeliveryKind, DeliveryState
from services.dispatch.models import Delivery, OptOut
from services.dispatch.providers import (
    OutcomeUnknownError,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
)
from services.dispatch.providers.webhooks import ProviderStatus, ProviderStatusEvent
from shared.events import new_event
from tests.clock import Clock

from .fakes import FakeDispatchUnitOfWork, fake_runtime

# Monday 2 March 2026, 09:00 UTC: 12:00 in Istanbul (UTC+3 all year).
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ISTANBUL_EVENING = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # 22:00 in Istanbul
ISTANBUL_MORNING = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # 08:00 the next day
PHONE = "+905321234567"
DAY = "08:00-21:00"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(START)
    monkeypatch.setattr(service, "utcnow", clock)
    return clock


@pytest.fixture
def uow() -> FakeDispatchUnitOfWork:
    return FakeDispatchUnitOfWork()


def runtime_with(uow: FakeDispatchUnitOfWork, **settings: Any):
    values: dict[str, Any] = {
        "quiet_hours": {"email": DAY, "sms": DAY, "whatsapp": DAY},
        "default_timezone": "Europe/Istanbul",
        "reminder_count": 1,
        "reminder_delay_hours": 48.0,
    }
    values.update(settings)
    return fake_runtime(uow, **values)


@pytest.fixture
def runtime(uow, clock):
    return runtime_with(uow)


def invitation_requested(
    invitation_id: str = "inv-1",
    preferred: str = "sms",
    timezone: str | None = "Europe/Istanbul",
    locale: str = "en",
    expires_at: datetime | None = None,
    touchpoint: str = "purchase",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invitation_id": invitation_id,
        "touchpoint": touchpoint,
        "locale": locale,
        "preferred_channel": preferred,
        "contact": {
            "customer_id": "c-1",
            "name": "Ada",
            "email": "ada@example.com",
            "phone": PHONE,
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
    }
    if expires_at:
        data["expires_at"] = expires_at.isoformat()
    return new_event("invitation.requested", data)


def response_submitted(invitation_id: str = "inv-1") -> dict[str, Any]:
    return new_event(
        "response.submitted",
        {
            "response_id": "r-1",
            "invitation_id": invitation_id,
            "revision": 1,
            "score": 9,
            "comment": None,
            "locale": "en",
            "touchpoint": "purchase",
            "channel": "sms",
            "customer": {"customer_id": "c-1"},
            "submitted_at": START.isoformat(),
        },
    )


def of_kind(uow: FakeDispatchUnitOfWork, kind: str) -> list[Delivery]:
    return sorted(
        (row for row in uow.deliveries.rows.values() if row.kind == kind), key=lambda row: row.created_at
    )


def the(uow: FakeDispatchUnitOfWork, kind: str = DeliveryKind.INVITATION) -> Delivery:
    [delivery] = of_kind(uow, kind)
    return delivery


# --- Quiet hours --------------------------------------------------------------------------------------


def test_invitation_inside_the_window_goes_at_once(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested())
    assert the(uow).status == DeliveryState.SENT
    assert [sms.to for sms in runtime.sms.messages] == [PHONE]


def test_invitation_at_night_in_the_customers_zone_waits_for_the_morning(runtime, uow, clock):
    clock.now = ISTANBUL_EVENING
    service.schedule_invitation(runtime, invitation_requested())

    delivery = the(uow)
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.QUIET_HOURS, ISTANBUL_MORNING)
    assert (delivery.timezone, delivery.attempts, runtime.sms.messages) == ("Europe/Istanbul", 0, [])

    clock.now = ISTANBUL_MORNING - timedelta(minutes=1)
    assert service.send_due_deliveries(runtime) == 0
    clock.now = ISTANBUL_MORNING
    assert service.send_due_deliveries(runtime) == 1
    assert (delivery.status, delivery.attempts) == (DeliveryState.SENT, 1)


def test_the_same_utc_moment_is_daytime_for_one_customer_and_night_for_another(runtime, uow, clock):
    clock.now = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # 18:00 in New York, 02:00 in Istanbul
    service.schedule_invitation(runtime, invitation_requested("inv-ny", timezone="America/New_York"))
    service.schedule_invitation(runtime, invitation_requested("inv-ist", timezone="Europe/Istanbul"))

    states = {row.invitation_id: row.status for row in of_kind(uow, DeliveryKind.INVITATION)}
    assert states == {"inv-ny": DeliveryState.SENT, "inv-ist": DeliveryState.QUIET_HOURS}


def test_a_customer_without_a_time_zone_gets_the_default_one(uow, clock):
    runtime = runtime_with(uow, default_timezone="America/New_York")
    clock.now = ISTANBUL_EVENING  # 14:00 in New York
    service.schedule_invitation(runtime, invitation_requested(timezone=None))
    assert (the(uow).status, the(uow).timezone) == (DeliveryState.SENT, "America/New_York")


def test_an_unknown_time_zone_in_the_event_falls_back_to_the_default_and_is_logged(
    runtime, uow, clock, caplog
):
    clock.now = ISTANBUL_EVENING
    service.schedule_invitation(runtime, invitation_requested(timezone="Mars/Olympus_Mons"))
    assert (the(uow).status, the(uow).timezone) == (DeliveryState.QUIET_HOURS, "Europe/Istanbul")
    assert "unknown time zone" in caplog.text


def test_each_channel_has_its_own_window(uow, clock):
    runtime = runtime_with(uow, quiet_hours={"email": "off", "sms": DAY, "whatsapp": DAY})
    clock.now = ISTANBUL_EVENING
    service.schedule_invitation(runtime, invitation_requested("inv-mail", preferred="email"))
    service.schedule_invitation(runtime, invitation_requested("inv-text", preferred="sms"))
    states = {row.channel: row.status for row in of_kind(uow, DeliveryKind.INVITATION)}
    assert states == {"email": DeliveryState.SENT, "sms": DeliveryState.QUIET_HOURS}


def test_a_retry_that_would_fall_in_quiet_hours_waits_for_the_window(runtime, uow, clock):
    clock.now = datetime(2026, 3, 2, 17, 59, 50, tzinfo=UTC)  # 20:59:50 in Istanbul
    runtime.sms.failures.append(TransientDeliveryError("busy", code="503"))
    service.schedule_invitation(runtime, invitation_requested())

    delivery = the(uow)
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.QUIET_HOURS, ISTANBUL_MORNING)
    assert delivery.attempts == 1


def test_a_delivery_claimed_late_inside_quiet_hours_goes_back_without_counting_an_attempt(
    runtime, uow, clock
):
    service.schedule_invitation(runtime, invitation_requested())
    delivery = the(uow)
    delivery.status, delivery.next_attempt_at, delivery.attempts = DeliveryState.SCHEDULED, START, 0
    runtime.sms.messages.clear()

    clock.now = ISTANBUL_EVENING  # the clock was down all afternoon
    assert service.send_due_deliveries(runtime) == 1

    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.QUIET_HOURS, ISTANBUL_MORNING)
    assert (delivery.attempts, runtime.sms.messages) == (0, [])


def test_a_customer_who_opts_out_while_the_message_waits_gets_nothing(runtime, uow, clock):
    clock.now = ISTANBUL_EVENING
    service.schedule_invitation(runtime, invitation_requested())
    uow.opt_outs.add(OptOut(channel="sms", address=PHONE, source="sms_stop", created_at=clock.now))

    clock.now = ISTANBUL_MORNING
    service.send_due_deliveries(runtime)

    delivery = the(uow)
    assert (delivery.status, delivery.attempts, runtime.sms.messages) == (DeliveryState.SUPPRESSED, 0, [])
    assert "opted out" in delivery.failure_reason


# --- Reminders ---------------------------------------------------------------------------------------


def test_one_reminder_follows_after_the_delay_and_says_it_is_one(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested())

    reminder = the(uow, DeliveryKind.REMINDER)
    assert (reminder.status, reminder.next_attempt_at) == (
        DeliveryState.SCHEDULED,
        START + timedelta(hours=48),
    )
    assert (reminder.invitation_id, reminder.channel, reminder.address) == ("inv-1", "sms", PHONE)

    clock.now = START + timedelta(hours=48)
    assert service.send_due_deliveries(runtime) == 1
    assert [sms.body for sms in runtime.sms.messages] == [
        "How likely are you to recommend us? Reply 0-10",
        "Reminder: How likely are you to recommend us? Reply 0-10",
    ]
    assert reminder.status == DeliveryState.SENT
    assert len(of_kind(uow, DeliveryKind.REMINDER)) == 1  # one reminder, as configured


def test_an_email_reminder_says_it_is_one_in_the_customers_language(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested(preferred="email", locale="tr"))
    reminder = the(uow, DeliveryKind.REMINDER)
    # Kept as the survey's words, worded when it is sent (most reminders never are: issue 19).
    assert set(reminder.content) == {"survey_message"}

    clock.now = START + timedelta(hours=48)
    assert service.send_due_deliveries(runtime) == 1
    invitation, sent = runtime.email.messages
    assert invitation.subject == "How did we do?" and "Bir hatırlatma" not in invitation.html
    assert sent.subject == "Hatırlatma: How did we do?"
    assert "Bir hatırlatma" in sent.html and "Bir hatırlatma" in sent.text
    assert sent.unsubscribe_url.endswith(reminder.id) and reminder.id in sent.text


def test_a_reminder_stored_rendered_by_an_earlier_release_is_sent_as_it_was(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested(preferred="email"))
    reminder = the(uow, DeliveryKind.REMINDER)
    reminder.content |= {"subject": "Reminder (as rendered)", "html": "<p>0-10</p>", "text": "0-10"}

    clock.now = START + timedelta(hours=48)
    assert service.send_due_deliveries(runtime) == 1
    assert runtime.email.messages[-1].subject == "Reminder (as rendered)"


def test_a_reminder_due_at_night_waits_for_the_customers_morning(uow, clock):
    runtime = runtime_with(uow, reminder_delay_hours=12.0)
    service.schedule_invitation(runtime, invitation_requested())  # 12:00 in Istanbul; +12 h is midnight
    reminder = the(uow, DeliveryKind.REMINDER)
    assert (reminder.status, reminder.next_attempt_at) == (DeliveryState.QUIET_HOURS, ISTANBUL_MORNING)


def test_an_answer_cancels_the_waiting_reminder_and_marks_the_invitation_answered(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested())
    service.note_answer(runtime, response_submitted())
    service.note_answer(runtime, response_submitted())  # redelivered: nothing twice

    assert the(uow).status == DeliveryState.ANSWERED
    reminder = the(uow, DeliveryKind.REMINDER)
    assert (reminder.status, reminder.next_attempt_at) == (DeliveryState.CANCELLED, None)
    assert reminder.failure_reason == "The customer answered; the message was not needed."
    clock.now = START + timedelta(hours=48)
    assert service.send_due_deliveries(runtime) == 0
    assert len(runtime.sms.messages) == 1


def test_an_answer_settles_a_send_waiting_to_be_looked_up(runtime, uow):
    runtime.sms.failures.append(OutcomeUnknownError("Twilio did not answer: ReadTimeout"))
    service.schedule_invitation(runtime, invitation_requested())
    service.note_answer(runtime, response_submitted())
    delivery = the(uow)
    assert (delivery.status, delivery.next_attempt_at, delivery.reconcile_since) == (
        DeliveryState.ANSWERED,
        None,
        None,
    )


def test_no_reminder_is_planned_past_the_invitations_expiry(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested(expires_at=START + timedelta(hours=24)))
    assert of_kind(uow, DeliveryKind.REMINDER) == []


def test_a_reminder_whose_invitation_expired_while_it_waited_is_cancelled(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested(expires_at=START + timedelta(hours=72)))
    reminder = the(uow, DeliveryKind.REMINDER)
    reminder.next_attempt_at = START + timedelta(hours=80)  # held back (say, by quiet hours) past the expiry

    clock.now = START + timedelta(hours=80)
    service.send_due_deliveries(runtime)

    assert (reminder.status, reminder.failure_reason) == (
        DeliveryState.CANCELLED,
        "The survey expired before the reminder was due.",
    )
    assert len(runtime.sms.messages) == 1


def test_a_reminder_to_a_customer_who_opted_out_is_suppressed(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested())
    uow.opt_outs.add(OptOut(channel="sms", address=PHONE, source="sms_stop", created_at=START))
    clock.now = START + timedelta(hours=48)
    service.send_due_deliveries(runtime)
    assert the(uow, DeliveryKind.REMINDER).status == DeliveryState.SUPPRESSED
    assert len(runtime.sms.messages) == 1


def test_reminders_per_touchpoint_override_the_defaults(uow, clock):
    runtime = runtime_with(uow, reminders_by_touchpoint={"support_call": (0, None), "purchase": (2, 24.0)})
    service.schedule_invitation(runtime, invitation_requested("inv-call", touchpoint="support_call"))
    service.schedule_invitation(runtime, invitation_requested("inv-buy", touchpoint="purchase"))

    [first] = of_kind(uow, DeliveryKind.REMINDER)
    assert (first.source_id, first.next_attempt_at) == ("inv-buy:reminder-1", START + timedelta(hours=24))
    clock.now = START + timedelta(hours=24)
    service.send_due_deliveries(runtime)
    second = next(row for row in of_kind(uow, DeliveryKind.REMINDER) if row.id != first.id)
    # The second follows the first by the touchpoint's delay.
    assert (second.source_id, second.next_attempt_at) == ("inv-buy:reminder-2", START + timedelta(hours=48))
    clock.now = START + timedelta(hours=48)
    service.send_due_deliveries(runtime)
    assert len(of_kind(uow, DeliveryKind.REMINDER)) == 2  # and no third
    assert [sms.body.startswith("Reminder:") for sms in runtime.sms.messages] == [False, False, True, True]


def test_an_sms_reply_to_a_reminder_answers_the_invitation(runtime, uow, clock):
    service.schedule_invitation(runtime, invitation_requested())
    clock.now = START + timedelta(hours=48)
    service.send_due_deliveries(runtime)

    service.receive_sms(runtime, "SM" + "c" * 32, PHONE, "9")

    [event] = [event for event in uow.events if event["type"] == "sms.received"]
    assert event["data"]["invitation_id"] == "inv-1"


def test_no_reminder_follows_a_failure_reported_before_the_providers_answer(runtime, uow):
    def failed_meanwhile(message):
        failed = report(message.reference, ProviderStatus.FAILED, error_code="30006")
        service.apply_status_event(runtime, failed)

    runtime.sms.while_sending = failed_meanwhile
    service.schedule_invitation(runtime, invitation_requested())

    assert the(uow).status == DeliveryState.FAILED
    assert of_kind(uow, DeliveryKind.REMINDER) == []


def test_no_reminder_without_reminders_configured(uow, clock):
    runtime = runtime_with(uow, reminder_count=0)
    service.schedule_invitation(runtime, invitation_requested())
    assert of_kind(uow, DeliveryKind.REMINDER) == []


# --- Unknown outcomes ----------------------------------------------------------------------------------


def test_an_sms_whose_send_timed_out_is_looked_up_and_not_sent_twice(runtime, uow, clock):
    runtime.sms.failures.append(OutcomeUnknownError("Twilio did not answer: ReadTimeout"))
    service.schedule_invitation(runtime, invitation_requested())

    delivery = the(uow)
    assert (delivery.status, delivery.reconcile_since) == (DeliveryState.SCHEDULED, START)
    assert "look the message up" in delivery.failure_reason

    runtime.sms.provider_has[delivery.id] = SendReceipt("fake", "SM-took-it")
    clock.advance(minutes=1)
    service.send_due_deliveries(runtime)

    assert (delivery.status, delivery.provider_message_id) == (DeliveryState.SENT, "SM-took-it")
    assert len(runtime.sms.messages) == 1  # the one whose answer was lost
    assert (delivery.reconcile_since, delivery.failure_reason) == (None, None)


def test_the_look_up_comes_before_quiet_hours_and_opt_outs_for_the_message_may_be_sent(runtime, uow, clock):
    runtime.sms.failures.append(OutcomeUnknownError("Twilio did not answer: ReadTimeout"))
    service.schedule_invitation(runtime, invitation_requested())
    delivery = the(uow)
    runtime.sms.provider_has[delivery.id] = SendReceipt("fake", "SM-took-it")
    uow.opt_outs.add(OptOut(channel="sms", address=PHONE, source="sms_stop", created_at=START))

    clock.now = ISTANBUL_EVENING  # the retry is due in the customer's night
    delivery.next_attempt_at = clock.now
    service.send_due_deliveries(runtime)

    assert (delivery.status, delivery.provider_message_id) == (DeliveryState.SENT, "SM-took-it")
    assert len(runtime.sms.messages) == 1


def test_an_sms_whose_provider_answered_500_and_kept_nothing_is_sent_again_once(runtime, uow, clock):
    runtime.sms.failures.append(OutcomeUnknownError("Twilio answered 500", code="20500"))
    service.schedule_invitation(runtime, invitation_requested())
    clock.advance(minutes=1)
    service.send_due_deliveries(runtime)

    assert the(uow).status == DeliveryState.SENT
    assert len(runtime.sms.messages) == 2 and len(runtime.sms.lookups) == 1


def test_an_email_whose_send_timed_out_is_shown_unknown_and_never_sent_again(runtime, uow, clock):
    runtime.email.failures.append(OutcomeUnknownError("SendGrid did not answer: ReadTimeout"))
    service.schedule_invitation(runtime, invitation_requested(preferred="email"))

    delivery = the(uow)
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.UNKNOWN, None)
    assert "not sent again" in delivery.failure_reason
    clock.advance(hours=1)
    assert service.send_due_deliveries(runtime) == 0 and len(runtime.email.messages) == 1


def test_a_provider_report_settles_an_unknown_email(runtime, uow):
    runtime.email.failures.append(OutcomeUnknownError("SendGrid did not answer: ReadTimeout"))
    service.schedule_invitation(runtime, invitation_requested(preferred="email"))
    delivery = the(uow)

    service.apply_status_event(runtime, report(delivery.id, ProviderStatus.DELIVERED, provider="sendgrid"))

    assert (delivery.status, delivery.failure_reason) == (DeliveryState.DELIVERED, None)


def test_a_rate_limited_send_is_retried_after_the_providers_wait(runtime, uow):
    runtime.sms.failures.append(TransientDeliveryError("Too many requests", code="20429", retry_after=120))
    service.schedule_invitation(runtime, invitation_requested())
    delivery = the(uow)
    assert (delivery.status, delivery.next_attempt_at) == (
        DeliveryState.SCHEDULED,
        START + timedelta(seconds=120),
    )
    assert delivery.reconcile_since is None  # never processed: nothing to look up


# --- Failure reasons -----------------------------------------------------------------------------------


def report(
    reference: str, status: ProviderStatus, provider: str = "twilio", **fields: Any
) -> ProviderStatusEvent:
    return ProviderStatusEvent(
        provider=provider,
        provider_event_id=f"{reference}:{status}",
        reference=reference,
        provider_message_id=None,
        status=status,
        occurred_at=START,
        **fields,
    )


def test_an_undelivered_sms_carries_twilios_code_and_a_sentence(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested())
    delivery = the(uow)
    service.apply_status_event(
        runtime,
        report(delivery.id, ProviderStatus.UNDELIVERED, reason="Twilio error 30006", error_code="30006"),
    )
    assert (delivery.status, delivery.error_code) == (DeliveryState.UNDELIVERED, "30006")
    assert delivery.failure_reason.startswith("The number cannot receive SMS")


def test_a_bounced_email_says_the_mailbox_does_not_exist(runtime, uow):
    service.schedule_invitation(runtime, invitation_requested(preferred="email"))
    delivery = the(uow)
    bounce = report(
        delivery.id,
        ProviderStatus.BOUNCED,
        provider="sendgrid",
        reason="550 5.1.1 User unknown",
        error_code="5.1.1",
    )
    service.apply_status_event(runtime, bounce)
    assert (delivery.status, delivery.failure_reason) == (
        DeliveryState.BOUNCED,
        "The mailbox does not exist.",
    )


def test_a_refused_send_carries_the_code_and_a_sentence(runtime, uow):
    runtime.sms.failures.append(PermanentDeliveryError("Twilio answered 400 (error 21614)", code="21614"))
    service.schedule_invitation(runtime, invitation_requested())
    delivery = the(uow)
    assert (delivery.status, delivery.error_code) == (DeliveryState.FAILED, "21614")
    assert delivery.failure_reason == "The number cannot receive SMS: it is not a mobile number."


def test_a_delivery_given_up_after_its_attempts_says_so(runtime, uow, clock):
    runtime.sms.failures.extend(TransientDeliveryError("refused") for _ in range(6))
    service.schedule_invitation(runtime, invitation_requested())
    for _ in range(6):
        clock.advance(hours=1)
        clock.now = max(clock.now, START)
        service.send_due_deliveries(runtime)
    delivery = the(uow)
    assert delivery.status == DeliveryState.FAILED
    assert "we stopped after 6 attempts" in delivery.failure_reason


def test_help_is_answered_with_the_configured_text_naming_the_brand(uow, clock):
    runtime = runtime_with(uow, brand_name="Acme", sms_help_text="{brand} surveys. Reply STOP to stop.")
    assert service.help_reply(runtime) == "Acme surveys. Reply STOP to stop."
    assert service.help_reply(replace_settings(runtime, sms_help_text=None)) is None


def replace_settings(runtime, **changes: Any):
    runtime.settings = replace(runtime.settings, **changes)
    return runtime
