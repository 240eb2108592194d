"""Resident memory per process of services mode, each beside its bare framework measured in the same run.

    .venv/bin/python bench/memory_bench.py [--quiet 5]

Starts every line of infra/Procfile under honcho, as ``make services`` does, on a fresh PostgreSQL database
and a private redis-server, with the provider simulator as SendGrid and Twilio. Beside them, in the same run:
- a bare Flask app (bench/baseline_apps.py) under the same gunicorn settings (2 sync workers, access log):
  the baseline of each service's web workers and of the gateway's;
- bare dramatiq workers (bench/bare_dramatiq.py) with the same processes and threads (1 x 4 and 1 x 2):
  the baseline of each service's dramatiq worker process;
- a bare clock (BARE_CLOCK below): what every clock needs and no more. A clock wakes on PostgreSQL's NOTIFY
  or each second, reads and updates rows through SQLAlchemy and publishes messages with dramatiq; so the
  bare one holds a SQLAlchemy engine on psycopg connected to the same database, a LISTEN connection and
  dramatiq's RedisBroker on the same Redis, and runs one query a second.
A service's web and worker processes also hold SQLAlchemy's ORM, which neither bare Flask nor bare dramatiq
does (about 18 MiB: more than a third of bare Flask). So two more baselines show how much of each ratio is
that: the same bare Flask app and bare dramatiq worker with an ORM model read through a Session on the same
database (ORM_MODEL below); their ratios are printed beside the ones the target is judged on. And a floor:
the same app and worker reading the same table through SQLAlchemy Core on psycopg, no ORM (CORE_MODEL
below), which no process of ours that reads PostgreSQL with the declared stack can go under; and the floor of
a service's web process: the ORM app served through flask-smorest (BARE_SMOREST_APP below), as every service's
API is, with none of our code.

VmRSS is read twice: at idle (every process started and migrated, then ``--quiet`` seconds of nothing),
and warm (after one event went round the loop: invited by email, answered with a comment, its sentiment
read and its follow-up task listed through the gateway), so imports made on first use are counted too.
For gunicorn the figure is the larger of its two workers (not the arbiter); for dramatiq its worker
process (not the supervising parent); a clock is one process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from machine import machine_line

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent

# Started, stopped and waited for as the loop bench does (bench/ is this script's directory on sys.path).
from loop_services_bench import free_port, start, stop, wait_until  # noqa: E402

ADMIN_DSN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SERVICE_NAMES = ("survey", "dispatch", "sentiment", "followup")
TARGET = 1.5

# The bare clock: the frameworks a clock holds (SQLAlchemy + psycopg, a LISTEN connection, dramatiq's Redis
# broker) and a loop that waits for a notification or a second, then runs one query.
BARE_CLOCK = """
import os, select, sys
import psycopg, sqlalchemy
from dramatiq.brokers.redis import RedisBroker

engine = sqlalchemy.create_engine(os.environ["BARE_DATABASE_URL"], pool_pre_ping=True)
broker = RedisBroker(url=os.environ["BARE_BROKER_URL"])
broker.declare_queue("bare-clock")
listener = psycopg.connect(os.environ["BARE_DATABASE_URL"].replace("+psycopg", ""), autocommit=True)
listener.execute("LISTEN bare_clock")
print("bare clock running", flush=True)
while True:
    select.select([listener.fileno()], [], [], 1.0)
    for _ in listener.notifies(timeout=0):
        pass
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("SELECT 1"))
"""

# What the ORM baselines add to bare Flask and bare dramatiq: one mapped class read through a Session.
ORM_MODEL = """
import os

from sqlalchemy import JSON, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_pre_ping=True)


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "baseline_events"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)


def read(event_id):
    with Session(engine) as session:
        found = session.get(Event, event_id)
        return found.id if found else None
"""

# The floor under any process of ours that reads PostgreSQL: SQLAlchemy Core on psycopg, no ORM (a query
# through an engine). A service's processes cannot hold less than this and still use the declared stack.
CORE_MODEL = """
import os

from sqlalchemy import create_engine, text

engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_pre_ping=True)


def read(event_id):
    with engine.connect() as connection:
        query = text("SELECT id FROM baseline_events WHERE id = :id")
        return connection.execute(query, {"id": event_id}).scalar()
"""
BARE_DB_APP = """
from flask import Flask


def create_app():
    app = Flask("bare-db")

    @app.get("/event/<event_id>")
    def event(event_id):
        return {"id": read(event_id)}

    return app
"""
BARE_DB_WORKER = """
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["BARE_BROKER_URL"]))


