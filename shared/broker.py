"""Broker set-up, publishing to a consuming service's queue, and consumers declared as dramatiq actors.

Consumers are plain functions taking the event envelope (plain JSON). They are declared on a broker
explicitly instead of with ``@dramatiq.actor`` at import time, so a test, the embedded process and a
service worker can each bind the same functions to the broker they run.

Every consumer acknowledges each event to its producer's outbox once it has acted on it (or refused it for
good); the outbox publishes again what was not acknowledged in time. So the broker may lose a message, and
dramatiq's own retries are few and short: they cover a passing conflict, the outbox covers the rest.
Acknowledgements to one producer are gathered for a moment and sent as one message, marked in one UPDATE.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

import dramatiq
from dramatiq import Message, Middleware
from dramatiq.brokers.stub import StubBroker

from shared.consumers import Consumer
from shared.events import EVENTS, InvalidEvent
from shared.metrics import observe_event_lag
from shared.outbox import Outbox, Publish

log = logging.getLogger(__name__)

ACK_ACTOR = "outbox_ack"
# An acknowledgement waits this long for others to the same producer, to go in one message; at most this many
# event ids in one. Late acknowledgements cost nothing (the outbox waits a minute before publishing again),
# and each message costs its producer's worker a transaction: at 130 events a second, 0.05 s sent 20 messages
# a second, 7% of a core in survey's worker (issue 19).
ACK_GATHERING_SECONDS = 0.25
ACK_BATCH_LIMIT = 500


def create_broker(url: str) -> dramatiq.Broker:
    """``memory://`` (in-process, embedded mode), ``redis://...`` or ``amqp://...``."""
    if url.startswith("memory://"):
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _redis_broker(url)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: enqueue returns only once RabbitMQ has taken the (persistent) message.
        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ValueError(f"BROKER_URL must start with memory://, redis:// or amqp://, not {url.split(':', 1)[0]}")


# An idle dramatiq consumer on Redis polls its queue less and less often, up to once per worker timeout (1 s
# as the dramatiq command runs it): the first message after a quiet second waited up to that long for its
# worker, a burst's start included (issue 19). Polled at least this often, at one Redis call a poll.
REDIS_IDLE_POLL_MS = 100


def _redis_broker(url: str) -> dramatiq.Broker:
    from dramatiq.brokers.redis import RedisBroker

    class PromptRedisBroker(RedisBroker):
        def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
            return super().consume(queue_name, prefetch, min(timeout, REDIS_IDLE_POLL_MS))

    # Messages a killed worker held return after the heartbeat timeout, but only when a maintenance pass runs
    # on their queue: make that pass frequent (the default runs in 1 of 1,000 fetches).
    return PromptRedisBroker(url=url, heartbeat_timeout=30_000, maintenance_chance=100_000)


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
            _taking_acknowledgements(outbox),
            broker=broker,
            actor_name=actor_name(service, ACK_ACTOR),
            queue_name=service,
            max_retries=3,
        )
    ]
    acknowledgements: dict[str, Acknowledgements] = {}
    for consumer in consumers:
        event = EVENTS[consumer.event_type]
        if service not in event.consumers:
            raise ValueError(f"{service} consumes {consumer.event_type}, which EVENTS never sends it")
        if event.producer not in acknowledgements:
            acknowledgements[event.producer] = Acknowledgements(broker, service, event.producer)
        actors.append(
            dramatiq.actor(
                _acknowledging(acknowledgements[event.producer], consumer, runtime),
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
    if not any(isinstance(middleware, _SendAcknowledgementsOnShutdown) for middleware in broker.middleware):
        # A worker stopping sends what its threads acknowledged last.
        broker.add_middleware(_SendAcknowledgementsOnShutdown())
    return actors


def _taking_acknowledgements(outbox: Outbox):
    def outbox_ack(event_ids: str | list[str], consumer: str) -> None:
        # One event id (as sent before acknowledgements were gathered), or a batch of them.
        outbox.acknowledge_all([event_ids] if isinstance(event_ids, str) else event_ids, consumer)

    return outbox_ack


def _acknowledging(acknowledgements: Acknowledgements, consumer: Consumer, runtime: Any):
    service = acknowledgements.service

    def consume(envelope: Any) -> None:
        try:
            consumer(runtime, envelope)
        except InvalidEvent:
            log.error("%s refused an invalid %s event", service, consumer.event_type)
            acknowledgements.add(envelope)
            raise
        acknowledgements.add(envelope)
        observe_event_lag(service, consumer.event_type, envelope)

    consume.__name__ = consumer.name
    return consume


class Acknowledgements:
    """What ``service`` acted on, to be acknowledged to ``producer``'s outbox: gathered for
    ``ACK_GATHERING_SECONDS`` by a thread of the process, then sent in one message.

    Sent after the consumer's commit: lost (the process died meanwhile), it only costs a redelivery the
    consumer ignores.
    """

    def __init__(self, broker: dramatiq.Broker, service: str, producer: str) -> None:
        self.broker, self.service, self.producer = broker, service, producer
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._waiting = threading.Event()
        self._sender: threading.Thread | None = None
        _EVERY_ACKNOWLEDGEMENTS.add(self)

    def add(self, envelope: Any) -> None:
        event_id = envelope.get("id") if isinstance(envelope, dict) else None
        if not isinstance(event_id, str):
            return  # nothing names the outbox row; the producer stops after its last redelivery
        with self._lock:
            self._pending.append(event_id)
            # Started on first use, and again in a forked child (a thread does not survive the fork).
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(
                    target=self._send_gathered, name=f"acks-{self.service}-{self.producer}", daemon=True
                )
                self._sender.start()
        self._waiting.set()

    def send(self) -> None:
        """Send what is gathered now."""
        with self._lock:
            event_ids, self._pending = self._pending, []
        actor = actor_name(self.producer, ACK_ACTOR)
        for start in range(0, len(event_ids), ACK_BATCH_LIMIT):
            batch = event_ids[start : start + ACK_BATCH_LIMIT]
            try:
                _enqueue(self.broker, self.producer, actor, (batch, self.service))
            except Exception:
                log.warning(
                    "%s could not acknowledge %d events to %s; they will be redelivered and ignored",
                    self.service,
                    len(batch),
                    self.producer,
                    exc_info=True,
                )

    def _send_gathered(self) -> None:
        while True:
            self._waiting.wait()
            time.sleep(ACK_GATHERING_SECONDS)
            # Cleared before taking the batch: an acknowledgement added after this wakes the next round.
            self._waiting.clear()
            self.send()


_EVERY_ACKNOWLEDGEMENTS: weakref.WeakSet[Acknowledgements] = weakref.WeakSet()


@atexit.register
def _send_every_acknowledgement() -> None:
    for acknowledgements in list(_EVERY_ACKNOWLEDGEMENTS):
        acknowledgements.send()


class _SendAcknowledgementsOnShutdown(Middleware):
    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for acknowledgements in list(_EVERY_ACKNOWLEDGEMENTS):
            if acknowledgements.broker is broker:
                acknowledgements.send()
