"""Fixtures shared by every test folder: throwaway databases, settings, signed CRM events."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from standardwebhooks.webhooks import Webhook

from closeloop.services import SERVICES
from services.dispatch.models import Delivery
from shared.clock import utcnow
from shared.principal import Role
from shared.settings import MESSAGE_CHANNELS, Settings

PG_ADMIN_URL = os.environ.get(
    "CLOSELOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# A database number of its own, so the tests never touch what else uses this Redis.
REDIS_TEST_URL = os.environ.get("CLOSELOOP_TEST_REDIS", "redis://127.0.0.1:6379/13")
TEST_SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWNsb3NlbG9vcC10ZXN0cw=="


@contextmanager
def migrated_service(service: str, settings: Settings) -> Iterator[Any]:
    """A service's runtime on a freshly migrated database, disposed of afterwards."""
    wiring = SERVICES[service]
    runtime = wiring.bootstrap(settings)
    wiring.migrate(runtime)
    try:
        yield runtime
    finally:
        runtime.database.dispose()


def staff_client(app: Flask, identity: Any, role: Role = Role.ADMIN) -> FlaskClient:
    """A test client whose every request carries a new API key of ``role`` from the real identity store."""
    _, key = identity.create_api_key(f"tests ({role})", role, "tests")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "the loop", ignore=()) -> Any:
    """Poll ``check`` until it returns something truthy; the loop is asynchronous by design."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except ignore:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} did not get there in {timeout:.0f} s")


class CheckedThread(threading.Thread):
    """A thread running ``target(*args)`` that keeps what it raised in ``failures`` for the test to assert
    on (an exception in a plain thread is only a warning)."""

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        super().__init__(daemon=True)
        self._call = (target, args)
        self.failures: list[BaseException] = []

    def run(self) -> None:
        target, args = self._call
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            self.failures.append(error)


def waits_for_a_lock(engine: Any, thread: threading.Thread, timeout: float = 60.0) -> bool:
    """True once a transaction on ``engine``'s PostgreSQL database waits for a lock (a row's or an
    advisory one); False if ``thread`` ended first. The timeout is generous: a loaded CI machine starts
    threads late."""
    deadline = time.monotonic() + timeout
    with engine.connect() as watcher:
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
            # pg_stat_activity is read once per transaction and kept till its end: end it, or every later
            # look sees the first one's answer.
            watcher.rollback()
            if waiting:
                return True
            time.sleep(0.02)
    return False


@contextmanager
def statements_sent(engine: Any) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy sends on ``engine`` inside the block, in order."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"closeloop_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/closeloop.db"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": "memory://",
        "public_base_url": "http://testserver",
        "webhook_secret": TEST_SECRET,
        "transport": "sandbox",
        # Tests run at any hour: the customer's sending window and reminders are asked for where tested.
        "quiet_hours": dict.fromkeys(MESSAGE_CHANNELS, "off"),
        "reminder_count": 0,
    }
    values.update(overrides)
    return Settings(**values)


def delivery_row(**fields: Any) -> Delivery:
    """A dispatch delivery as tests store it: an email invitation to Ada, suppressed and never attempted,
    but for ``fields`` (``id`` and ``source_id`` at least)."""
    now = utcnow()
    defaults: dict[str, Any] = {
        "invitation_id": None,
        "kind": "invitation",
        "channel": "email",
        "address": "ada@example.com",
        "recipient_name": None,
        "locale": "en",
        "content": {},
        "status": "suppressed",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    return Delivery(**(defaults | fields))


def crm_event(event_id: str | None = None, **customer: Any) -> dict[str, Any]:
    return {
        "id": event_id or f"evt-{uuid.uuid4().hex[:10]}",
        "type": "purchase.completed",
        "occurred_at": utcnow().isoformat(),
        "customer": {
            "external_id": "crm-42",
            "email": "jane@example.com",
            "name": "Jane Doe",
            "locale": "en",
            "preferred_channel": "email",
            **customer,
        },
        "properties": {"order_id": "A-1001"},
    }


def signed_request(
    event: dict[str, Any], secret: str = TEST_SECRET, timestamp: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers signed by the standardwebhooks package: an implementation that is not ours."""
    body = json.dumps(event)
    message_id = f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or utcnow()
    signature = Webhook(secret).sign(message_id, timestamp, body)
    return body.encode(), {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
