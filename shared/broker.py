"""Broker set-up, event publishing by route, and consumers declared as dramatiq actors.

Consumers are plain functions taking the event envelope (plain JSON). They are declared on a broker
explicitly instead of with ``@dramatiq.actor`` at import time, so a test, the embedded process and a
service worker can each bind the same functions to the broker they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from shared.events import ROUTES, InvalidEvent


def create_broker(url: str) -> dramatiq.Broker:
    """``memory://`` (in-process, embedded mode), ``redis://...`` or ``amqp://...``."""
    if url.startswith("memory://"):
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise ValueError(f"BROKER_URL must start with memory://, redis:// or amqp://, not {url.split(':', 1)[0]}")


def actor_name(service: str, event_type: str) -> str:
    return f"{service}__{event_type.replace('.', '_')}"


@dataclass(frozen=True)
class Consumer:
    """A service's reaction to one event type."""

    service: str
    event_type: str
    handle: Callable[[dict[str, Any]], None]

    @property
    def actor_name(self) -> str:
        return actor_name(self.service, self.event_type)


def declare_consumers(broker: dramatiq.Broker, consumers: Iterable[Consumer]) -> list[dramatiq.Actor]:
    actors = []
    for consumer in consumers:
        if consumer.service not in ROUTES.get(consumer.event_type, ()):
            raise ValueError(
                f"{consumer.service} consumes {consumer.event_type}, which ROUTES never sends it"
            )
        actors.append(
            dramatiq.actor(
                consumer.handle,
                broker=broker,
                actor_name=consumer.actor_name,
                queue_name=consumer.service,
                # A payload that breaks its contract will not get better by retrying.
                throws=(InvalidEvent,),
                max_retries=20,
                min_backoff=1_000,
                max_backoff=300_000,
            )
        )
    return actors


class EventPublisher:
    """Sends an envelope to the queue of every service that consumes its type."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def __call__(self, envelope: dict[str, Any]) -> None:
        for service in ROUTES.get(envelope["type"], ()):
            self.broker.declare_queue(service)
            self.broker.enqueue(
                Message(
                    queue_name=service,
                    actor_name=actor_name(service, envelope["type"]),
                    args=(envelope,),
                    kwargs={},
                    options={},
                )
            )


def serve_consumers(service_consumers: Callable[[], Iterable[Consumer]], broker_url: str) -> dramatiq.Broker:
    """Body of a service's ``worker`` module, the one ``dramatiq services.<name>.worker`` imports."""
    broker = create_broker(broker_url)
    dramatiq.set_broker(broker)
    declare_consumers(broker, service_consumers())
    return broker
