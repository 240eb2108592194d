"""Referral and review requests and close-the-loop messages on PostgreSQL: sent once, never to an opt-out."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from services.dispatch import models, service
from services.dispatch.models import Delivery, OptOut, SandboxMessage
from shared.clock import utcnow
from shared.db import create_database_engine
from shared.events import new_event
from shared.migrations import alembic_config, upgrade
from shared.unit_of_work import Conflict
from tests.conftest import delivery_row

REFERRAL_URL = "https://shop.example.com/r/Xk3p9QaZ"


def referral_requested(referral_id="ref-1", preferred="email", locale="en"):
    return new_event(
        "referral.requested",
        {
            "referral_id": referral_id,
            "customer": {
                "customer_id": "c-1",
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "phone": "+15555550100",
                "preferred_channel": preferred,
            },
            "referral_url": REFERRAL_URL,
            "locale": locale,
        },
    )


def followup_resolved(message):
    return new_event(
        "followup.resolved",
        {
            "task_id": "task-1",
            "response_id": "resp-1",
            "invitation_id": "inv-1",
            "customer": {"customer_id": "c-1", "email": "ada@example.com", "preferred_channel": "email"},
            "locale": "tr",
            "resolution_code": "contacted_resolved",
            "close_loop_message": message,
        },
    )


def deliveries(runtime):
    with runtime.database.transaction() as session:
        return session.scalars(select(Delivery).order_by(Delivery.created_at)).all()


def sandbox_messages(runtime):
    with runtime.database.transaction() as session:
        return session.scalars(select(SandboxMessage).order_by(SandboxMessage.id)).all()


def test_referral_request_is_sent_once_however_often_it_is_requested(dispatch):
    envelope = referral_requested()
    service.schedule_referral_request(dispatch, envelope)
    service.schedule_referral_request(dispatch, envelope)  # dramatiq redelivers
    service.schedule_referral_request(dispatch, referral_requested())  # the producer asked again

    [delivery] = deliveries(dispatch)
    assert (delivery.kind, delivery.source_id, delivery.invitation_id) == ("referral", "ref-1", None)
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    [message] = sandbox_messages(dispatch)
    assert message.to == "ada@example.com" and f'href="{REFERRAL_URL}"' in message.html
    assert f"/unsubscribe/{delivery.id}" in message.html


def test_one_delivery_per_source_and_kind_is_kept_by_the_database(dispatch):
    def delivery(delivery_id, kind):
        return delivery_row(id=delivery_id, source_id="same-source", kind=kind)

    with dispatch.unit_of_work() as uow:
        uow.deliveries.add(delivery("d-1", "referral"))
        uow.deliveries.add(delivery("d-2", "review"))  # another kind from the same source is another message
    with pytest.raises(Conflict), dispatch.unit_of_work() as uow:
        uow.deliveries.add(delivery("d-3", "referral"))
    assert [d.id for d in deliveries(dispatch)] == ["d-1", "d-2"]


def test_opted_out_customer_gets_no_referral_request_and_the_api_shows_why(dispatch, dispatch_client):
    with dispatch.database.transaction() as session:
        session.add(OptOut(channel="email", address="ada@example.com", source="test", created_at=utcnow()))
        session.add(OptOut(channel="sms", address="+15555550100", source="test", created_at=utcnow()))
    service.schedule_referral_request(dispatch, referral_requested())

    response = dispatch_client.get("/v1/deliveries", query_string={"source_id": "ref-1"})
    assert response.status_code == 200
    [shown] = response.get_json()
    assert (shown["kind"], shown["status"], shown["source_id"]) == ("referral", "suppressed", "ref-1")
    assert "opted out" in shown["last_error"]
    assert sandbox_messages(dispatch) == []


@pytest.mark.parametrize("query", [{}, {"invitation_id": "inv-1", "source_id": "ref-1"}])
def test_deliveries_are_asked_for_by_invitation_or_by_source(dispatch_client, query):
    response = dispatch_client.get("/v1/deliveries", query_string=query)
    assert response.status_code == 422 and "invitation_id" in response.get_json()["errors"]


def test_closing_message_is_sent_in_the_customers_language(dispatch):
    service.schedule_close_loop_message(dispatch, followup_resolved("Siparişinizi iade ettik."))

    [delivery] = deliveries(dispatch)
    assert (delivery.kind, delivery.source_id, delivery.locale) == ("close_loop", "task-1", "tr")
    [message] = sandbox_messages(dispatch)
    assert message.subject == "Geri bildiriminiz hakkında" and "Siparişinizi iade ettik." in message.text


def test_sms_reply_to_a_referral_request_answers_no_survey(dispatch):
    service.schedule_referral_request(dispatch, referral_requested(preferred="sms"))

    service.receive_sms(dispatch, "SM" + "c" * 32, "+15555550100", "Thanks!")

    with dispatch.database.transaction() as session:
        assert session.execute(select(models.outbox.c.event_id)).all() == []
        [reply] = session.scalars(select(models.InboundSms)).all()
    assert reply.delivery_id == deliveries(dispatch)[0].id


def _insert_delivery(connection, **values):
    row = {
        "invitation_id": "inv-1",
        "kind": "invitation",
        "channel": "email",
        "address": "ada@example.com",
        "locale": "en",
        "content": "{}",
        "status": "sent",
        "attempts": 1,
        "created_at": utcnow(),
        "updated_at": utcnow(),
        **values,
    }
    names = ", ".join(row)
    connection.execute(
        text(f"INSERT INTO dispatch_deliveries ({names}) VALUES ({', '.join(':' + n for n in row)})"), row
    )


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_invitation_deliveries_made_before_the_migration_keep_their_place_and_their_unique_key(
    database, request
):
    url = request.getfixturevalue(database)
    command.upgrade(alembic_config(url, models.MIGRATIONS, models.VERSION_TABLE), "dispatch_0002")
    engine = create_database_engine(url)
    try:
        with engine.begin() as connection:
            _insert_delivery(connection, id="d-old")
        upgrade(url, models.MIGRATIONS, models.VERSION_TABLE)
        with engine.begin() as connection:
            query = text("SELECT source_id, invitation_id, kind FROM dispatch_deliveries")
            assert tuple(connection.execute(query).one()) == ("inv-1", "inv-1", "invitation")
        # The same invitation delivered twice is refused as before, now as its source.
        with pytest.raises(IntegrityError), engine.begin() as connection:
            _insert_delivery(connection, id="d-new", source_id="inv-1", status="scheduled")
    finally:
        engine.dispose()