@dramatiq.actor(queue_name=os.environ["BARE_QUEUE"], max_retries=0)
def touch(event_id):
    read(event_id)
"""
# Each database layer's bare Flask app and bare dramatiq worker: (name in file and role names, its model).
DB_LAYERS = (("orm", ORM_MODEL), ("core", CORE_MODEL))
# The bare web apps, by port name: Flask alone, on each database layer, and flask-smorest on the ORM.
BARE_WEB_APPS = ("bare", "bare-orm", "bare-core", "bare-smorest")
# The declared web stack's floor: the ORM model served through flask-smorest, as every service's API is (a
# Blueprint, a MethodView answering through a marshmallow schema, the OpenAPI document), no code of ours.
BARE_SMOREST_APP = """
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields


class EventSchema(Schema):
    id = fields.String(allow_none=True)


blp = Blueprint("events", __name__)


@blp.route("/event/<event_id>")
class EventView(MethodView):
    @blp.response(200, EventSchema)
    def get(self, event_id):
        return {"id": read(event_id)}


def create_app():
    app = Flask("bare-smorest")
    app.config.update(
        API_TITLE="bare", API_VERSION="1", OPENAPI_VERSION="3.1.0", OPENAPI_URL_PREFIX="/openapi",
        OPENAPI_JSON_PATH="bare.json",
    )
    Api(app).register_blueprint(blp)
    return app
