"""Every dispatch use case on the in-memory unit of work and fake transports: no database, no provider."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.dispatch import service
from services.dispatch.domain import DeliveryState
from services.dispatch.models import Delivery, OptOut
from services.dispatch.providers import (
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
)
from services.dispatch.providers.webhooks import ProviderStatus, ProviderStatusEvent, SmsReplyKind
from shared.events import new_event
from shared.http import NotFoundError
from shared.sms import sms_segments
from shared.unit_of_work import Conflict
from tests.clock import Clock

from .fakes import FakeDispatchUnitOfWork, FakeTransport, fake_runtime

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PHONE = "+15555550100"


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
    return fake_runtime(uow)


@pytest.fixture
def email(runtime) -> FakeTransport:
    return runtime.email


@pytest.fixture
def sms(runtime) -> FakeTransport:
    return runtime.sms


def invitation_requested(
    invitation_id: str = "inv-1",
    preferred: str = "email",
    email: str | None = "ada@example.com",
    phone: str | None = None,
    locale: str = "en",
) -> dict[str, Any]:
    return new_event(
        "invitation.requested",
        {
            "invitation_id": invitation_id,
            "touchpoint": "purchase",
            "locale": locale,
            "preferred_channel": preferred,
            "contact": {"customer_id": "c-1", "name": "Ada", "email": email, "phone": phone},
            "message": {
                "subject": "How did we do?",
                "greeting": "Hello Ada,",
                "question": "How likely are you to recommend us?",
                "low_label": "Not at all likely",
                "high_label": "Extremely likely",
                "sms_body": "Reply 0-10",
                "answer_url": f"http://survey.test/s/token-{invitation_id}",
            },
        },
    )


def only_delivery(uow: FakeDispatchUnitOfWork) -> Delivery:
    [delivery] = uow.deliveries.rows.values()
    return delivery


def opt_outs(uow: FakeDispatchUnitOfWork) -> set[tuple[str, str]]:
    return set(uow.opt_outs.rows)


def opt_out(uow: FakeDispatchUnitOfWork, channel: str, address: str) -> None:
    uow.opt_outs.add(OptOut(channel=channel, address=address, source="test", created_at=START))


def scheduled_delivery(
    uow: FakeDispatchUnitOfWork,
    delivery_id: str = "d-1",
    due: datetime = START,
    channel: str = "email",
    address: str = "ada@example.com",
    invitation_id: str = "inv-1",
    status: str = DeliveryState.SCHEDULED,
    attempts: int = 0,
) -> Delivery:
    content = {"subject": "How did we do?", "html": "<p>0-10</p>", "text": "0-10", "body": "Reply 0-10"}
    delivery = Delivery(
        id=delivery_id,
        invitation_id=invitation_id,
        kind="invitation",
        channel=channel,
        address=address,
        recipient_name="Ada",
        locale="en",
        content=content,
        status=status,
        attempts=attempts,
        next_attempt_at=due,
        provider=None,
        provider_message_id=None,
        last_error=None,
        created_at=due,
        updated_at=due,
    )
    uow.deliveries.add(delivery)
    return delivery


def report(
    status: ProviderStatus,
    reference: str | None = "d-1",
    event_id: str = "ev-1",
    message_id: str | None = None,
    reason: str | None = None,
) -> ProviderStatusEvent:
    return ProviderStatusEvent("sendgrid", event_id, reference, message_id, status, START, reason)


# --- schedule_invitation -----------------------------------------------------------------------------


def test_email_invitation_is_sent_with_eleven_score_links_and_a_one_click_unsubscribe(runtime, uow, email):
    service.schedule_invitation(runtime, invitation_requested())

    delivery = only_delivery(uow)
    assert (delivery.status, delivery.channel, delivery.attempts) == (DeliveryState.SENT, "email", 1)
    assert (delivery.provider, delivery.provider_message_id, delivery.next_attempt_at) == (
        "fake",
        "fake-1",
        None,
    )
    [message] = email.messages
    assert isinstance(message, OutgoingEmail)
    assert (message.to_email, message.to_name, message.reference) == ("ada@example.com", "Ada", delivery.id)
    assert message.unsubscribe_url == f"http://testserver/unsubscribe/{delivery.id}"
    for score in range(11):
        assert f'href="http://survey.test/s/token-inv-1?score={score}"' in message.html
        assert f"{score}: http://survey.test/s/token-inv-1?score={score}" in message.text
    assert f'href="{message.unsubscribe_url}"' in message.html


def test_sms_invitation_asks_twilio_to_report_its_status_for_this_delivery(runtime, uow, email, sms):
    service.schedule_invitation(runtime, invitation_requested("inv-1", "sms", None, PHONE))

    delivery = only_delivery(uow)
    assert (delivery.status, delivery.channel, delivery.address) == (DeliveryState.SENT, "sms", PHONE)
    [message] = sms.messages
    assert isinstance(message, OutgoingSms)
    assert (message.to, message.body) == (PHONE, "Reply 0-10")
    assert (
        message.status_callback_url == f"http://testserver/webhooks/twilio/status?delivery_id={delivery.id}"
    )
    assert email.messages == []


def test_turkish_invitation_has_the_turkish_footer(runtime, email):
    service.schedule_invitation(runtime, invitation_requested(locale="tr"))
    [message] = email.messages
    assert 'lang="tr"' in message.html and "Bu anketlerin aboneliğinden çık" in message.html


def test_invitation_in_a_language_without_texts_has_the_english_footer(runtime, email):
    service.schedule_invitation(runtime, invitation_requested(locale="de"))
    [message] = email.messages
    assert "Unsubscribe from these surveys" in message.html


def test_invitation_falls_back_to_email_when_the_customer_opted_out_of_sms(runtime, uow, email, sms):
    opt_out(uow, "sms", PHONE)
    service.schedule_invitation(runtime, invitation_requested("inv-1", "sms", "ada@example.com", PHONE))

    assert only_delivery(uow).channel == "email"
    assert len(email.messages) == 1 and sms.messages == []


def test_opt_out_of_an_email_address_holds_whatever_its_case(runtime, uow, email, sms):
    opt_out(uow, "email", "ada@example.com")
    service.schedule_invitation(runtime, invitation_requested("inv-1", "email", "Ada@Example.COM", PHONE))
    assert only_delivery(uow).channel == "sms" and email.messages == []


def test_an_opt_out_committed_after_the_channel_was_chosen_stops_the_first_attempt(
    runtime, uow, email, monkeypatch
):
    # The first attempt is claimed in the transaction that schedules it, by a statement that looks for an
    # opt-out of the address once more: one committed since the channel was chosen stops the send.
    add_new_to_send = uow.deliveries.add_new_to_send

    def opted_out_meanwhile(delivery, opt_out_address):
        opt_out(uow, "email", "ada@example.com")
        return add_new_to_send(delivery, opt_out_address)

    monkeypatch.setattr(uow.deliveries, "add_new_to_send", opted_out_meanwhile)
    service.schedule_invitation(runtime, invitation_requested())

    delivery = only_delivery(uow)
    assert email.messages == [] and delivery.status == DeliveryState.SUPPRESSED
    assert delivery.attempts == 0 and delivery.call_started_at is None


def test_the_first_attempt_marks_its_call_before_the_provider_is_called(runtime, uow, email):
    seen = []
    email.while_sending = lambda message: seen.append(
        (only_delivery(uow).status, only_delivery(uow).attempts, only_delivery(uow).call_started_at)
    )
    service.schedule_invitation(runtime, invitation_requested())

    assert seen == [(DeliveryState.SENDING, 1, START)]
    assert only_delivery(uow).status == DeliveryState.SENT


def test_customer_opted_out_everywhere_is_suppressed_and_sent_nothing(runtime, uow, email, sms):
    opt_out(uow, "email", "ada@example.com")
    opt_out(uow, "sms", PHONE)
    service.schedule_invitation(runtime, invitation_requested("inv-1", "email", "ada@example.com", PHONE))

    delivery = only_delivery(uow)
    assert delivery.status == DeliveryState.SUPPRESSED
    assert (delivery.attempts, delivery.next_attempt_at, delivery.address) == (0, None, "")
    assert "opted out" in delivery.last_error
    assert email.messages == [] and sms.messages == []


def test_redelivered_invitation_event_creates_one_delivery_and_sends_once(runtime, uow, email):
    envelope = invitation_requested()
    service.schedule_invitation(runtime, envelope)
    service.schedule_invitation(runtime, envelope)  # dramatiq delivers at least once

    assert len(uow.deliveries.rows) == 1 and len(email.messages) == 1


def test_invitation_is_sent_only_once_its_delivery_is_committed(runtime, uow, email):
    envelope = invitation_requested()
    committed_when_sent = []
    email.while_sending = lambda message: committed_when_sent.append(
        (envelope["id"], "schedule_invitation") in uow.consumed and message.reference in uow.deliveries.rows
    )
    service.schedule_invitation(runtime, envelope)
    assert committed_when_sent == [True]


def test_nothing_is_sent_when_the_transaction_does_not_commit(runtime, uow, email):
    uow.fail_next_commit_with_conflict()
    with pytest.raises(Conflict):
        service.schedule_invitation(runtime, invitation_requested())
    assert email.messages == [] and uow.deliveries.rows == {}


# --- attempt_delivery --------------------------------------------------------------------------------


def test_transient_failure_is_rescheduled_with_a_doubling_backoff(runtime, uow, email, clock):
    delivery = scheduled_delivery(uow)
    email.failures = [TransientDeliveryError("503", "503"), TransientDeliveryError("503", "503")]

    assert service.attempt_delivery(runtime, "d-1") is True
    assert (delivery.status, delivery.attempts) == (DeliveryState.SCHEDULED, 1)
    assert delivery.next_attempt_at == START + timedelta(seconds=30)

    clock.advance(seconds=30)
    assert service.attempt_delivery(runtime, "d-1") is True
    assert delivery.attempts == 2 and delivery.next_attempt_at == clock.now + timedelta(seconds=60)
    assert delivery.last_error == "503"


def test_providers_retry_after_lengthens_the_wait(runtime, uow, email):
    delivery = scheduled_delivery(uow)
    email.failures = [TransientDeliveryError("429 too many requests", "429", retry_after=120)]

    service.attempt_delivery(runtime, "d-1")

    assert delivery.status == DeliveryState.SCHEDULED
    assert delivery.next_attempt_at == START + timedelta(seconds=120)


def test_delivery_is_given_up_after_its_sixth_failed_attempt(runtime, uow, email, clock):
    delivery = scheduled_delivery(uow)
    email.failures = [TransientDeliveryError("503", "503") for _ in range(6)]
    while delivery.status == DeliveryState.SCHEDULED:
        clock.now = delivery.next_attempt_at
        service.attempt_delivery(runtime, "d-1")

    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryState.FAILED, 6, None)
    assert len(email.messages) == 6


def test_permanent_failure_is_not_retried_and_its_error_names_no_address(runtime, uow, email):
    delivery = scheduled_delivery(uow)
    email.failures = [PermanentDeliveryError("SendGrid answered 400: to: ada@example.com is invalid", "400")]

    service.attempt_delivery(runtime, "d-1")

    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.FAILED, None)
    assert "a***@example.com" in delivery.last_error and "ada@" not in delivery.last_error
    assert opt_outs(uow) == set()


def test_twilio_refusal_for_a_number_that_replied_stop_records_an_sms_opt_out(runtime, uow, sms):
    delivery = scheduled_delivery(uow, channel="sms", address=PHONE)
    error = PermanentDeliveryError("Attempt to send to unsubscribed recipient", "21610", opted_out=True)
    sms.failures = [error]

    service.attempt_delivery(runtime, "d-1")

    assert delivery.status == DeliveryState.FAILED
    assert opt_outs(uow) == {("sms", PHONE)}
    assert uow.opt_outs.rows[("sms", PHONE)].source == "provider"


def test_delivery_not_yet_due_is_not_attempted(runtime, uow, email):
    delivery = scheduled_delivery(uow, due=START + timedelta(seconds=1))
    assert service.attempt_delivery(runtime, "d-1") is False
    assert email.messages == [] and (delivery.status, delivery.attempts) == (DeliveryState.SCHEDULED, 0)


def test_delivery_another_worker_claimed_is_not_attempted_again(runtime, uow, email):
    scheduled_delivery(uow, status=DeliveryState.SENDING, attempts=1)
    assert service.attempt_delivery(runtime, "d-1") is False
    assert service.attempt_delivery(runtime, "no-such-delivery") is False
    assert email.messages == []


def test_failed_call_after_the_providers_own_report_leaves_the_delivery_as_reported(runtime, uow, email):
    delivery = scheduled_delivery(uow)
    # The provider took the message and reported it delivered; our call then timed out.
    email.while_sending = lambda _: service.apply_status_event(runtime, report(ProviderStatus.DELIVERED))
    email.failures = [TransientDeliveryError("SendGrid unreachable: ReadTimeout")]

    service.attempt_delivery(runtime, "d-1")

    assert (delivery.status, delivery.attempts) == (DeliveryState.DELIVERED, 1)


def test_providers_answer_after_its_own_delivered_report_keeps_the_delivery_delivered(runtime, uow, email):
    delivery = scheduled_delivery(uow)
    email.while_sending = lambda _: service.apply_status_event(runtime, report(ProviderStatus.DELIVERED))

    service.attempt_delivery(runtime, "d-1")

    assert (delivery.status, delivery.provider_message_id) == (DeliveryState.DELIVERED, "fake-1")
    assert delivery.next_attempt_at is None


# --- send_due_deliveries -----------------------------------------------------------------------------


def test_scheduler_sends_every_due_delivery_earliest_first_and_leaves_the_rest(runtime, uow, email, clock):
    scheduled_delivery(uow, "d-late", due=START - timedelta(seconds=5), invitation_id="inv-1")
    scheduled_delivery(uow, "d-early", due=START - timedelta(minutes=5), invitation_id="inv-2")
    later = scheduled_delivery(uow, "d-later", due=START + timedelta(minutes=1), invitation_id="inv-3")

    assert service.send_due_deliveries(runtime) == 2

    assert [message.reference for message in email.messages] == ["d-early", "d-late"]
    assert {d.id: d.status for d in uow.deliveries.rows.values()} == {
        "d-late": DeliveryState.SENT,
        "d-early": DeliveryState.SENT,
        "d-later": DeliveryState.SCHEDULED,
    }
    assert later.attempts == 0


def test_scheduler_claims_no_more_than_its_limit(runtime, uow, email):
    for number in range(3):
        scheduled_delivery(
            uow, f"d-{number}", due=START - timedelta(seconds=number), invitation_id=f"i-{number}"
        )
    assert service.send_due_deliveries(runtime, limit=2) == 2
    assert [message.reference for message in email.messages] == ["d-2", "d-1"]


def test_one_unexpected_error_does_not_hold_back_the_rest_of_the_batch(runtime, uow, email):
    first = scheduled_delivery(uow, "d-1", due=START - timedelta(seconds=2), invitation_id="inv-1")
    second = scheduled_delivery(uow, "d-2", due=START - timedelta(seconds=1), invitation_id="inv-2")
    email.failures = [RuntimeError("a bug in a transport")]

    assert service.send_due_deliveries(runtime) == 2

    # Left claimed: its lease runs out and it is recovered, with the attempt counted.
    assert (first.status, first.attempts) == (DeliveryState.SENDING, 1)
    assert second.status == DeliveryState.SENT


# --- recover_stalled_deliveries ------------------------------------------------------------------------


def test_sms_whose_worker_died_mid_attempt_is_looked_up_after_the_lease_not_resent(runtime, uow, sms):
    delivery = scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENDING, attempts=1)
    delivery.call_started_at = START  # it died during the call

    # Within the lease, its worker may still be talking to the provider.
    assert service.recover_stalled_deliveries(runtime, now=START + timedelta(minutes=14)) == 0
    later = START + timedelta(minutes=16)
    assert service.recover_stalled_deliveries(runtime, now=later) == 1

    assert (delivery.status, delivery.attempts) == (DeliveryState.SCHEDULED, 1)
    assert delivery.next_attempt_at == later + timedelta(seconds=30)
    assert delivery.reconcile_since == START  # when the lost attempt was claimed
    assert delivery.last_error == "The attempt was interrupted before the provider answered."

    # The provider did take it: found, recorded as sent, not sent again.
    sms.provider_has["d-1"] = SendReceipt("fake", "SM-lost")
    assert service.attempt_delivery(runtime, "d-1", now=later + timedelta(minutes=1))
    assert (delivery.status, delivery.provider_message_id) == (DeliveryState.SENT, "SM-lost")
    assert sms.messages == [] and sms.lookups == [("d-1", START)]


def test_sms_looked_up_and_not_found_is_sent_once(runtime, uow, sms):
    delivery = scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENDING, attempts=1)
    later = START + timedelta(minutes=16)
    service.recover_stalled_deliveries(runtime, now=later)

    assert service.attempt_delivery(runtime, "d-1", now=later + timedelta(minutes=1))

    assert [message.reference for message in sms.messages] == ["d-1"]
    assert (delivery.status, delivery.reconcile_since) == (DeliveryState.SENT, None)


def test_email_whose_worker_died_mid_attempt_is_shown_unknown_and_never_sent_again(runtime, uow, email):
    # SendGrid offers no look-up of a message by our reference.
    delivery = scheduled_delivery(uow, status=DeliveryState.SENDING, attempts=1)
    delivery.call_started_at = START

    assert service.recover_stalled_deliveries(runtime, now=START + timedelta(minutes=16)) == 1

    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.UNKNOWN, None)
    assert "not sent again" in delivery.failure_reason
    assert service.send_due_deliveries(runtime) == 0
    assert email.messages == []


def test_the_call_is_marked_started_before_the_provider_is_called(runtime, uow, email):
    delivery = scheduled_delivery(uow)
    marked_during_the_call = []
    email.while_sending = lambda message: marked_during_the_call.append(delivery.call_started_at)

    assert service.attempt_delivery(runtime, "d-1")

    assert marked_during_the_call == [START]


def test_email_whose_worker_died_before_calling_the_provider_is_sent_after_the_lease_once(
    runtime, uow, email
):
    # Claimed, then the worker was killed before the call could leave: SendGrid never heard of it.
    delivery = scheduled_delivery(uow, status=DeliveryState.SENDING, attempts=1)
    later = START + timedelta(minutes=16)

    assert service.recover_stalled_deliveries(runtime, now=later) == 1
    assert (delivery.status, delivery.next_attempt_at) == (
        DeliveryState.SCHEDULED,
        later + timedelta(seconds=30),
    )
    assert delivery.reconcile_since is None and "before the provider was called" in delivery.last_error

    assert service.attempt_delivery(runtime, "d-1", now=later + timedelta(minutes=1))
    assert [message.reference for message in email.messages] == ["d-1"]
    assert (delivery.status, delivery.attempts) == (DeliveryState.SENT, 2)


def test_a_mark_left_by_an_earlier_attempt_does_not_make_the_lost_one_unknown(runtime, uow, email):
    # The first attempt called and was refused (429); the second, claimed at START, died before its call.
    delivery = scheduled_delivery(uow, status=DeliveryState.SENDING, attempts=2)
    delivery.call_started_at = START - timedelta(minutes=1)

    service.recover_stalled_deliveries(runtime, now=START + timedelta(minutes=16))

    assert delivery.status == DeliveryState.SCHEDULED


def test_a_delivery_that_keeps_killing_its_worker_before_the_call_stops_as_failed(runtime, uow, email):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENDING, attempts=6)

    service.recover_stalled_deliveries(runtime, now=START + timedelta(minutes=16))

    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.FAILED, None)
    assert "6 attempts" in delivery.failure_reason and email.messages == []


def test_a_shorter_lease_set_by_the_operator_recovers_a_dead_workers_delivery_sooner(uow, clock):
    runtime = fake_runtime(uow, delivery_lease_seconds=20.0, provider_timeout_seconds=1.0)
    scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENDING, attempts=1)

    assert service.recover_stalled_deliveries(runtime, now=START + timedelta(seconds=19)) == 0
    assert service.recover_stalled_deliveries(runtime, now=START + timedelta(seconds=21)) == 1


def test_a_clock_claims_no_more_deliveries_at_once_than_its_lease_covers(uow, clock):
    # Each may take a look-up and a send at the 1 s timeout, with as much to spare: 20 s cover 6 of them.
    runtime = fake_runtime(uow, delivery_lease_seconds=20.0, provider_timeout_seconds=1.0)
    for number in range(10):
        scheduled_delivery(uow, delivery_id=f"d-{number}", invitation_id=f"inv-{number}")

    assert service.send_due_deliveries(runtime) == 6
    assert service.send_due_deliveries(runtime) == 4


def test_stalled_sms_on_its_last_attempt_is_shown_unknown_not_failed(runtime, uow):
    delivery = scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENDING, attempts=6)
    delivery.call_started_at = START
    assert service.recover_stalled_deliveries(runtime, now=START + timedelta(hours=1)) == 1
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryState.UNKNOWN, None)


# --- unsubscribe / is_unsubscribed -----------------------------------------------------------------------


def test_unsubscribe_opts_the_address_out_once(runtime, uow):
    scheduled_delivery(uow, address="Ada@Example.com", status=DeliveryState.SENT)
    assert service.is_unsubscribed(runtime, "d-1") is False

    service.unsubscribe(runtime, "d-1")
    service.unsubscribe(runtime, "d-1")  # the one-click POST, then the page's button

    assert service.is_unsubscribed(runtime, "d-1") is True
    assert opt_outs(uow) == {("email", "ada@example.com")}
    assert uow.opt_outs.rows[("email", "ada@example.com")].source == "unsubscribe_link"


def test_unsubscribe_link_of_an_unknown_or_suppressed_delivery_is_not_found(runtime, uow):
    scheduled_delivery(uow, address="", status=DeliveryState.SUPPRESSED)
    for delivery_id in ("d-1", "no-such-delivery"):
        with pytest.raises(NotFoundError):
            service.unsubscribe(runtime, delivery_id)
        with pytest.raises(NotFoundError):
            service.is_unsubscribed(runtime, delivery_id)
    assert opt_outs(uow) == set()


# --- apply_status_event ----------------------------------------------------------------------------------


def test_repeated_provider_report_is_applied_once(runtime, uow):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENT)
    assert service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, reason="mailbox full")) is True
    delivery.last_error = None
    assert service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, reason="mailbox full")) is False
    assert delivery.last_error is None and len(uow.provider_events.rows) == 1


def test_report_moves_the_delivery_forward_with_its_reason(runtime, uow, clock):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENT)
    clock.advance(minutes=1)
    service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, reason="550 mailbox unavailable"))

    assert (delivery.status, delivery.last_error) == (DeliveryState.BOUNCED, "550 mailbox unavailable")
    assert delivery.updated_at == clock.now
    assert uow.provider_events.rows["ev-1"].delivery_id == "d-1"


def test_a_bounce_is_announced_to_survey_once(runtime, uow):
    scheduled_delivery(uow, status=DeliveryState.SENT)
    service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, event_id="ev-1"))
    service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, event_id="ev-2"))
    [bounced] = uow.emitted("delivery.bounced")
    assert (bounced["delivery_id"], bounced["channel"]) == ("d-1", "email")


def test_late_delivered_never_overwrites_a_bounce(runtime, uow):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENT)
    service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, event_id="ev-1"))
    service.apply_status_event(runtime, report(ProviderStatus.DELIVERED, event_id="ev-2"))
    assert delivery.status == DeliveryState.BOUNCED


def test_delivered_report_is_not_undone_by_a_repeated_processed(runtime, uow):
    delivery = scheduled_delivery(uow, status=DeliveryState.DELIVERED)
    service.apply_status_event(runtime, report(ProviderStatus.PROCESSED, event_id="ev-3"))
    assert delivery.status == DeliveryState.DELIVERED


def test_twilio_report_without_our_reference_finds_the_delivery_by_its_message_sid(runtime, uow):
    delivery = scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENT)
    delivery.provider_message_id = "SM123"
    service.apply_status_event(
        runtime, report(ProviderStatus.UNDELIVERED, reference=None, message_id="SM123")
    )
    assert delivery.status == DeliveryState.UNDELIVERED


def test_report_about_an_unknown_message_is_recorded_and_changes_nothing(runtime, uow):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENT)
    assert service.apply_status_event(runtime, report(ProviderStatus.BOUNCED, reference="elsewhere")) is True
    assert delivery.status == DeliveryState.SENT
    assert uow.provider_events.rows["ev-1"].delivery_id is None


@pytest.mark.parametrize("signal", [ProviderStatus.UNSUBSCRIBED, ProviderStatus.SPAM_REPORTED])
def test_unsubscribe_and_spam_reports_opt_the_address_out_without_undelivering(runtime, uow, signal):
    delivery = scheduled_delivery(uow, address="Ada@Example.com", status=DeliveryState.DELIVERED)
    service.apply_status_event(runtime, report(signal))
    assert opt_outs(uow) == {("email", "ada@example.com")}
    assert delivery.status == DeliveryState.DELIVERED


def test_opens_and_clicks_move_the_state_forward_in_any_order_and_do_not_opt_out(runtime, uow):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENT)
    service.apply_status_event(runtime, report(ProviderStatus.CLICKED, event_id="ev-2"))
    service.apply_status_event(runtime, report(ProviderStatus.OPENED, event_id="ev-1"))
    service.apply_status_event(runtime, report(ProviderStatus.DELIVERED, event_id="ev-0"))
    assert delivery.status == DeliveryState.CLICKED and opt_outs(uow) == set()


@pytest.mark.parametrize(
    ("reason", "opted_out"),
    [("Unsubscribed Address", True), ("Spam Reporting Address", True), ("Invalid SMTPAPI header", False)],
)
def test_sendgrid_drop_opts_out_only_an_address_on_its_suppression_lists(runtime, uow, reason, opted_out):
    delivery = scheduled_delivery(uow, status=DeliveryState.SENT)
    service.apply_status_event(runtime, report(ProviderStatus.DROPPED, reason=reason))
    assert delivery.status == DeliveryState.DROPPED
    assert opt_outs(uow) == ({("email", "ada@example.com")} if opted_out else set())


# --- receive_sms ------------------------------------------------------------------------------------------


def test_stop_opts_the_number_out_and_answers_nothing(runtime, uow):
    scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENT)

    assert service.receive_sms(runtime, "SM1", PHONE, " Stop. ") is SmsReplyKind.OPT_OUT

    assert opt_outs(uow) == {("sms", PHONE)} and uow.emitted("sms.received") == []
    assert uow.inbound_sms.rows["SM1"].kind == "opt_out"
    # Survey hears of it, to skip a customer opted out of every channel.
    assert uow.emitted("customer.opted_out") == [
        {"channel": "sms", "address": PHONE, "customer_id": None, "reason": "sms_stop"}
    ]


def test_a_second_stop_publishes_no_second_opt_out(runtime, uow):
    service.receive_sms(runtime, "SM1", PHONE, "STOP")
    service.receive_sms(runtime, "SM2", PHONE, "STOP")
    assert len(uow.emitted("customer.opted_out")) == 1


def test_start_opts_the_number_back_in(runtime, uow):
    opt_out(uow, "sms", PHONE)
    assert service.receive_sms(runtime, "SM1", PHONE, "START") is SmsReplyKind.OPT_IN
    assert opt_outs(uow) == set() and uow.emitted("sms.received") == []
    assert uow.emitted("customer.opted_in") == [
        {"channel": "sms", "address": PHONE, "customer_id": None, "reason": "sms_start"}
    ]


def test_help_is_recorded_and_answers_nothing(runtime, uow):
    scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENT)
    assert service.receive_sms(runtime, "SM1", PHONE, "help") is SmsReplyKind.HELP
    assert uow.events == [] and "SM1" in uow.inbound_sms.rows


def test_answer_emits_sms_received_for_the_latest_invitation_to_that_number(runtime, uow, clock):
    scheduled_delivery(
        uow, "d-old", START - timedelta(days=2), "sms", PHONE, "inv-old", DeliveryState.DELIVERED
    )
    scheduled_delivery(uow, "d-new", START - timedelta(days=1), "sms", PHONE, "inv-new", DeliveryState.SENT)
    scheduled_delivery(uow, "d-other", START, "sms", "+15555550199", "inv-other", DeliveryState.SENT)

    assert service.receive_sms(runtime, "SM1", PHONE, "9 great") is SmsReplyKind.ANSWER

    assert uow.emitted("sms.received") == [
        {
            "message_sid": "SM1",
            "invitation_id": "inv-new",
            "body": "9 great",
            "received_at": START.isoformat(),
        }
    ]
    assert uow.inbound_sms.rows["SM1"].delivery_id == "d-new"


@pytest.mark.parametrize(
    ("sent_ago", "status"),
    [
        (timedelta(days=15), DeliveryState.DELIVERED),  # outside the reply window
        (timedelta(hours=1), DeliveryState.SCHEDULED),  # never reached the phone
        (timedelta(hours=1), DeliveryState.FAILED),
    ],
)
def test_answer_to_no_invitation_that_reached_the_number_lately_emits_nothing(runtime, uow, sent_ago, status):
    scheduled_delivery(uow, due=START - sent_ago, channel="sms", address=PHONE, status=status)

    assert service.receive_sms(runtime, "SM1", PHONE, "9") is SmsReplyKind.ANSWER

    assert uow.events == [] and uow.inbound_sms.rows["SM1"].delivery_id is None


def test_answer_arriving_before_the_send_was_recorded_as_sent_still_answers_it(runtime, uow):
    scheduled_delivery(uow, channel="sms", address=PHONE, invitation_id="inv-1", status=DeliveryState.SENDING)

    service.receive_sms(runtime, "SM1", PHONE, "10 lovely")

    assert [event["invitation_id"] for event in uow.emitted("sms.received")] == ["inv-1"]


def test_message_received_twice_is_acted_on_once(runtime, uow):
    scheduled_delivery(uow, channel="sms", address=PHONE, status=DeliveryState.SENT)

    assert service.receive_sms(runtime, "SM1", PHONE, "9") is SmsReplyKind.ANSWER
    assert service.receive_sms(runtime, "SM1", PHONE, "9") is None  # Twilio retried

    assert len(uow.emitted("sms.received")) == 1


# --- deliveries_for ---------------------------------------------------------------------------------------


def test_deliveries_of_an_invitation_are_listed_oldest_first(runtime, uow):
    scheduled_delivery(uow, "d-2", due=START, invitation_id="inv-1")
    scheduled_delivery(uow, "d-1", due=START - timedelta(minutes=1), invitation_id="inv-1")
    scheduled_delivery(uow, "d-3", due=START, invitation_id="inv-2")

    assert [delivery.id for delivery in service.deliveries_for(runtime, "inv-1")] == ["d-1", "d-2"]
    assert service.deliveries_for(runtime, "inv-9") == []


# --- Referral and review requests, close-the-loop messages ------------------------------------------------

REFERRAL_URL = "https://shop.example.com/r/Xk3p9QaZ"


def customer(
    preferred: str = "email", email: str | None = "ada@example.com", phone: str | None = PHONE
) -> dict[str, Any]:
    return {
        "customer_id": "c-1",
        "name": "Ada Lovelace",
        "email": email,
        "phone": phone,
        "preferred_channel": preferred,
    }


def referral_requested(referral_id: str = "ref-1", locale: str = "en", **contact: Any) -> dict[str, Any]:
    return new_event(
        "referral.requested",
        {
            "referral_id": referral_id,
            "customer": customer(**contact),
            "referral_url": REFERRAL_URL,
            "locale": locale,
        },
    )


def review_requested(score: int = 9, **contact: Any) -> dict[str, Any]:
    return new_event(
        "review.requested",
        {
            "review_request_id": "rev-1",
            "customer": customer(**contact),
            "review_url": "https://g.page/r/shop/review",
            "score": score,
            "locale": "en",
        },
    )


def followup_resolved(message: str | None = "We refunded your order.", **contact: Any) -> dict[str, Any]:
    return new_event(
        "followup.resolved",
        {
            "task_id": "task-1",
            "response_id": "resp-1",
            "invitation_id": "inv-1",
            "customer": customer(**contact),
            "locale": "en",
            "resolution_code": "contacted_resolved",
            "close_loop_message": message,
            "follow_up_survey_after_days": 14,
        },
    )


def test_referral_request_is_emailed_with_the_customers_link_and_a_one_click_unsubscribe(
    runtime, uow, email, sms
):
    service.schedule_referral_request(runtime, referral_requested())

    delivery = only_delivery(uow)
    assert (delivery.kind, delivery.source_id, delivery.invitation_id) == ("referral", "ref-1", None)
    assert (delivery.status, delivery.channel, delivery.address) == (
        DeliveryState.SENT,
        "email",
        "ada@example.com",
    )
    [message] = email.messages
    assert (message.to_email, message.subject, message.category) == (
        "ada@example.com",
        "Thank you for recommending us",
        "closeloop-referral",
    )
    assert message.unsubscribe_url == f"http://testserver/unsubscribe/{delivery.id}"
    assert f'href="{REFERRAL_URL}"' in message.html and f"Share your link: {REFERRAL_URL}" in message.text
    assert (
        f'href="{message.unsubscribe_url}"' in message.html
        and "Unsubscribe from these messages" in message.html
    )
    assert "Hello Ada," in message.html and sms.messages == []


def test_referral_request_by_sms_is_one_segment_with_the_link(runtime, uow, email, sms):
    service.schedule_referral_request(runtime, referral_requested(preferred="sms"))

    [message] = sms.messages
    assert message.to == PHONE and REFERRAL_URL in message.body and sms_segments(message.body) == 1
    assert (
        message.status_callback_url
        == f"http://testserver/webhooks/twilio/status?delivery_id={only_delivery(uow).id}"
    )
    assert email.messages == []


def test_turkish_referral_request_is_written_in_turkish(runtime, uow, email):
    service.schedule_referral_request(runtime, referral_requested(locale="tr-TR"))

    [message] = email.messages
    assert only_delivery(uow).locale == "tr"
    assert 'lang="tr"' in message.html and "Bağlantınızı paylaşın" in message.html
    assert "Bu mesajların aboneliğinden çık" in message.html


def test_referral_request_falls_back_to_sms_when_the_email_address_opted_out(runtime, uow, email, sms):
    opt_out(uow, "email", "ada@example.com")
    service.schedule_referral_request(runtime, referral_requested(preferred="email"))

    assert only_delivery(uow).channel == "sms" and len(sms.messages) == 1 and email.messages == []


@pytest.mark.parametrize(
    ("request_event", "kind"),
    [
        (lambda: referral_requested(), "referral"),
        (lambda: review_requested(), "review"),
        (lambda: followup_resolved(), "close_loop"),
    ],
)
def test_customer_opted_out_everywhere_gets_no_message_and_the_suppression_is_visible(
    runtime, uow, email, sms, request_event, kind
):
    opt_out(uow, "email", "ada@example.com")
    opt_out(uow, "sms", PHONE)
    handler = {
        "referral": service.schedule_referral_request,
        "review": service.schedule_review_request,
        "close_loop": service.schedule_close_loop_message,
    }[kind]
    handler(runtime, request_event())

    assert email.messages == [] and sms.messages == []
    [delivery] = service.deliveries_requested_by(runtime, only_delivery(uow).source_id)
    assert (delivery.kind, delivery.status, delivery.attempts) == (kind, DeliveryState.SUPPRESSED, 0)
    assert "opted out" in delivery.last_error and delivery.content == {}


def test_customer_without_any_address_is_suppressed_and_told_apart_from_an_opt_out(runtime, uow, email, sms):
    service.schedule_referral_request(runtime, referral_requested(email=None, phone=None))

    delivery = only_delivery(uow)
    assert (
        delivery.status == DeliveryState.SUPPRESSED
        and "no email address or phone number" in delivery.last_error
    )
    assert email.messages == [] and sms.messages == []


def test_redelivered_referral_request_sends_once(runtime, uow, email):
    envelope = referral_requested()
    service.schedule_referral_request(runtime, envelope)
    service.schedule_referral_request(runtime, envelope)

    assert len(uow.deliveries.rows) == 1 and len(email.messages) == 1


def test_referral_requested_again_under_a_new_event_id_sends_nothing_more(runtime, uow, email):
    service.schedule_referral_request(runtime, referral_requested("ref-1"))
    service.schedule_referral_request(runtime, referral_requested("ref-1"))  # the producer retried
    service.schedule_referral_request(runtime, referral_requested("ref-2"))

    assert sorted(d.source_id for d in uow.deliveries.rows.values()) == ["ref-1", "ref-2"]
    assert len(email.messages) == 2


def test_one_source_id_may_ask_for_messages_of_different_kinds(runtime, uow, email):
    service.schedule_invitation(runtime, invitation_requested("shared-id"))
    service.schedule_referral_request(runtime, referral_requested("shared-id"))

    assert sorted(d.kind for d in service.deliveries_requested_by(runtime, "shared-id")) == [
        "invitation",
        "referral",
    ]
    assert [d.kind for d in service.deliveries_for(runtime, "shared-id")] == ["invitation"]


def test_referral_request_is_sent_only_once_its_delivery_is_committed(runtime, uow, email):
    uow.fail_next_commit_with_conflict()
    with pytest.raises(Conflict):
        service.schedule_referral_request(runtime, referral_requested())
    assert email.messages == [] and uow.deliveries.rows == {}


@pytest.mark.parametrize(
    ("score", "thanks"),
    [
        (10, "Thank you for your great feedback."),
        (8, "Thank you for your feedback."),
        (3, "Thank you for your honest feedback."),
    ],
)
def test_review_request_goes_out_for_every_score_worded_for_it(runtime, uow, email, score, thanks):
    service.schedule_review_request(runtime, review_requested(score))

    delivery = only_delivery(uow)
    assert (delivery.kind, delivery.source_id, delivery.status) == ("review", "rev-1", DeliveryState.SENT)
    [message] = email.messages
    assert thanks in message.html and 'href="https://g.page/r/shop/review"' in message.html
    assert message.category == "closeloop-review"


def test_resolved_task_with_a_closing_message_sends_it_to_the_customer(runtime, uow, email, sms):
    service.schedule_close_loop_message(runtime, followup_resolved("We refunded your order.\n\nSorry again."))

    delivery = only_delivery(uow)
    assert (delivery.kind, delivery.source_id, delivery.invitation_id) == ("close_loop", "task-1", None)
    [message] = email.messages
    assert message.subject == "About your feedback"
    assert "We refunded your order." in message.html and "Sorry again." in message.html
    assert message.text.startswith("Hello Ada,\n\nWe refunded your order.\n\nSorry again.")
    assert message.unsubscribe_url and sms.messages == []


def test_closing_message_is_escaped_in_the_email(runtime, email):
    service.schedule_close_loop_message(runtime, followup_resolved('<a href="http://evil.test">Click</a>'))
    [message] = email.messages
    assert '<a href="http://evil.test">' not in message.html and "&lt;a href=" in message.html


def test_closing_message_by_sms_is_sent_as_written(runtime, sms):
    service.schedule_close_loop_message(runtime, followup_resolved("We refunded you.", preferred="sms"))
    [message] = sms.messages
    assert message.body == "We refunded you. Reply STOP to opt out."


@pytest.mark.parametrize("message", [None, "   \n "])
def test_resolved_task_without_a_closing_message_sends_nothing(runtime, uow, email, sms, message):
    envelope = followup_resolved(message)
    service.schedule_close_loop_message(runtime, envelope)

    assert uow.deliveries.rows == {} and email.messages == [] and sms.messages == []
    assert (envelope["id"], "schedule_close_loop_message") in uow.consumed


def test_reply_to_a_referral_sms_is_not_taken_as_a_comment_on_the_survey(runtime, uow, clock):
    scheduled_delivery(
        uow, "d-inv", START - timedelta(days=2), "sms", PHONE, "inv-1", DeliveryState.DELIVERED
    )
    service.schedule_referral_request(runtime, referral_requested(preferred="sms"))
    referral = next(d for d in uow.deliveries.rows.values() if d.kind == "referral")

    assert service.receive_sms(runtime, "SM1", PHONE, "Sure, will do!") is SmsReplyKind.ANSWER

    assert uow.emitted("sms.received") == []
    assert uow.inbound_sms.rows["SM1"].delivery_id == referral.id


def test_reply_after_a_later_invitation_answers_that_invitation_again(runtime, uow, clock):
    service.schedule_referral_request(runtime, referral_requested(preferred="sms"))
    clock.advance(days=1)
    service.schedule_invitation(runtime, invitation_requested("inv-2", "sms", None, PHONE))

    service.receive_sms(runtime, "SM1", PHONE, "8")

    assert [event["invitation_id"] for event in uow.emitted("sms.received")] == ["inv-2"]


# --- reprompt.requested: survey asks once more for an unreadable SMS answer ------------------------------


def reprompt_requested(invitation_id: str = "inv-1", text: str = "Please reply with a number from 0 to 10."):
    return new_event(
        "reprompt.requested",
        {
            "reprompt_id": "rp-1",
            "invitation_id": invitation_id,
            "customer": {
                "customer_id": "c-1",
                "name": "Ada Lovelace",
                "email": None,
                "phone": PHONE,
                "timezone": None,
                "preferred_channel": "sms",
            },
            "locale": "en",
            "text": text,
        },
    )


def test_reprompt_is_sent_by_sms_as_survey_wrote_it(runtime, uow, sms, email):
    service.schedule_reprompt(runtime, reprompt_requested())

    [message] = sms.messages
    assert message.body == "Please reply with a number from 0 to 10." and email.messages == []
    [delivery] = uow.deliveries.rows.values()
    assert (delivery.kind, delivery.invitation_id) == ("reprompt", "inv-1")


def test_reply_to_the_reprompt_answers_its_invitation(runtime, uow, sms, clock):
    service.schedule_invitation(runtime, invitation_requested("inv-1", "sms", None, PHONE))
    service.receive_sms(runtime, "SM1", PHONE, "eleven")
    clock.advance(minutes=1)
    service.schedule_reprompt(runtime, reprompt_requested())

    service.receive_sms(runtime, "SM2", PHONE, "9")

    assert [event["invitation_id"] for event in uow.emitted("sms.received")] == ["inv-1", "inv-1"]
    assert uow.inbound_sms.rows["SM2"].delivery_id == next(
        d.id for d in uow.deliveries.rows.values() if d.kind == "reprompt"
    )
