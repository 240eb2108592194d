"""How fast the walking skeleton takes CRM events in, and how long the loop takes end to end.

    .venv/bin/python bench/loop_bench.py [--events 500] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]

Intake: signed events through the survey app's real Flask stack (test client, no sockets), each for a
new customer, so each stores a customer, an event, an invitation and an outbox row in one transaction.
Baseline beside it: a bare Flask endpoint that parses the same JSON and answers 202, in the same run.
Loop: the embedded system (SQLite, in-process broker, sandbox) from a posted event to the sent SMS, and
from the customer's SMS reply to the follow-up task, as medians over a few rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid

from flask import Flask, request
from machine import machine_line
from sqlalchemy import create_engine, text

from closeloop.services import SERVICES
from closeloop.system import build_system
from services.dispatch import service as dispatch_service
from shared.clock import utcnow
from shared.settings import MESSAGE_CHANNELS, Settings
from shared.signing import generate_secret, signed_headers

SECRET = generate_secret()


def event(n: int, channel: str = "email") -> dict:
    customer = {"external_id": f"bench-{uuid.uuid4().hex}", "name": "Bench Customer", "locale": "en"}
    if channel == "sms":
        customer.update(phone=f"+1555{n:07d}", preferred_channel="sms")
    else:
        customer.update(email=f"bench{n}@example.com")
    return {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": "purchase.completed",
        "occurred_at": utcnow().isoformat(),
        "customer": customer,
        "properties": {"order": n},
    }


def signed(payload: dict) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", **signed_headers(SECRET, body)}


def rate(client, requests_: list[tuple[bytes, dict]], path: str, expect: int) -> float:
    started = time.perf_counter()
    for body, headers in requests_:
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == expect, response.get_data(as_text=True)
    return len(requests_) / (time.perf_counter() - started)


def bare_flask_rate(requests_: list[tuple[bytes, dict]]) -> float:
    app = Flask("bare")

    @app.post("/v1/events")
    def events():
        payload = request.get_json()
        return {"id": payload["id"], "duplicate": False}, 202

    return rate(app.test_client(), requests_, "/v1/events", 202)


def intake_rate(database_url: str, requests_: list[tuple[bytes, dict]]) -> tuple[float, float]:
    survey = SERVICES["survey"]
    runtime = survey.bootstrap(Settings(database_url=database_url, webhook_secret=SECRET))
    survey.migrate(runtime)
    client = survey.create_app(runtime).test_client()
    fresh = rate(client, requests_, "/v1/events", 202)
    again = [
        signed(json.loads(body)) for body, _ in requests_
    ]  # re-signed: signatures are single-use in spirit
    duplicate = rate(client, again, "/v1/events", 200)
    runtime.database.dispose()
    return fresh, duplicate


def loop_latency(rounds: int) -> tuple[float, float]:
    directory = tempfile.mkdtemp()
    # Measured at any hour: no customer's quiet hours, no reminders.
    settings = Settings(
        database_url=f"sqlite:///{directory}/loop.db",
        webhook_secret=SECRET,
        quiet_hours=dict.fromkeys(MESSAGE_CHANNELS, "off"),
        reminder_count=0,
    )
    system = build_system(settings)
    system.start()
    survey, followup = system.apps["survey"].test_client(), system.apps["followup"].test_client()
    dispatch = system.apps["dispatch"].test_client()
    # Deliveries and tasks are for staff: a key, as a monitoring script would have.
    _, key = system.runtimes["dispatch"].identity.create_api_key("loop-bench", "admin", "bench")
    staff = {"Authorization": f"Bearer {key}"}
    to_send, to_task = [], []
    try:
        for n in range(rounds):
            started = time.perf_counter()
            body, headers = signed(event(n, "sms"))
            assert survey.post("/v1/events", data=body, headers=headers).status_code == 202
            while True:
                # The event is decided by survey's clock, then sent by dispatch: watch the customer's number.
                deliveries = dispatch.get(
                    "/v1/deliveries", query_string={"phone": f"+1555{n:07d}"}, headers=staff
                ).get_json()
                if deliveries and deliveries[0]["status"] == "sent":
                    break
                time.sleep(0.002)
            to_send.append(time.perf_counter() - started)
            started = time.perf_counter()
            dispatch_service.receive_sms(
                system.runtimes["dispatch"], f"SM{uuid.uuid4().hex}", f"+1555{n:07d}", "2 slow"
            )
            while len(followup.get("/v1/tasks?page_size=500", headers=staff).get_json()) <= n:
                time.sleep(0.002)
            to_task.append(time.perf_counter() - started)
    finally:
        system.stop()
    return statistics.median(to_send), statistics.median(to_task)


def postgres_available(url: str) -> bool:
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/closeloop_bench")
    args = parser.parse_args()

    print(f"{machine_line()}; {args.events} events, one thread")
    requests_ = [signed(event(n)) for n in range(args.events)]
    baseline = bare_flask_rate(requests_)
    print(f"{'run':48} {'events/s':>9} {'vs bare Flask':>14}")
    print(f"{'bare Flask: parse JSON, answer 202':48} {baseline:9.0f} {1.0:13.2f}x")
    databases = {"SQLite file": f"sqlite:///{tempfile.mkdtemp()}/intake.db"}
    if postgres_available(args.postgres.rsplit("/", 1)[0] + "/postgres"):
        databases["PostgreSQL"] = args.postgres
    for name, url in databases.items():
        if name == "PostgreSQL":
            _recreate(url)
        fresh, duplicate = intake_rate(url, requests_)
        print(f"{'survey /v1/events, new customer, ' + name:48} {fresh:9.0f} {fresh / baseline:13.2f}x")
        print(f"{'survey /v1/events, duplicate, ' + name:48} {duplicate:9.0f} {duplicate / baseline:13.2f}x")

    to_send, to_task = loop_latency(args.rounds)
    print(
        f"\nembedded loop, median of {args.rounds}: event -> SMS sent {to_send * 1000:.0f} ms; "
        f"SMS reply -> follow-up task {to_task * 1000:.0f} ms"
    )
    print(
        "(the clock is woken by commits, and decides and relays at once; the worker polls every 100 ms)"
    )


def _recreate(url: str) -> None:
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = url.rsplit("/", 1)[1]
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    main()
