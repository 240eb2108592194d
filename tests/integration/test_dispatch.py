"""The dispatch service on PostgreSQL: deliveries, opt-outs, provider webhooks and inbound SMS."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from services.dispatch import service
from services.dispatch.app import create_app
from services.dispatch.models import Delivery, OptOut, SandboxMessage, outbox
from services.dispatch.providers import PermanentDeliveryError, SendReceipt, TransientDeliveryError
from services.dispatch.unit_of_work import SqlDeliveries
from shared.clock import utcnow
from shared.events import new_event
from tests.conftest import delivery_row, make_settings, migrated_service, staff_client

TWILIO_TOKEN = "twilio-test-token"


def invitation_requested(invitation_id="inv-1", preferred="email", email="ada@example.com", phone=None):
    return new_event(
        "invitation.requested",
        {
            "invitation_id": invitation_id,
            "touchpoint": "purchase",
            "locale": "en",
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


def deliveries(runtime):
    with runtime.database.transaction() as session:
        return session.scalars(select(Delivery).order_by(Delivery.created_at)).all()


def opt_outs(runtime):
    with runtime.database.transaction() as session:
        return {(row.channel, row.address) for row in session.scalars(select(OptOut))}


def outbox_events(runtime):
    with runtime.database.transaction() as session:
        return [row.payload for row in session.execute(select(outbox.c.payload))]


def twilio_post(client, path, form, token=TWILIO_TOKEN):
    signature = RequestValidator(token).compute_signature(f"http://testserver{path}", form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def test_email_invitation_is_sent_once_with_eleven_score_links(dispatch):
    envelope = invitation_requested()
    service.schedule_invitation(dispatch, envelope)
    service.schedule_invitation(dispatch, envelope)  # dramatiq redelivers: nothing twice

    [delivery] = deliveries(dispatch)
    assert delivery.status == "sent" and delivery.channel == "email" and delivery.attempts == 1
    with dispatch.database.transaction() as session:
        [message] = session.scalars(select(SandboxMessage)).all()
    assert message.to == "ada@example.com"
    for score in range(11):
        assert f'href="http://survey.test/s/token-inv-1?score={score}"' in message.html
    assert "http://survey.test/s/token-inv-1?score=10" in message.text


def test_an_opt_out_committed_before_the_first_attempt_stops_it(dispatch, monkeypatch):
    # Committed by another transaction after the scheduling one chose the channel, before it claimed the first
    # attempt: the claim's own look for an opt-out sees it.
    add_new_to_send = SqlDeliveries.add_new_to_send

    def opted_out_meanwhile(deliveries, delivery, opt_out_address):
        with dispatch.database.transaction() as session:
            session.add(
                OptOut(channel="email", address="ada@example.com", source="test", created_at=utcnow())
            )
        return add_new_to_send(deliveries, delivery, opt_out_address)

    monkeypatch.setattr(SqlDeliveries, "add_new_to_send", opted_out_meanwhile)
    service.schedule_invitation(dispatch, invitation_requested())

    [delivery] = deliveries(dispatch)
    assert delivery.status == "suppressed" and delivery.attempts == 0 and delivery.call_started_at is None
    with dispatch.database.transaction() as session:
        assert session.scalars(select(SandboxMessage)).all() == []


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_the_claims_insert_says_whether_the_address_opted_out_and_adds_nothing_twice(database, request):
    # The statement behind the test above, on both databases (SQLite's RETURNING holds the subquery too).
    def delivery(delivery_id, source_id, address):
        sending = {"status": "sending", "attempts": 1}
        return delivery_row(id=delivery_id, source_id=source_id, address=address, **sending)

    with migrated_service("dispatch", make_settings(request.getfixturevalue(database))) as dispatch:
        with dispatch.database.transaction() as session:
            opt_out = OptOut(channel="email", address="ada@example.com", source="test", created_at=utcnow())
            session.add(opt_out)
        with dispatch.unit_of_work() as uow:
            to_send = uow.deliveries.add_new_to_send
            assert to_send(delivery("d-1", "inv-1", "Ada@Example.com"), "ada@example.com") == (True, True)
            assert to_send(delivery("d-2", "inv-2", "bob@example.com"), "bob@example.com") == (True, False)
            assert to_send(delivery("d-3", "inv-1", "ada@example.com"), "ada@example.com") == (False, False)
        assert [d.id for d in deliveries(dispatch)] == ["d-1", "d-2"]


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_a_claimed_delivery_is_saved_with_the_one_that_follows_it_only_while_still_as_claimed(
    database, request
):
    # The outcome's statement (one on PostgreSQL, two on SQLite): the sent delivery and its reminder.
    started = utcnow()

    def claimed(delivery_id):
        return delivery_row(
            id=delivery_id,
            source_id=f"inv-{delivery_id}",
            status="sending",
            attempts=1,
            call_started_at=started,
        )

    def sent(delivery):
        delivery.status, delivery.provider_message_id = "sent", f"msg-{delivery.id}"

    def reminder_of(delivery):
        return delivery_row(
            id=f"r-{delivery.id}", source_id=delivery.source_id, kind="reminder", status="scheduled"
        )

    with migrated_service("dispatch", make_settings(request.getfixturevalue(database))) as dispatch:
        rows = {delivery_id: claimed(delivery_id) for delivery_id in ("d-1", "d-2", "d-3")}
        with dispatch.unit_of_work() as uow:
            for row in rows.values():
                uow.deliveries.add_new(row)
            planned = reminder_of(rows["d-3"])
            planned.id = "r-d-3-planned"
            uow.deliveries.add_new(planned)
        with dispatch.database.transaction() as session:
            session.get(Delivery, "d-2").status = "delivered"  # a provider report came before its answer
        with dispatch.unit_of_work() as uow:
            assert uow.deliveries.save_claimed(rows["d-1"], sent, then_add=reminder_of) is True
            assert uow.deliveries.save_claimed(rows["d-2"], sent, then_add=reminder_of) is False
            # Its reminder planned already: the delivery is saved, the reminder not added twice.
            assert uow.deliveries.save_claimed(rows["d-3"], sent, then_add=reminder_of) is True

        stored = {(d.id, d.status, d.provider_message_id) for d in deliveries(dispatch)}
        assert stored == {
            ("d-1", "sent", "msg-d-1"),
            ("d-2", "delivered", None),
            ("d-3", "sent", "msg-d-3"),
            ("r-d-1", "scheduled", None),
            ("r-d-3-planned", "scheduled", None),
        }


def test_a_report_that_came_before_the_providers_answer_is_kept(dispatch, monkeypatch):
    # The outcome is stored without reading the delivery again only while it is still as it was claimed.
    send = service._send

    def delivered_meanwhile(runtime, delivery):
        receipt = send(runtime, delivery)
        with runtime.database.transaction() as session:
            session.get(Delivery, delivery.id).status = "delivered"
        return receipt

    monkeypatch.setattr(service, "_send", delivered_meanwhile)
    service.schedule_invitation(dispatch, invitation_requested())

    [delivery] = deliveries(dispatch)
    assert delivery.status == "delivered" and delivery.provider_message_id is not None


def test_unsigned_inbound_sms_is_refused(dispatch, dispatch_client):
    form = {"MessageSid": "SM1", "From": "+15555550100", "Body": "9"}
    response = dispatch_client.post("/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": "bad"})
    assert response.status_code == 401
    assert outbox_events(dispatch) == []


def test_sms_reply_answers_the_latest_invitation_once(dispatch, dispatch_client):
    service.schedule_invitation(dispatch, invitation_requested("inv-sms", "sms", None, "+15555550100"))
    form = {"MessageSid": "SM" + "a" * 32, "From": "+15555550100", "Body": "9 great"}

    assert twilio_post(dispatch_client, "/webhooks/twilio/sms", form).status_code == 200
    assert twilio_post(dispatch_client, "/webhooks/twilio/sms", form).status_code == 200  # Twilio retried

    [event] = outbox_events(dispatch)
    assert event["type"] == "sms.received"
    assert event["data"]["invitation_id"] == "inv-sms" and event["data"]["body"] == "9 great"


def test_stop_opts_out_and_the_next_invitation_falls_back_to_email(dispatch, dispatch_client):
    service.schedule_invitation(
        dispatch, invitation_requested("inv-1", "sms", "ada@example.com", "+15555550100")
    )
    stop = {"MessageSid": "SM" + "b" * 32, "From": "+15555550100", "Body": "STOP"}
    twilio_post(dispatch_client, "/webhooks/twilio/sms", stop)

    assert opt_outs(dispatch) == {("sms", "+15555550100")}
    # An opt-out is not an answer; survey hears of it, to skip a customer opted out of every channel.
    assert [event["type"] for event in outbox_events(dispatch)] == ["customer.opted_out"]
    service.schedule_invitation(
        dispatch, invitation_requested("inv-2", "sms", "ada@example.com", "+15555550100")
    )
    assert [(d.invitation_id, d.channel) for d in deliveries(dispatch)] == [
        ("inv-1", "sms"),
        ("inv-2", "email"),
    ]


def test_customer_opted_out_everywhere_gets_nothing(dispatch):
    with dispatch.database.transaction() as session:
        session.add(OptOut(channel="email", address="ada@example.com", source="test", created_at=utcnow()))
    service.schedule_invitation(dispatch, invitation_requested())
    [delivery] = deliveries(dispatch)
    assert delivery.status == "suppressed" and delivery.attempts == 0


class FailingTransport:
    def __init__(self, error):
        self.error = error
        self.calls = 0

    def send_email(self, email):
        self.calls += 1
        raise self.error

    send_sms = send_email


def test_transient_failure_is_retried_later_and_counted(dispatch):
    transport = FailingTransport(TransientDeliveryError("429 too many requests", "429", retry_after=120))
    runtime = replace(dispatch, email=transport)
    service.schedule_invitation(runtime, invitation_requested())

    [delivery] = deliveries(runtime)
    assert delivery.status == "scheduled" and delivery.attempts == 1
    assert (delivery.next_attempt_at - delivery.updated_at).total_seconds() == pytest.approx(120, abs=1)
    assert service.send_due_deliveries(runtime) == 0  # not due yet
    assert transport.calls == 1


def test_recipient_who_replied_stop_to_twilio_is_recorded_as_opted_out(dispatch):
    error = PermanentDeliveryError("Attempt to send to unsubscribed recipient", "21610", opted_out=True)
    runtime = replace(dispatch, sms=FailingTransport(error))
    service.schedule_invitation(runtime, invitation_requested("inv-1", "sms", None, "+15555550100"))

    [delivery] = deliveries(runtime)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert opt_outs(runtime) == {("sms", "+15555550100")}


def test_due_retry_is_sent_by_the_scheduler(dispatch):
    class FlakyTransport:
        calls = 0

        def send_email(self, email):
            self.calls += 1
            if self.calls == 1:
                raise TransientDeliveryError("503", "503")
            return SendReceipt("test", "msg-1")

    runtime = replace(dispatch, email=FlakyTransport())
    service.schedule_invitation(runtime, invitation_requested())
    with runtime.database.transaction() as session:
        session.scalars(select(Delivery)).one().next_attempt_at = utcnow()

    assert service.send_due_deliveries(runtime) == 1
    [delivery] = deliveries(runtime)
    assert delivery.status == "sent" and delivery.attempts == 2 and delivery.provider_message_id == "msg-1"


@pytest.fixture
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def sendgrid_client(dispatch, sendgrid_key):
    der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = replace(dispatch.settings, sendgrid_webhook_public_key=base64.b64encode(der).decode())
    return staff_client(create_app(replace(dispatch, settings=settings)), dispatch.identity)


def post_sendgrid_events(client, key, events):
    body = json.dumps(events).encode()
    timestamp = str(int(utcnow().timestamp()))
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/sendgrid/events", data=body, headers=headers)


def sendgrid_event(kind, delivery_id, event_id):
    return {
        "event": kind,
        "sg_event_id": event_id,
        "timestamp": int(utcnow().timestamp()),
        "delivery_id": delivery_id,
    }


def test_late_delivered_never_overwrites_a_bounce(dispatch, sendgrid_client, sendgrid_key):
    service.schedule_invitation(dispatch, invitation_requested())
    [delivery] = deliveries(dispatch)

    bounce = sendgrid_event("bounce", delivery.id, "ev-1")
    assert post_sendgrid_events(sendgrid_client, sendgrid_key, [bounce]).status_code == 204
    late = sendgrid_event("delivered", delivery.id, "ev-2")
    assert post_sendgrid_events(sendgrid_client, sendgrid_key, [late, bounce]).status_code == 204

    [delivery] = deliveries(dispatch)
    assert delivery.status == "bounced"


def test_sendgrid_unsubscribe_event_records_an_opt_out(dispatch, sendgrid_client, sendgrid_key):
    service.schedule_invitation(dispatch, invitation_requested(email="Ada@Example.com"))
    [delivery] = deliveries(dispatch)
    post_sendgrid_events(sendgrid_client, sendgrid_key, [sendgrid_event("unsubscribe", delivery.id, "ev-9")])
    assert opt_outs(dispatch) == {("email", "ada@example.com")}


def test_unsigned_sendgrid_events_are_refused(dispatch, sendgrid_client):
    response = sendgrid_client.post(
        "/webhooks/sendgrid/events", json=[sendgrid_event("delivered", "x", "ev")]
    )
    assert response.status_code == 401


def test_unsubscribe_link_shows_a_page_and_only_a_post_unsubscribes(dispatch, dispatch_client):
    service.schedule_invitation(dispatch, invitation_requested())
    [delivery] = deliveries(dispatch)

    page = dispatch_client.get(f"/unsubscribe/{delivery.id}")
    assert page.status_code == 200 and opt_outs(dispatch) == set()

    one_click = dispatch_client.post(f"/unsubscribe/{delivery.id}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 204
    assert opt_outs(dispatch) == {("email", "ada@example.com")}


def test_sandbox_reply_goes_through_the_inbound_sms_path(dispatch, dispatch_client):
    service.schedule_invitation(dispatch, invitation_requested("inv-sms", "sms", None, "+15555550100"))
    [delivery] = deliveries(dispatch)

    response = dispatch_client.post(f"/sandbox/sms/{delivery.id}/reply", data={"body": "4 slow"})

    assert response.status_code == 303
    [event] = outbox_events(dispatch)
    assert event["data"]["invitation_id"] == "inv-sms" and event["data"]["body"] == "4 slow"
    assert "4 slow" in dispatch_client.get("/sandbox").get_data(as_text=True)


def test_delivery_whose_worker_died_mid_attempt_is_scheduled_again(dispatch):
    service.schedule_invitation(dispatch, invitation_requested())
    with dispatch.database.transaction() as session:
        delivery = session.scalars(select(Delivery)).one()
        delivery.status, delivery.attempts = "sending", 1

    assert service.recover_stalled_deliveries(dispatch) == 0  # it may still be talking to the provider
    later = utcnow() + timedelta(minutes=16)
    assert service.recover_stalled_deliveries(dispatch, now=later) == 1

    [delivery] = deliveries(dispatch)
    assert delivery.status == "scheduled" and delivery.attempts == 1
    assert delivery.next_attempt_at == later + timedelta(seconds=30)


def test_turkish_email_has_a_turkish_footer(dispatch):
    envelope = invitation_requested()
    envelope["data"]["locale"] = "tr"
    service.schedule_invitation(dispatch, envelope)
    with dispatch.database.transaction() as session:
        [message] = session.scalars(select(SandboxMessage)).all()
    assert 'lang="tr"' in message.html and "aboneliğinden çık" in message.html


def test_mail_sendgrid_drops_for_an_unsubscribed_address_records_an_opt_out(
    dispatch, sendgrid_client, sendgrid_key
):
    service.schedule_invitation(dispatch, invitation_requested())
    [delivery] = deliveries(dispatch)
    dropped = {**sendgrid_event("dropped", delivery.id, "ev-d"), "reason": "Unsubscribed Address"}
    post_sendgrid_events(sendgrid_client, sendgrid_key, [dropped])

    assert deliveries(dispatch)[0].status == "dropped"
    assert opt_outs(dispatch) == {("email", "ada@example.com")}


def test_mail_dropped_for_another_reason_is_not_an_opt_out(dispatch, sendgrid_client, sendgrid_key):
    service.schedule_invitation(dispatch, invitation_requested())
    [delivery] = deliveries(dispatch)
    dropped = {**sendgrid_event("dropped", delivery.id, "ev-d"), "reason": "Invalid SMTPAPI header"}
    post_sendgrid_events(sendgrid_client, sendgrid_key, [dropped])

    assert deliveries(dispatch)[0].status == "dropped" and opt_outs(dispatch) == set()


def test_an_opt_out_added_in_a_transaction_is_seen_by_the_same_transaction(dispatch):
    with dispatch.unit_of_work() as uow:
        assert not uow.opt_outs.has("email", "ada@example.com")
        opt_out = OptOut(channel="email", address="ada@example.com", source="test", created_at=utcnow())
        uow.opt_outs.add(opt_out)
        # Not yet flushed: the look-up writes it first, so a second opt-out of the address is not added.
        assert uow.opt_outs.has("email", "ada@example.com")
    with dispatch.unit_of_work() as uow:
        assert uow.opt_outs.has("email", "ada@example.com")
        assert not uow.opt_outs.has("sms", "ada@example.com")
