"""Broker set-up, publishing to a consuming service's queue, and consumers declared as dramatiq actors.

Consumers are plain functions taking the event envelope (plain JSON). They are declared on a broker
explicitly instead of with ``@dramatiq.actor`` at import time, so a test, the embedded process and a
service worker can each bind the same functions to the broker they run.

Every consumer acknowledges each event to its producer's outbox once it has acted on it (or refused it for
good); the outbox publishes again what was not acknowledged in time. So the broker may lose a message, and
dramatiq's own retries are few and short: they cover a passing conflict, the outbox covers the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from shared.consumers import Consumer
from shared.events import EVENTS, InvalidEvent
from shared.metrics import observe_event_lag
from shared.outbox import Outbox, Publish

log = logging.getLogger(__name__)

ACK_ACTOR = "outbox_ack"


def create_broker(url: str) -> dramatiq.Broker:
    """``memory://`` (in-process, embedded mode), ``redis://...`` or ``amqp://...``."""
    if url.startswith("memory://"):
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        # Messages a killed worker held return after the heartbeat timeout, but only when a maintenance
        # pass runs on their queue: make that pass frequent (the default runs in 1 of 1,000 fetches).
        return RedisBroker(url=url, heartbeat_timeout=30_000, maintenance_chance=100_000)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: enqueue returns only once RabbitMQ has taken the (persistent) message.
        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ValueError(f"BROKER_URL must start with memory://, redis:// or amqp://, not {url.split(':', 1)[0]}")


def actor_name(service: str, event_type: str) -> str:
    return f"{service}__{event_type.replace('.', '_')}"


def _enqueue(broker: dramatiq.Broker, queue: str, actor: str, args: tuple[Any, ...]) -> None:
    broker.declare_queue(queue)
    broker.enqueue(Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}))


def publisher(broker: dramatiq.Broker) -> Publish:
    """Sends an envelope to one consuming service's queue."""

    def publish(consumer: str, envelope: dict[str, Any]) -> None:
        _enqueue(broker, consumer, actor_name(consumer, envelope["type"]), (envelope,))

    return publish


def declare_consumers(
    broker: dramatiq.Broker,
    service: str,
    runtime: Any,
    consumers: Iterable[Consumer],
    outbox: Outbox,
) -> list[dramatiq.Actor]:
    """Declare ``service``'s consumers, bound to ``runtime``, and the actor taking its outbox's acks."""
    actors = [
        dramatiq.actor(
            outbox.acknowledge,
            broker=broker,
            actor_name=actor_name(service, ACK_ACTOR),
            queue_name=service,
            max_retries=3,
        )
    ]
    for consumer in consumers:
        event = EVENTS[consumer.event_type]
        if service not in event.consumers:
            raise ValueError(f"{service} consumes {consumer.event_type}, which EVENTS never sends it")
        actors.append(
            dramatiq.actor(
                _acknowledging(broker, service, event.producer, consumer, runtime),
                broker=broker,
                actor_name=actor_name(service, consumer.event_type),
                queue_name=service,
                # A payload that breaks its contract will not get better by retrying.
                throws=(InvalidEvent,),
                max_retries=3,
                min_backoff=500,
                max_backoff=5_000,
            )
        )
    return actors


def _acknowledging(broker: dramatiq.Broker, service: str, producer: str, consumer: Consumer, runtime: Any):
    def consume(envelope: Any) -> None:
        try:
            consumer(runtime, envelope)
        except InvalidEvent:
            log.error("%s refused an invalid %s event", service, consumer.event_type)
            _acknowledge(broker, service, producer, envelope)
            raise
        _acknowledge(broker, service, producer, envelope)
        observe_event_lag(service, consumer.event_type, envelope)

    consume.__name__ = consumer.name
    return consume


def _acknowledge(broker: dramatiq.Broker, service: str, producer: str, envelope: Any) -> None:
    event_id = envelope.get("id") if isinstance(envelope, dict) else None
    if not isinstance(event_id, str):
        return  # nothing names the outbox row; the producer stops after its last redelivery
    # Sent after the consumer's commit: lost, it only costs a redelivery the consumer ignores.
    _enqueue(broker, producer, actor_name(producer, ACK_ACTOR), (event_id, service))
