"""Intake over HTTP under gunicorn, each figure beside its baseline from the same run (issue 19).

    .venv/bin/python bench/intake_bench.py [--seconds 6] [--rounds 3] [--workers 2]

Four gunicorn servers, each with the same number of sync workers, on PostgreSQL:
- survey's ``POST /v1/events`` with signed events for new customers, then the same events again, the same
  bodies signed anew (duplicates, as a CRM's retries: the server's workers answer those stored or seen within
  two minutes from the memory of recent events they share, without validating the very bytes stored again;
  the others with one round trip);
- (a) a bare Flask endpoint that parses the JSON and answers 202: the framework's limit;
- (b) a bare Flask endpoint that also stores the event with one ``INSERT ... ON CONFLICT`` and a commit:
  the limit of an intake that keeps what it accepts.
wrk (Debian's package) posts pre-signed events over 16 connections; each figure is the median of
``--rounds`` interleaved runs. Also printed: each server's worker memory (resident set) at idle.
``BENCH_REDIS`` names survey's broker (default ``redis://127.0.0.1:6379/14``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from machine import machine_line

from shared.signing import generate_secret, signed_headers

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SECRET = generate_secret()
ADMIN_DSN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
CONNECTIONS = 16
WRK_THREADS = 2


@dataclass
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    failures: int


def crm_event(n: int) -> dict:
    return {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": "purchase.completed",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "customer": {
            "external_id": f"bench-{uuid.uuid4().hex}",
            "email": f"bench{n}@example.com",
            "name": "Bench Customer",
            "locale": "en",
        },
        "properties": {"order_id": f"order-{n}", "amount": 42.5},
    }


def write_requests(path: Path, events: list[dict]) -> None:
    # Signed just before each run: Standard Webhooks allows five minutes.
    with path.open("w") as file:
        for event in events:
            body = json.dumps(event, separators=(",", ":"))
            headers = signed_headers(SECRET, body.encode())
            file.write(
                f"{headers['webhook-id']}\t{headers['webhook-timestamp']}\t{headers['webhook-signature']}\t{body}\n"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A gunicorn server on a free port, with its workers' pids."""

    def __init__(self, name: str, app: str, env: dict[str, str], workers: int, pythonpath: str | None = None):
        self.name = name
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        if pythonpath:
            command += ["--pythonpath", pythonpath]
        self.process = subprocess.Popen([*command, app], cwd=ROOT, env={**os.environ, **env})
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: gunicorn exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    time.sleep(1.0)  # let every worker boot, not only the first
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name}: not listening after 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_memory_mib(self) -> float:
        """The largest resident set among the workers (children of the gunicorn arbiter)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        sizes = []
        for pid in children:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return max(sizes)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wrk(url: str, path: str, requests_file: Path, seconds: int) -> Run:
    output = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "intake_requests.lua"),
            url,
            "--",
            str(requests_file),
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_THREADS": str(WRK_THREADS)},
    ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return Run(
        rate=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        failures=figures["non_2xx"] + figures["socket_errors"],
    )


def create_database(name: str) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="length of each run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved runs per figure (the median is printed)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk (make bench installs it)")

    suffix = uuid.uuid4().hex[:8]
    survey_db, baseline_db = f"bench_intake_{suffix}", f"bench_baseline_{suffix}"
    survey_dsn, baseline_dsn = create_database(survey_db), create_database(baseline_db)
    survey_url = survey_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    from baseline_apps import create_table  # noqa: PLC0415 (bench/ is the script's folder, on sys.path)

    create_table(baseline_dsn)
    survey_env = {
        "DATABASE_URL": survey_url,
        "BROKER_URL": os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14"),
        "CLOSELOOP_WEBHOOK_SECRET": SECRET,
        "CLOSELOOP_SECRET_KEY": "bench-secret-key",
    }
    subprocess.run(
        [sys.executable, "-m", "closeloop", "migrate", "survey"],
        cwd=ROOT,
        check=True,
        env={**os.environ, **survey_env},
        stdout=subprocess.DEVNULL,
    )
    servers: list[Server] = []
    scratch = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    try:
        survey = Server("survey", "services.survey.wsgi:app", survey_env, args.workers)
        servers.append(survey)
        baseline = Server(
            "baseline",
            "baseline_apps:create_app()",
            {"BASELINE_DATABASE_DSN": baseline_dsn},
            args.workers,
            pythonpath=str(BENCH),
        )
        servers.append(baseline)
        memory = {"survey": survey.worker_memory_mib(), "baseline": baseline.worker_memory_mib()}

        # Enough new events that no run wraps around: the bare endpoint's rate bounds them all.
        per_run = 40_000
        runs: dict[str, list[Run]] = {"new": [], "duplicate": [], "json": [], "durable": []}
        for round_number in range(args.rounds):
            events = [crm_event(n) for n in range(per_run)]
            requests_file = scratch / f"round-{round_number}.tsv"
            write_requests(requests_file, events)
            runs["json"].append(wrk(baseline.url, "/json", requests_file, args.seconds))
            runs["new"].append(wrk(survey.url, "/v1/events", requests_file, args.seconds))
            runs["durable"].append(wrk(baseline.url, "/durable", requests_file, args.seconds))
            # Duplicates: the events the new-event run accepted, signed anew.
            accepted = events[: int(runs["new"][-1].rate * args.seconds * 0.9)]
            write_requests(requests_file, accepted)
            runs["duplicate"].append(wrk(survey.url, "/v1/events", requests_file, args.seconds))
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        drop_database(survey_db)
        drop_database(baseline_db)

    def median(name: str) -> Run:
        chosen = runs[name]
        return Run(
            rate=statistics.median(r.rate for r in chosen),
            p50_ms=statistics.median(r.p50_ms for r in chosen),
            p99_ms=statistics.median(r.p99_ms for r in chosen),
            failures=sum(r.failures for r in chosen),
        )

    json_, durable, new, duplicate = median("json"), median("durable"), median("new"), median("duplicate")
    load = os.getloadavg()
    print(
        f"{machine_line()}; "
        f"gunicorn {args.workers} sync workers per server; "
        f"wrk {WRK_THREADS} threads, {CONNECTIONS} connections; "
        f"median of {args.rounds} interleaved {args.seconds} s runs; "
        f"load average {load[0]:.2f} {load[1]:.2f}"
    )
    print(f"{'run':58} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'fails':>6}  ratio")
    rows = [
        ("(a) bare Flask: parse JSON, answer 202", json_, None),
        ("(b) bare Flask + INSERT ... ON CONFLICT and commit", durable, None),
        ("survey POST /v1/events, new customer, vs (b) durable limit", new, durable),
        ("survey POST /v1/events, new customer, vs (a) bare JSON", new, json_),
        ("survey POST /v1/events, duplicate, vs (a) bare JSON", duplicate, json_),
    ]
    targets = {2: 0.7, 3: 0.3, 4: 0.6}
    for index, (label, run, against) in enumerate(rows):
        ratio = f"{run.rate / against.rate:.2f}x (target >= {targets[index]}x)" if against else ""
        print(f"{label:58} {run.rate:8.0f} {run.p50_ms:7.1f} {run.p99_ms:7.1f} {run.failures:6d}  {ratio}")
    print(
        f"\nworker memory at idle (largest resident set): survey {memory['survey']:.0f} MiB, "
        f"bare Flask {memory['baseline']:.0f} MiB, "
        f"{memory['survey'] / memory['baseline']:.2f}x (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