"""


# --- processes, read from /proc -------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we may read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (parent, cmdline)
    return found


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def _role(cmdline: str) -> str | None:
    """The Procfile line (or bare baseline) a parent process runs, from its command line."""
    if "BARE_DATABASE_URL" in cmdline:
        return "bare-clock"
    if "gunicorn" in cmdline:
        layer = re.search(r"bare_(\w+)_app:", cmdline)
        if layer:
            return f"bare-flask-{layer.group(1)}"
        if "closeloop.gateway" in cmdline:
            return "gateway"
        if "baseline_apps" in cmdline:
            return "bare-flask"
        match = re.search(r"services\.(\w+)\.wsgi", cmdline)
        return f"{match.group(1)}-web" if match else None
    if "dramatiq" in cmdline:
        layer = re.search(r"bare_(\w+)_worker", cmdline)
        if layer:
            return f"bare-dramatiq-{layer.group(1)}"
        if "bare_dramatiq" in cmdline:
            threads = re.search(r"--threads (\d+)", cmdline)
            return f"bare-dramatiq-{threads.group(1)}" if threads else None
        match = re.search(r"services\.(\w+)\.worker", cmdline)
        return f"{match.group(1)}-worker" if match else None
    match = re.search(r"closeloop clock (\w+)", cmdline)
    if match:
        return f"{match.group(1)}-clock"
    return None


def measure(roots: list[int]) -> dict[str, float]:
    """The resident set of each role's measured process (MiB): gunicorn's and dramatiq's largest worker
    (a forked child running the parent's command line), or the process itself for a clock."""
    table = _processes()
    figures: dict[str, float] = {}
    for root in roots:
        for pid in [root, *_descendants(root, table)]:
            parent, cmdline = table[pid]
            role = _role(cmdline)
            if role is None:
                continue
            forked_worker = parent in table and table[parent][1] == cmdline
            is_clock = role.endswith("-clock")
            if not (forked_worker or is_clock):
                continue  # an arbiter or a supervisor
            with contextlib.suppress(OSError, ValueError):
                figures[role] = max(figures.get(role, 0.0), rss_mib(pid))
    return figures


# --- the run --------------------------------------------------------------------------------------------


class Run:
    def __init__(self, scratch: Path) -> None:
        import psycopg

        self.scratch = scratch
        self.processes: list[subprocess.Popen] = []
        self.redis_port = free_port()
        self.processes.append(
            start(
                ["redis-server", "--port", str(self.redis_port), "--save", "", "--appendonly", "no"],
                {},
                scratch / "redis.log",
            )
        )
        self.broker_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.database = f"bench_memory_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')
        self.database_url = (
            ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            + f"/{self.database}"
        )
        self.ports = {name: free_port() for name in ("gateway", "simulator", *BARE_WEB_APPS, *SERVICE_NAMES)}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}

    def start_all(self) -> None:
        from shared.signing import generate_secret

        self.secret = generate_secret()
        env_file = self.scratch / "services.env"
        env_file.write_text(
            "\n".join(
                [
                    f"DATABASE_URL={self.database_url}",
                    f"BROKER_URL={self.broker_url}",
                    *(f"{name.upper()}_PORT={self.ports[name]}" for name in ("gateway", *SERVICE_NAMES)),
                    f"PUBLIC_BASE_URL={self.urls['gateway']}",
                    f"SURVEY_PUBLIC_URL={self.urls['survey']}",
                    f"DISPATCH_PUBLIC_URL={self.urls['dispatch']}",
                    f"CLOSELOOP_WEBHOOK_SECRET={self.secret}",
                    "CLOSELOOP_SECRET_KEY=bench-secret-key",
                    "CLOSELOOP_TRANSPORT=providers",
                    "SENDGRID_API_KEY=SG.bench",
                    f"SENDGRID_API_BASE_URL={self.urls['simulator']}",
                    f"TWILIO_ACCOUNT_SID=AC{'5' * 32}",
                    "TWILIO_AUTH_TOKEN=simulator-auth-token",
                    "TWILIO_FROM_NUMBER=+15005550006",
                    f"TWILIO_API_BASE_URL={self.urls['simulator']}",
                    # Any hour: no quiet hours, no reminders.
                    "QUIET_HOURS=off",
                    "REMINDER_COUNT=0",
                ]
            )
        )
        log = self.scratch / "services.log"
        python = str(BIN / "python")
        self.processes.append(
            start(
                [python, "-m", "closeloop.provider_simulator", "--port", str(self.ports["simulator"])],
                {},
                log,
            )
        )
        self.honcho = start(
            [str(BIN / "honcho"), "-f", "infra/Procfile", "-e", str(env_file), "-d", str(ROOT), "start"],
            {},
            log,
        )
        self.processes.append(self.honcho)
        # The baselines, with the same settings as the Procfile's lines.
        from baseline_apps import create_table  # noqa: PLC0415 (bench/ is the script's folder)

        bare_dsn = self.database_url.replace("+psycopg", "")
        create_table(bare_dsn)
        bare_log = self.scratch / "bare.log"
        self.processes.append(
            start(
                [
                    str(BIN / "gunicorn"),
                    "--bind",
                    f"127.0.0.1:{self.ports['bare']}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    "-",
                    "--pythonpath",
                    str(BENCH),
                    "baseline_apps:create_app()",
                ],
                {"BASELINE_DATABASE_DSN": bare_dsn},
                bare_log,
            )
        )
        for threads in ("4", "2"):
            self.processes.append(
                start(
                    [str(BIN / "dramatiq"), "bare_dramatiq", "--processes", "1", "--threads", threads],
                    {"BARE_BROKER_URL": self.broker_url, "PYTHONPATH": str(BENCH)},
                    bare_log,
                    cwd=BENCH,
                )
            )
        for layer, model in DB_LAYERS:
            (self.scratch / f"bare_{layer}_app.py").write_text(model + BARE_DB_APP)
            (self.scratch / f"bare_{layer}_worker.py").write_text(model + BARE_DB_WORKER)
            layer_env = {
                "BARE_DATABASE_URL": self.database_url,
                "BARE_BROKER_URL": self.broker_url,
                "BARE_QUEUE": f"bare_{layer}",
            }
            self.processes.append(
                start(
                    self._bare_gunicorn(f"bare-{layer}", f"bare_{layer}_app:create_app()"),
                    layer_env,
                    bare_log,
                )
            )
            self.processes.append(
                start(
                    [str(BIN / "dramatiq"), f"bare_{layer}_worker", "--processes", "1", "--threads", "4"],
                    {**layer_env, "PYTHONPATH": str(self.scratch)},
                    bare_log,
                    cwd=self.scratch,
                )
            )
        (self.scratch / "bare_smorest_app.py").write_text(ORM_MODEL + BARE_SMOREST_APP)
        self.processes.append(
            start(
                self._bare_gunicorn("bare-smorest", "bare_smorest_app:create_app()"),
                {"BARE_DATABASE_URL": self.database_url},
                bare_log,
            )
        )
        self.processes.append(
            start(
                [python, "-c", BARE_CLOCK],
                {"BARE_DATABASE_URL": self.database_url, "BARE_BROKER_URL": self.broker_url},
                bare_log,
            )
        )

    def _bare_gunicorn(self, port: str, app: str) -> list[str]:
        """gunicorn serving a bare app written to the scratch folder, as the services' web processes run."""
        bind = f"127.0.0.1:{self.ports[port]}"
        return [str(BIN / "gunicorn"), "--bind", bind, "--workers", "2", "--access-logfile", "-",
                "--pythonpath", str(self.scratch), app]  # fmt: skip

    def wait_started(self) -> None:
        import requests

        for name in SERVICE_NAMES:
            for web in (name, "gateway"):
                wait_until(
                    lambda name=name, web=web: (
                        requests.get(f"{self.urls[web]}/openapi/{name}.json", timeout=2).ok
                    ),
                    120,
                    f"{name}'s app on {web}",
                )
        for bare in BARE_WEB_APPS:
            wait_until(
                lambda bare=bare: requests.get(f"{self.urls[bare]}/", timeout=2).status_code == 404, 60, bare
            )
        log = self.scratch / "services.log"
        wait_until(lambda: log.read_text().count(" clock running ") >= len(SERVICE_NAMES), 120, "the clocks")
        bare_log = self.scratch / "bare.log"
        wait_until(lambda: "bare clock running" in bare_log.read_text(), 60, "the bare clock")
        # Every dramatiq worker process (four services', three bare) has imported its module and started.
        wait_until(
            lambda: (
                log.read_text().count("Worker process is ready for action.") >= len(SERVICE_NAMES)
                and bare_log.read_text().count("Worker process is ready for action.") >= 3
            ),
            120,
            "the dramatiq workers",
        )

    def one_loop(self) -> None:
        """One event round the loop: email, answer with a comment, sentiment, a task read at the gateway."""
        import requests

        from shared.db import Database
        from shared.identity.store import IdentityStore
        from shared.principal import Role
        from shared.signing import signed_headers

        store = IdentityStore(Database(self.database_url))
        _, key = store.create_api_key("memory bench", Role.AGENT, "bench")
        store.database.dispose()
        staff = {"Authorization": f"Bearer {key}"}
        event = {
            "id": f"evt-{uuid.uuid4().hex}",
            "type": "purchase.completed",
            "occurred_at": datetime.now().astimezone().isoformat(),
            "customer": {
                "external_id": "memory-1",
                "email": "memory@example.com",
                "name": "Memory Bench",
                "locale": "en",
            },
            "properties": {"order_id": "order-memory-1"},
        }
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", **signed_headers(self.secret, body)}
        requests.post(
            f"{self.urls['survey']}/v1/events", data=body, headers=headers, timeout=30
        ).raise_for_status()
        messages_url = f"{self.urls['simulator']}/_simulator/messages"
        [email] = wait_until(lambda: requests.get(messages_url, timeout=5).json(), 60, "the email")
        link = re.search(r'href="([^"]+\?score=2)"', email["html"]).group(1)
        requests.get(link, timeout=30).raise_for_status()
        answer = {"score": "2", "comment": "Rude staff and a broken product, I want a refund."}
        requests.post(link.split("?")[0], data=answer, timeout=30).raise_for_status()
        wait_until(
            lambda: [
                task
                for task in requests.get(f"{self.urls['gateway']}/v1/tasks", headers=staff, timeout=5).json()
                if task.get("sentiment")
            ],
            60,
            "the follow-up task with its sentiment",
        )
        # The same reads on every web worker and the bare one: each of gunicorn's two workers warm.
        for _ in range(4):
            for name in SERVICE_NAMES:
                requests.get(f"{self.urls[name]}/openapi/{name}.json", timeout=5)
                requests.get(f"{self.urls['gateway']}/openapi/{name}.json", timeout=5)
            requests.get(f"{self.urls['followup']}/v1/tasks", headers=staff, timeout=5)
            requests.post(f"{self.urls['bare']}/json", json={"id": "warm"}, timeout=5)
            for layer in (*(layer for layer, _ in DB_LAYERS), "smorest"):
                requests.get(f"{self.urls[f'bare-{layer}']}/event/warm", timeout=5)
            requests.get(f"{self.urls['bare-smorest']}/openapi/bare.json", timeout=5)
        from dramatiq import Message
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=self.broker_url)
        for _ in range(4):
            for layer, _ in DB_LAYERS:
                broker.enqueue(
                    Message(
                        queue_name=f"bare_{layer}", actor_name="touch", args=("warm",), kwargs={}, options={}
                    )
                )

    def close(self) -> None:
        import psycopg

        for process in reversed(self.processes):
            stop(process)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


