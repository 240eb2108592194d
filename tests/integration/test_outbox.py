"""The outbox on a real database: published until acknowledged, given up after its last try, pruned."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, insert, select

from closeloop.system import build_system
from services.dispatch import service as dispatch_service
from shared.clock import utcnow
from shared.db import Database
from shared.events import new_event
from shared.outbox import Outbox, OutboxPolicy, consumed_events_table, outbox_table, record_event
from shared.unit_of_work import SqlUnitOfWork
from tests.conftest import crm_event, make_settings, signed_request, wait_for


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def outbox(request):
    database = Database(request.getfixturevalue(request.param))
    tables = MetaData()
    policy = OutboxPolicy(redeliver_after=timedelta(seconds=60), max_publishes=3, retention=timedelta(days=7))
    outbox = Outbox(database, outbox_table(tables, "survey"), consumed_events_table(tables, "survey"), policy)
    tables.create_all(database.engine)
    yield outbox
    database.dispose()


class Published(list):
    def __call__(self, consumer, envelope):
        self.append((consumer, envelope["id"]))


def store(outbox: Outbox) -> dict:
    # An event with one consumer (customer.opted_out: survey), so that each publish is one row's.
    envelope = new_event(
        "customer.opted_out", {"channel": "sms", "address": "+905551112233", "reason": "sms_stop"}
    )
    with outbox.database.transaction() as session:
        record_event(session, outbox.table, envelope)
    return envelope


def rows(outbox: Outbox) -> list:
    with outbox.database.transaction() as session:
        return session.execute(select(outbox.table)).all()


def test_event_is_published_to_each_consumer_until_it_acknowledges(outbox):
    envelope, published, now = store(outbox), Published(), utcnow()

    assert outbox.relay_due(published, now=now) == 1
    assert published == [("survey", envelope["id"])]
    assert outbox.relay_due(published, now=now + timedelta(seconds=59)) == 0
    assert outbox.relay_due(published, now=now + timedelta(seconds=61)) == 1  # no word from survey
    outbox.acknowledge(envelope["id"], "survey")
    assert outbox.relay_due(published, now=now + timedelta(days=1)) == 0
    [row] = rows(outbox)
    assert row.publish_attempts == 2 and row.acknowledged_at is not None and row.next_publish_at is None


def test_each_redelivery_waits_twice_as_long(outbox):
    store(outbox)
    now = utcnow()
    outbox.relay_due(Published(), now=now)
    outbox.relay_due(Published(), now=now + timedelta(seconds=61))
    [row] = rows(outbox)
    assert row.next_publish_at - (now + timedelta(seconds=61)) == timedelta(seconds=120)


def test_event_never_acknowledged_is_given_up_and_logged(outbox, caplog):
    envelope, now = store(outbox), utcnow()
    with caplog.at_level(logging.ERROR, logger="shared.outbox"):
        for hours in range(5):
            outbox.relay_due(Published(), now=now + timedelta(hours=hours))
    [row] = rows(outbox)
    assert row.publish_attempts == 3 and row.next_publish_at is None and row.acknowledged_at is None
    assert envelope["id"] in caplog.text and "giving up" in caplog.text


def test_broker_refusing_a_publish_leaves_the_row_due(outbox):
    store(outbox)

    def broker_down(consumer, envelope):
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        outbox.relay_due(broker_down)
    [row] = rows(outbox)
    assert row.publish_attempts == 0 and row.next_publish_at is not None


def test_finished_rows_and_consumed_records_are_pruned_after_the_retention(outbox):
    done, pending = store(outbox), store(outbox)
    outbox.relay_due(Published())
    outbox.acknowledge(done["id"], "survey")
    with outbox.database.transaction() as session:
        session.execute(insert(outbox.consumed).values(event_id="e1", consumer="c", consumed_at=utcnow()))

    assert outbox.prune(now=utcnow() + timedelta(days=6)) == 0
    assert outbox.prune(now=utcnow() + timedelta(days=8)) == 2
    assert [row.event_id for row in rows(outbox)] == [pending["id"]]  # still waiting for its consumer


def test_in_the_running_system_every_event_ends_acknowledged(sqlite_url):
    system = build_system(make_settings(sqlite_url))
    system.start()
    try:
        body, headers = signed_request(crm_event())
        assert (
            system.apps["survey"].test_client().post("/v1/events", data=body, headers=headers).status_code
            == 202
        )
        survey = system.runtimes["survey"].outbox

        def acknowledged():
            found = rows(survey)
            return found and all(row.acknowledged_at for row in found) and found

        [row] = wait_for(acknowledged, what="dispatch's acknowledgement")
        assert (row.consumer, row.publish_attempts) == ("dispatch", 1)
    finally:
        system.stop()


def test_event_its_consumer_refuses_as_invalid_is_acknowledged_not_retried_forever(sqlite_url):
    system = build_system(make_settings(sqlite_url))
    survey = system.runtimes["survey"].outbox
    broken = new_event("invitation.requested", _invitation())
    broken["data"]["preferred_channel"] = "carrier-pigeon"  # stored past emit's validation, as by an old bug
    with survey.database.transaction() as session:
        record_event(session, survey.table, broken)
    system.start()
    try:
        wait_for(lambda: rows(survey)[0].acknowledged_at, what="dispatch refusing the event for good")
        assert dispatch_service.deliveries_for(system.runtimes["dispatch"], "inv-1") == []
    finally:
        system.stop()


def _invitation() -> dict:
    return {
        "invitation_id": "inv-1",
        "touchpoint": "purchase",
        "locale": "en",
        "preferred_channel": "email",
        "contact": {"customer_id": "c-1", "name": "Ada", "email": "ada@example.com"},
        "message": {
            "subject": "How did we do?",
            "greeting": "Hello Ada,",
            "question": "How likely are you to recommend us?",
            "low_label": "Not at all likely",
            "high_label": "Extremely likely",
            "sms_body": "Reply 0-10",
            "answer_url": "http://survey.test/s/token",
        },
    }


def test_a_batch_is_marked_published_together_and_acknowledged_in_one_go(outbox):
    first, second, third = store(outbox), store(outbox), store(outbox)
    assert outbox.relay_due(Published()) == 3
    assert {(row.event_id, row.publish_attempts) for row in rows(outbox)} == {
        (first["id"], 1),
        (second["id"], 1),
        (third["id"], 1),
    }
    outbox.acknowledge_all([first["id"], third["id"]], "survey")
    outbox.acknowledge_all([second["id"]], "someone-else")  # another consumer's row: none here

    waiting = [row.event_id for row in rows(outbox) if row.next_publish_at is not None]
    assert waiting == [second["id"]]


def test_events_emitted_at_commit_are_all_queued_when_it_commits_and_none_when_it_rolls_back(outbox):
    uow = SqlUnitOfWork("survey", outbox.database, outbox.table, outbox.consumed)
    with uow:
        uow.emit_at_commit()
        emitted = [uow.emit("invitation.requested", _invitation()) for _ in range(3)]
    assert sorted((row.event_id, row.consumer, row.payload["id"]) for row in rows(outbox)) == sorted(
        (envelope["id"], "dispatch", envelope["id"]) for envelope in emitted
    )

    with pytest.raises(RuntimeError), uow:
        uow.emit_at_commit()
        uow.emit("invitation.requested", _invitation())
        raise RuntimeError("the batch failed")
    assert len(rows(outbox)) == 3


def test_events_are_stored_as_they_are_emitted_unless_asked_otherwise(outbox):
    # What a transaction that reads the outbox after emitting (an erasure) relies on.
    uow = SqlUnitOfWork("survey", outbox.database, outbox.table, outbox.consumed)
    with uow:
        envelope = uow.emit("invitation.requested", _invitation())
        assert uow.session.execute(select(outbox.table.c.event_id)).scalars().all() == [envelope["id"]]
