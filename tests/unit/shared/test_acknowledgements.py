"""Consumers acknowledge to the producer's outbox; what several threads acknowledge goes in one message."""

from __future__ import annotations

from dramatiq.brokers.stub import StubBroker

from shared.broker import ACK_ACTOR, Acknowledgements, actor_name
from tests.conftest import wait_for


def test_acknowledgements_gathered_meanwhile_go_to_the_producer_in_one_message():
    broker = StubBroker()
    acknowledgements = Acknowledgements(broker, "dispatch", "survey")
    for event_id in ("e1", "e2", "e3"):
        acknowledgements.add({"id": event_id})
    acknowledgements.add({"no": "id"})  # nothing names an outbox row: nothing to acknowledge

    wait_for(lambda: broker.queues.get("survey") is not None and broker.queues["survey"].qsize(), what="acks")
    queue = broker.queues["survey"]
    [message] = [queue.get_nowait() for _ in range(queue.qsize())]
    assert b'"args":[["e1","e2","e3"],"dispatch"]' in message
    assert actor_name("survey", ACK_ACTOR).encode() in message


def test_what_is_left_is_sent_when_asked():
    broker = StubBroker()
    acknowledgements = Acknowledgements(broker, "dispatch", "survey")
    acknowledgements.send()  # nothing gathered: nothing sent
    assert "survey" not in broker.queues
