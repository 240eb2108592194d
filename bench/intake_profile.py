"""The intake's work per request, without HTTP or a load generator: figures the machine's noise barely moves.

    .venv/bin/python bench/intake_profile.py [--requests 3000] [--profile new|duplicate]

Calls the WSGI apps in this process, as gunicorn's worker would, with the same signed events intake_bench.py
posts: survey's ``POST /v1/events`` (new events, then the same ones again), and the bare Flask endpoints of
baseline_apps.py; also survey's ``GET /healthz`` beside a bare Flask ``GET /healthz`` answering the same JSON
(what every route of every app pays around its view: the shared edge, guard, operations hooks).
Prints per request: CPU time (the thread's, the best of 3 passes: others' load inflates it, never deflates it)
beside the bare endpoints', the SQL statements SQLAlchemy executes and the messages sent to PostgreSQL (round
trips) on the pool's connection and the intake's kept one; not counted: the NOTIFY that wakes the decider,
sent by a thread of the process at most every 10 ms (shared.scheduling.PostgresWaker), whose CPU the thread
time leaves out too.
``--profile`` prints cProfile's top functions for one kind of request.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from werkzeug.test import EnvironBuilder

from shared.signing import generate_secret, signed_headers

sys.path.insert(0, os.path.dirname(__file__))
from intake_bench import create_database, crm_event, drop_database  # noqa: E402

SECRET = generate_secret()
BASE_URL = "http://127.0.0.1:8000"


def environ(path: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
    """The WSGI environ gunicorn would hand the app: a signed POST of ``event``, or a GET without one."""
    if event is None:
        return EnvironBuilder(path=path, base_url=BASE_URL).get_environ()
    body = json.dumps(event, separators=(",", ":")).encode()
    return EnvironBuilder(
        path=path,
        base_url=BASE_URL,
        method="POST",
        data=body,
        content_type="application/json",
        headers=signed_headers(SECRET, body),
    ).get_environ()


def bare_health_app() -> Any:
    """A bare Flask ``GET /healthz`` answering what survey's does: the framework's limit for that route."""
    from flask import Flask, jsonify  # noqa: PLC0415

    app = Flask("bare_health")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "up", "service": "survey"})

    return app


def call(app: Callable[..., Any], environ_: dict[str, Any]) -> str:
    status: list[str] = []
    body = app(environ_, lambda code, _headers, _exc=None: status.append(code))
    b"".join(body)
    if hasattr(body, "close"):
        body.close()
    return status[0]


def cpu_per_request(app: Callable[..., Any], environs: list[dict[str, Any]], expected: str) -> float:
    started = time.thread_time()
    for environ_ in environs:
        status = call(app, environ_)
        if not status.startswith(expected):
            raise SystemExit(f"expected {expected}, got {status}")
    return (time.thread_time() - started) / len(environs) * 1e6


def fresh(environs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for environ_ in environs:
        environ_["wsgi.input"].seek(0)
    return environs


class RoundTrips:
    """Counts the statements SQLAlchemy executes and the query messages psycopg sends (libpq's trace)."""

    def __init__(self, database: Any) -> None:
        self.statements = 0
        self.trace_path = f"/tmp/intake-profile-{uuid.uuid4().hex}.trace"
        self._engine = database.engine
        self._kept = getattr(database, "kept_connections", None)
        sqlalchemy_event.listen(self._engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.statements += 1

    def __enter__(self) -> RoundTrips:
        self.statements = 0
        self._file = open(self.trace_path, "w")  # noqa: SIM115
        with self._engine.connect() as connection:  # the pool's one connection, traced from now on
            self._pgconns = [connection.connection.dbapi_connection.pgconn]
        if self._kept is not None:  # and this thread's connection kept out of the pool for the intake
            self._pgconns.append(self._kept.connection().pgconn)
        for pgconn in self._pgconns:
            pgconn.trace(self._file.fileno())
        return self

    def __exit__(self, *_exc: Any) -> None:
        for pgconn in self._pgconns:
            pgconn.untrace()
        self._file.close()
        with open(self.trace_path) as file:
            lines = [line for line in file if "\tF\t" in line]
        os.unlink(self.trace_path)
        # Frontend messages that make the server answer: Sync (extended protocol) or Query (simple).
        self.round_trips = sum(1 for line in lines if "\tSync" in line or "\tQuery" in line)
        self.messages = [line.split("\t")[3].strip() for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", choices=["new", "duplicate"], default=None)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    survey_db, baseline_db = f"profile_intake_{suffix}", f"profile_baseline_{suffix}"
    survey_dsn, baseline_dsn = create_database(survey_db), create_database(baseline_db)
    os.environ.update(
        DATABASE_URL=survey_dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        BROKER_URL="memory://",
        CLOSELOOP_WEBHOOK_SECRET=SECRET,
        CLOSELOOP_SECRET_KEY="bench-secret-key",
        BASELINE_DATABASE_DSN=baseline_dsn,
    )
    try:
        import baseline_apps  # noqa: PLC0415

        from closeloop.services import SERVICES  # noqa: PLC0415
        from shared.settings import Settings  # noqa: PLC0415
        from shared.wiring import service_app  # noqa: PLC0415

        baseline_apps.create_table(baseline_dsn)
        wiring = SERVICES["survey"]
        runtime = wiring.bootstrap(Settings.from_env())
        wiring.migrate(runtime)
        survey = wiring.create_app(runtime)
        del service_app
        baseline = baseline_apps.create_app()
        bare_health = bare_health_app()

        events = [crm_event(n) for n in range(args.requests * 4)]
        chunks = [events[i * args.requests : (i + 1) * args.requests] for i in range(4)]
        # Warm up (imports, pools, caches), then measure.
        for n in range(50):
            call(survey, environ("/v1/events", crm_event(n)))
            call(baseline, environ("/json", crm_event(n)))
            call(baseline, environ("/durable", crm_event(n)))
            call(survey, environ("/healthz"))
            call(bare_health, environ("/healthz"))

        if args.profile:
            chunk = [environ("/v1/events", event) for event in chunks[0]]
            if args.profile == "duplicate":
                cpu_per_request(survey, chunk, "202")
                chunk = fresh(chunk)
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            cpu_per_request(survey, chunk, "200" if args.profile == "duplicate" else "202")
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
            return

        figures: dict[str, list[float]] = {
            "json": [],
            "durable": [],
            "new": [],
            "duplicate": [],
            "bare_health": [],
            "health": [],
        }
        for chunk in chunks[:3]:
            bare = [environ("/json", event) for event in chunk]
            figures["json"].append(cpu_per_request(baseline, bare, "202"))
            durable = [environ("/durable", event) for event in chunk]
            figures["durable"].append(cpu_per_request(baseline, durable, "202"))
            survey_events = [environ("/v1/events", event) for event in chunk]
            figures["new"].append(cpu_per_request(survey, survey_events, "202"))
            figures["duplicate"].append(cpu_per_request(survey, fresh(survey_events), "200"))
            probes = [environ("/healthz") for _ in chunk]
            figures["bare_health"].append(cpu_per_request(bare_health, probes, "200"))
            figures["health"].append(cpu_per_request(survey, probes, "200"))

        counted = {}
        for kind, expected in (("new", "202"), ("duplicate", "200")):
            events_ = chunks[3][:20]
            if kind == "duplicate":
                for event in events_:
                    call(survey, environ("/v1/events", event))
            with RoundTrips(runtime.database) as trips:
                for event in events_:
                    status = call(survey, environ("/v1/events", event))
                    assert status.startswith(expected), status
            per_request = len(events_)
            counted[kind] = (trips.statements / per_request, trips.round_trips / per_request, trips.messages)

        load = os.getloadavg()
        print(
            f"CPU per request (thread time, best of 3 passes of {args.requests}); load average "
            f"{load[0]:.2f} {load[1]:.2f}"
        )
        median = {name: min(values) for name, values in figures.items()}
        for name, label in (
            ("json", "(a) bare Flask: parse JSON, answer 202"),
            ("durable", "(b) bare Flask + INSERT ... ON CONFLICT and commit"),
            ("new", "survey POST /v1/events, new"),
            ("duplicate", "survey POST /v1/events, duplicate"),
            ("bare_health", "bare Flask GET /healthz"),
            ("health", "survey GET /healthz"),
        ):
            extra = ""
            if name in ("new", "duplicate"):
                extra = (
                    f"  {median[name] - median['json']:6.0f} us beyond (a); "
                    f"{counted[name][0]:.1f} statements, {counted[name][1]:.1f} round trips"
                )
            if name == "health":
                extra = f"  {median[name] - median['bare_health']:6.0f} us beyond bare Flask"
            print(f"{label:52} {median[name]:7.0f} us{extra}")
        messages = counted["new"][2]
        print("messages to PostgreSQL for one new event:", " ".join(messages[: len(messages) // 20]))
    finally:
        with contextlib.suppress(NameError):
            runtime.database.dispose()  # type: ignore[possibly-undefined]
        for name in (survey_db, baseline_db):
            drop_database(name)


if __name__ == "__main__":
    main()
