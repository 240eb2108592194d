"""The outbox relay and consumer de-duplication, with a real dramatiq worker on Redis and PostgreSQL."""

from __future__ import annotations

import dramatiq
import pytest
import redis
from sqlalchemy import MetaData, select

from services.followup import service as followup_service
from services.followup.bootstrap import SERVICE as FOLLOWUP
from services.followup.models import FollowupTask
from shared.broker import REDIS_IDLE_POLL_MS, create_broker, publisher
from shared.db import Database
from shared.events import new_event
from shared.outbox import Outbox, consumed_events_table, outbox_table, record_event
from tests.conftest import REDIS_TEST_URL, make_settings, migrated_service

SCORED = {
    "response_id": "r-1",
    "invitation_id": "i-1",
    "revision": 1,
    "score": 5,
    "comment": None,
    "locale": "en",
    "touchpoint": "support_call",
    "channel": "sms",
    "customer": {"customer_id": "c-1", "external_id": "crm-1", "name": "Jane"},
    "submitted_at": "2026-11-25T10:00:00+00:00",
    "sentiment": None,
}


@pytest.fixture
def followup(postgres_url):
    with migrated_service("followup", make_settings(postgres_url)) as runtime:
        yield runtime


@pytest.fixture
def redis_broker():
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    broker = create_broker(REDIS_TEST_URL)
    yield broker
    broker.close()
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()


def tasks(runtime):
    with runtime.database.transaction() as session:
        return session.scalars(select(FollowupTask)).all()


def test_event_published_twice_is_acted_on_once(followup, redis_broker, postgres_url):
    FOLLOWUP.declare(redis_broker, followup)
    # Another service's outbox: a relay that crashed after publishing, before marking, publishes again.
    producer = Database(postgres_url)
    tables = MetaData()
    producer_outbox = Outbox(
        producer, outbox_table(tables, "producer"), consumed_events_table(tables, "producer")
    )
    tables.create_all(producer.engine)
    envelope = new_event("response.scored", SCORED)
    with producer.transaction() as session:
        record_event(session, producer_outbox.table, envelope)
    publish = publisher(redis_broker)
    publish("followup", envelope)
    # One row per consumer of response.scored (followup, survey); nobody consumes survey's here.
    assert producer_outbox.relay_due(publish) == 2
    assert producer_outbox.relay_due(publish) == 0  # not due again until the redelivery delay has passed

    worker = dramatiq.Worker(redis_broker, worker_threads=2)
    worker.start()
    try:
        redis_broker.join("followup", timeout=10_000)
        # The producer's "sentiment" queue holds the consumer's acknowledgements (nobody consumes them here).
    finally:
        worker.stop()
        producer.dispose()

    [task] = tasks(followup)
    assert task.score == 5 and task.status == "open"


def test_later_revision_updates_the_task_and_an_older_one_changes_nothing(followup):
    followup_service.act_on_scored_response(followup, new_event("response.scored", SCORED))
    comment = {**SCORED, "revision": 2, "comment": "They hung up on me", "sentiment": _negative()}
    followup_service.act_on_scored_response(followup, new_event("response.scored", comment))
    followup_service.act_on_scored_response(followup, new_event("response.scored", SCORED))

    [task] = tasks(followup)
    assert task.response_revision == 2 and task.comment == "They hung up on me"
    assert task.priority == "high"  # the negative comment made a score of 5 urgent


def test_detractor_who_raises_the_score_to_a_promoter_has_the_task_dismissed(followup):
    followup_service.act_on_scored_response(followup, new_event("response.scored", SCORED))
    followup_service.act_on_scored_response(
        followup, new_event("response.scored", {**SCORED, "revision": 2, "score": 10})
    )
    [task] = tasks(followup)
    assert task.status == "dismissed"
    assert [r.score for r in followup_service.list_referral_requests(followup)] == [10]


def _negative():
    return {
        "polarity": -0.6,
        "subjectivity": 0.5,
        "label": "negative",
        "language": "en",
        "key_phrases": ["hung"],
        "analyzer": "test",
    }


def test_an_idle_consumer_looks_at_its_queue_often_enough_for_a_burst_to_start_at_once(redis_broker):
    # A dramatiq worker asks for its idle timeout (1 s): an idle consumer backs off up to that between looks,
    # and the first message after a quiet second waited as long. The broker caps it.
    consumer = redis_broker.consume("followup", timeout=1_000)
    try:
        assert consumer.timeout == REDIS_IDLE_POLL_MS
    finally:
        consumer.close()
