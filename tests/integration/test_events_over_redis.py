"""The outbox relay and consumer de-duplication, with a real dramatiq worker on Redis and PostgreSQL."""

from __future__ import annotations

import dramatiq
import pytest
import redis
from sqlalchemy import MetaData, select

from services.followup import service as followup_service
from services.followup.actors import consumers
from services.followup.models import FollowupTask
from shared.broker import EventPublisher, create_broker, declare_consumers
from shared.db import Database
from shared.events import new_event
from shared.outbox import OutboxRelay, outbox_table, record_event
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
    declare_consumers(redis_broker, consumers(followup))
    # Another service's outbox: a relay that crashed after publishing, before marking, publishes again.
    producer = Database(postgres_url)
    producer_outbox = outbox_table(MetaData(), "producer")
    producer_outbox.create(producer.engine)
    envelope = new_event("response.scored", SCORED)
    with producer.transaction() as session:
        record_event(session, producer_outbox, envelope)
    publish = EventPublisher(redis_broker)
    publish(envelope)
    assert OutboxRelay(producer, producer_outbox, publish).relay_pending() == 1
    assert OutboxRelay(producer, producer_outbox, publish).relay_pending() == 0  # marked as published

    worker = dramatiq.Worker(redis_broker, worker_threads=2)
    worker.start()
    try:
        redis_broker.join("followup", timeout=10_000)
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
