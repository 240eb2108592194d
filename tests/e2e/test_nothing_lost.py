"""Nothing accepted is lost, whatever dies: every CRM event answered 202 ends in exactly one delivery.

Each test kills something with SIGKILL in the middle of a burst of events, starts it again, and waits for
the loop to finish: the embedded process itself (its in-process queue dies with it), the broker (Redis
restarted empty, RabbitMQ restarted on its own data), and a dramatiq worker holding messages. What brings
the lost messages back is the outbox: a row is published again until its consumer acknowledges it, and
the consumer ignores what it already acted on. ``OUTBOX_REDELIVER_AFTER`` is shortened to keep them quick.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import TEST_SECRET, wait_for
from tests.e2e.processes import (
    BIN,
    ROOT,
    Process,
    RabbitmqServer,
    RedisServer,
    free_port,
    log_tail,
    post_burst,
    procfile_commands,
    wait_for_port,
)

pytestmark = pytest.mark.e2e


# Each accepted CRM event's deliveries, through the invitation its decision requested (survey decides right
# after the intake answered: an event accepted just before a crash is decided after the restart).
DELIVERIES_BY_EVENT = (
    "SELECT i.crm_event_id FROM dispatch_deliveries d JOIN survey_invitations i ON i.id = d.invitation_id"
)


def _deliveries_by_event(database: Path, event_ids: list[str]) -> Counter[str]:
    with sqlite3.connect(database, timeout=30) as connection:
        rows = connection.execute(DELIVERIES_BY_EVENT).fetchall()
    wanted = set(event_ids)
    return Counter(event_id for (event_id,) in rows if event_id in wanted)


def _sandbox_messages_per_delivery(database: Path) -> Counter[str]:
    with sqlite3.connect(database, timeout=30) as connection:
        rows = connection.execute("SELECT delivery_id FROM dispatch_sandbox_messages").fetchall()
    return Counter(delivery_id for (delivery_id,) in rows)


def test_embedded_process_killed_mid_burst_loses_no_accepted_event(tmp_path):
    port, database, log = free_port(), tmp_path / "closeloop.db", tmp_path / "embedded.log"
    environment = {
        "DATABASE_URL": f"sqlite:///{database}",
        "BROKER_URL": "memory://",
        "CLOSELOOP_TRANSPORT": "sandbox",
        "CLOSELOOP_WEBHOOK_SECRET": TEST_SECRET,
        "OUTBOX_REDELIVER_AFTER": "2",
    }
    command = [str(BIN / "closeloop"), "run", "--no-demo", "--port", str(port)]
    embedded = Process("embedded", command, environment, log).start()
    try:
        wait_for_port(port, what="the embedded process")
        threading.Timer(1.5, embedded.kill).start()
        accepted = post_burst(f"http://127.0.0.1:{port}/v1/events", 1500, "embedded")
        embedded.kill()
        events = [receipt["event_id"] for receipt in accepted.values()]
        undelivered = len(events) - len(_deliveries_by_event(database, events))
        print(f"{len(accepted)} events accepted before the kill, {undelivered} of them not yet delivered")
        assert accepted and undelivered > 0, "the kill came too late to lose anything"

        embedded.start()
        wait_for_port(port, what="the restarted embedded process")
        delivered = wait_for(
            lambda: (
                (found := _deliveries_by_event(database, events))
                and len(found) == len(events)
                and found
            ),
            timeout=60,
            what="a delivery for every accepted event",
        )
        time.sleep(3)  # a redelivery after the last acknowledgement would show up by now
        delivered = _deliveries_by_event(database, events)
        assert len(delivered) == len(events) and set(delivered.values()) == {1}
        assert set(_sandbox_messages_per_delivery(database).values()) <= {1}
    except BaseException:
        print(log_tail(log))
        raise
    finally:
        embedded.stop()


class ServicesMode:
    """The invitation half of the loop as infra/Procfile runs it, each line a process a test can kill."""

    PROCESSES = ("survey-web", "survey-worker", "survey-clock", "dispatch-worker", "dispatch-clock")

    def __init__(self, tmp_path: Path, database_url: str, broker_url: str) -> None:
        self.database_url, self.log = database_url, tmp_path / "services.log"
        self.survey_port = free_port()
        environment = {
            "DATABASE_URL": database_url,
            "BROKER_URL": broker_url,
            "SURVEY_PORT": str(self.survey_port),
            "SURVEY_PUBLIC_URL": f"http://127.0.0.1:{self.survey_port}",
            "CLOSELOOP_WEBHOOK_SECRET": TEST_SECRET,
            "CLOSELOOP_TRANSPORT": "sandbox",
            "OUTBOX_REDELIVER_AFTER": "10",
        }
        commands = procfile_commands()
        self.processes = {
            name: Process(name, commands[name], environment, self.log) for name in self.PROCESSES
        }

    @contextlib.contextmanager
    def running(self, but: tuple[str, ...] = ()) -> Iterator[ServicesMode]:
        """Every process but those named, stopped afterwards; the log is printed when the block fails."""
        try:
            for name, process in self.processes.items():
                if name not in but:
                    process.start()
            wait_for_port(self.survey_port, what="survey-web")
            yield self
        except BaseException:
            print(log_tail(self.log, 12000))
            raise
        finally:
            for process in self.processes.values():
                process.stop()

    def post_burst(self, count: int, prefix: str) -> list[str]:
        accepted = post_burst(f"http://127.0.0.1:{self.survey_port}/v1/events", count, prefix)
        return [receipt["event_id"] for receipt in accepted.values()]

    def deliveries(self, event_ids: list[str]) -> Counter[str]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(text(DELIVERIES_BY_EVENT)).all()
        finally:
            engine.dispose()
        wanted = set(event_ids)
        return Counter(event_id for (event_id,) in rows if event_id in wanted)

    def received_count(self) -> int:
        """CRM events accepted and not yet decided by survey's clock."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return connection.execute(
                    text("SELECT count(*) FROM survey_crm_events WHERE status = 'received'")
                ).scalar_one()
        finally:
            engine.dispose()

    def outbox_counts(self) -> tuple[int, int, int]:
        """Survey's outbox: rows published more than once, not acknowledged yet, never published yet."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return connection.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE publish_attempts > 1),"
                        " count(*) FILTER (WHERE acknowledged_at IS NULL),"
                        " count(*) FILTER (WHERE publish_attempts = 0) FROM survey_outbox"
                    )
                ).one()
        finally:
            engine.dispose()

    def sandbox_messages_per_delivery(self) -> Counter[str]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT delivery_id FROM dispatch_sandbox_messages")).all()
        finally:
            engine.dispose()
        return Counter(delivery_id for (delivery_id,) in rows)

    def assert_each_delivered_once(self, event_ids: list[str], within: float) -> None:
        wait_for(
            lambda: len(self.deliveries(event_ids)) == len(event_ids),
            timeout=within,
            what=f"a delivery for each of {len(event_ids)} accepted events",
        )
        # Done means acknowledged: the relay stops publishing an event once its consumer has acted on it.
        wait_for(lambda: self.outbox_counts()[1] == 0, what="every acknowledgement")
        delivered = self.deliveries(event_ids)
        assert len(delivered) == len(event_ids) and set(delivered.values()) == {1}
        assert set(self.sandbox_messages_per_delivery().values()) <= {1}
        print(f"{len(event_ids)} events delivered once each; {self.outbox_counts()[0]} published again")


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture(params=["restarted empty", "restarted from its append-only file"])
def lost_redis(request, tmp_path):
    """A Redis killed mid-burst comes back empty (its machine was lost), or with the shipped settings."""
    persistent = request.param != "restarted empty"
    server = RedisServer(tmp_path, ROOT / "infra" / "redis.conf" if persistent else None).start()
    yield server, persistent
    server.kill()


@pytest.fixture
def rabbitmq_server():
    server = RabbitmqServer().start()
    yield server
    server.remove()


def _until_relayed(services: ServicesMode) -> None:
    # Decided first (the invitations requested in the outbox), then relayed.
    wait_for(lambda: services.received_count() == 0, what="every accepted event decided")
    wait_for(lambda: services.outbox_counts()[2] == 0, what="the outbox relayed to the broker")


def test_redis_killed_with_a_backlog_loses_no_accepted_event(tmp_path, postgres_url, lost_redis):
    redis_server, persistent = lost_redis
    services = ServicesMode(tmp_path, postgres_url, redis_server.url)
    with services.running(but=("dispatch-worker",)):
        queued = services.post_burst(300, "queued")  # no worker yet: they wait in Redis
        _until_relayed(services)
        redis_server.kill()
        # Intake needs no broker: what arrives while it is down is accepted and waits in the outbox.
        during = services.post_burst(300, "while-down")
        redis_server.start()
        services.processes["dispatch-worker"].start()
        services.assert_each_delivered_once(queued + during, within=60)
        if not persistent:  # every queued message was gone: the outbox published each again
            republished, _, _ = services.outbox_counts()
            assert republished >= len(queued)


def test_rabbitmq_killed_with_a_backlog_loses_no_accepted_event(tmp_path, postgres_url, rabbitmq_server):
    services = ServicesMode(tmp_path, postgres_url, rabbitmq_server.url)
    with services.running(but=("dispatch-worker",)):
        queued = services.post_burst(300, "queued")
        _until_relayed(services)  # each publish was confirmed by RabbitMQ before the row was marked
        rabbitmq_server.kill()
        during = services.post_burst(300, "while-down")
        rabbitmq_server.start()  # on its own data: persistent messages in durable queues survive
        services.processes["dispatch-worker"].start()
        services.assert_each_delivered_once(queued + during, within=60)


def test_worker_killed_mid_message_has_its_messages_back_in_work(tmp_path, postgres_url, redis_server):
    services = ServicesMode(tmp_path, postgres_url, redis_server.url)
    worker = services.processes["dispatch-worker"]
    with services.running(but=("dispatch-worker",)):
        queued = services.post_burst(600, "queued")
        _until_relayed(services)
        worker.start()
        wait_for(lambda: len(services.deliveries(queued)) >= 20, what="the worker at work")
        worker.kill()  # it holds prefetched messages, some of them mid-way
        held = len(queued) - len(services.deliveries(queued))
        print(f"the worker was killed with {held} of {len(queued)} events not yet acted on")
        assert held > 0
        worker.start()
        services.assert_each_delivered_once(queued, within=60)