# (process, its bare framework, the same with SQLAlchemy's ORM, what is measured)
ROWS = [
    ("gateway", "bare-flask", "bare-flask-orm", "gunicorn worker (4 apps)"),
    *(
        row
        for name in SERVICE_NAMES
        for row in (
            (f"{name}-web", "bare-flask", "bare-flask-orm", "gunicorn worker"),
            (
                f"{name}-worker",
                f"bare-dramatiq-{4 if name in ('survey', 'dispatch') else 2}",
                "bare-dramatiq-orm",
                "dramatiq worker process",
            ),
            (f"{name}-clock", "bare-clock", "bare-clock", "clock"),
        )
    ),
]
BASELINES = [
    ("bare-flask", "bare Flask, gunicorn 2 sync workers"),
    ("bare-dramatiq-4", "bare dramatiq, 1 process x 4 threads"),
    ("bare-dramatiq-2", "bare dramatiq, 1 process x 2 threads"),
    ("bare-clock", "bare clock: SQLAlchemy+psycopg, LISTEN, RedisBroker"),
    ("bare-flask-orm", "bare Flask + SQLAlchemy ORM, gunicorn 2 sync workers"),
    ("bare-dramatiq-orm", "bare dramatiq + SQLAlchemy ORM, 1 process x 4 threads"),
    ("bare-flask-core", "bare Flask + SQLAlchemy Core, gunicorn 2 sync workers"),
    ("bare-dramatiq-core", "bare dramatiq + SQLAlchemy Core, 1 process x 4 threads"),
    ("bare-flask-smorest", "bare Flask + flask-smorest + ORM, gunicorn 2 sync workers"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds of idle before each reading")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is missing (make prerequisites installs it)")
    sys.path.insert(0, str(BENCH))
    scratch = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    began = time.monotonic()
    run = Run(scratch)
    try:
        run.start_all()
        run.wait_started()
        time.sleep(args.quiet)
        roots = [process.pid for process in run.processes]
        idle = measure(roots)
        run.one_loop()
        time.sleep(args.quiet)
        warm = measure(roots)
    finally:
        run.close()
        if not args.keep_logs:
            shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"{machine_line()}; "
        f"load average {load[0]:.2f} {load[1]:.2f}; {time.monotonic() - began:.0f} s"
        + (f"; logs in {scratch}" if args.keep_logs else "")
    )
    print(
        "resident memory per process (VmRSS, MiB): idle = started, migrated, "
        f"{args.quiet:g} s quiet; warm = after one event went round the loop"
    )
    print(f"{'baseline':58} {'idle':>6} {'warm':>6}")
    for role, label in BASELINES:
        print(f"{label:58} {idle.get(role, 0):6.1f} {warm.get(role, 0):6.1f}")
    print(
        f"{'process (infra/Procfile)':42} {'idle':>6} {'warm':>6} {'base':>6} {'ratio idle':>10} {'warm':>6}"
        f"  {'+ORM':>6} {'ratio warm':>10}"
    )
    over, over_orm = [], []
    for role, baseline, orm_baseline, what in ROWS:
        label = f"{role} {what}"
        mine_idle, mine_warm = idle.get(role), warm.get(role)
        base_idle, base_warm, orm_warm = idle.get(baseline), warm.get(baseline), warm.get(orm_baseline)
        if not (base_idle and base_warm and orm_warm and mine_idle and mine_warm):
            print(f"{label:42} not measured")
            over.append(role)
            continue
        ratio_idle, ratio_warm, ratio_orm = mine_idle / base_idle, mine_warm / base_warm, mine_warm / orm_warm
        if max(ratio_idle, ratio_warm) > TARGET:
            over.append(role)
        if ratio_orm > TARGET:
            over_orm.append(role)
        print(
            f"{label:42} {mine_idle:6.1f} {mine_warm:6.1f} {base_warm:6.1f} "
            f"{ratio_idle:9.2f}x {ratio_warm:5.2f}x  {orm_warm:6.1f} {ratio_orm:9.2f}x"
        )
    print(f"target <= {TARGET}x its bare framework; above it: {', '.join(over) if over else 'none'}")
    print(
        f"beside the bare framework with SQLAlchemy's ORM, above {TARGET}x: "
        f"{', '.join(over_orm) if over_orm else 'none'}"
    )
    # The floors: what reading PostgreSQL through SQLAlchemy Core on psycopg costs before any code of ours,
    # and what the declared stack of a service's web process (flask-smorest on the ORM) costs.
    floors = (
        ("flask", "bare-flask-core", "SQLAlchemy Core on psycopg"),
        ("flask", "bare-flask-orm", "SQLAlchemy ORM on psycopg"),
        ("flask", "bare-flask-smorest", "flask-smorest + SQLAlchemy ORM on psycopg"),
        ("dramatiq", "bare-dramatiq-core", "SQLAlchemy Core on psycopg"),
        ("dramatiq", "bare-dramatiq-orm", "SQLAlchemy ORM on psycopg"),
    )
    for kind, role, stack in floors:
        floor, base = warm.get(role), warm.get("bare-flask" if kind == "flask" else "bare-dramatiq-4")
        if floor and base:
            print(
                f"floor: bare {kind} + {stack} is already {floor / base:.2f}x bare {kind} "
                f"({floor:.1f} vs {base:.1f} MiB warm)"
            )


if __name__ == "__main__":
    main()
