"""The whole loop in services mode, event posted to provider call, beside bare dramatiq on the same broker.

    .venv/bin/python bench/loop_services_bench.py [--events 400] [--seconds 15]

Starts survey and dispatch as infra/Procfile does (gunicorn web, dramatiq worker, clock) on a fresh
PostgreSQL database and a Redis database of the bench's own, with the provider simulator as SendGrid. Then:
- peak: ``--events`` signed events posted as fast as 8 threads can; sends per second from the first post
  to the last send the simulator recorded;
- latency: events posted at half that rate for ``--seconds``; event-to-send p50 and p99;
- baseline: a bare dramatiq worker with the same processes and threads as infra/Procfile's dispatch-worker
  (bench/bare_dramatiq.py) on the same Redis: its rate for as many no-op messages, and its p50/p99 hop
  latency at half its peak rate.
The loop crosses the broker once per survey (invitation.requested), so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import psycopg
import redis
import requests

from shared.signing import generate_secret, signed_headers

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
SECRET = generate_secret()
ADMIN_DSN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
LOOP_PROCESSES = (
    "survey-web",
    "survey-worker",
    "survey-clock",
    "dispatch-web",
    "dispatch-worker",
    "dispatch-clock",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1", **env},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Loop:
    """Survey and dispatch in services mode, the simulator standing in for SendGrid."""

    def __init__(self, scratch: Path) -> None:
        self.database = f"bench_loop_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')
        database_url = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        ports = {name: free_port() for name in ("survey", "dispatch", "simulator", "gateway")}
        self.survey_url = f"http://127.0.0.1:{ports['survey']}"
        self.simulator_url = f"http://127.0.0.1:{ports['simulator']}"
        env_file = scratch / "services.env"
        env_file.write_text(
            "\n".join(
                [
                    f"DATABASE_URL={database_url}/{self.database}",
                    f"BROKER_URL={BROKER_URL}",
                    *(f"{name.upper()}_PORT={port}" for name, port in ports.items()),
                    f"SURVEY_PUBLIC_URL={self.survey_url}",
                    f"DISPATCH_PUBLIC_URL=http://127.0.0.1:{ports['dispatch']}",
                    f"CLOSELOOP_WEBHOOK_SECRET={SECRET}",
                    "CLOSELOOP_SECRET_KEY=bench-secret-key",
                    "CLOSELOOP_TRANSPORT=providers",
                    "SENDGRID_API_KEY=SG.bench",
                    f"SENDGRID_API_BASE_URL={self.simulator_url}",
                    f"TWILIO_ACCOUNT_SID=AC{'5' * 32}",
                    "TWILIO_AUTH_TOKEN=simulator-auth-token",
                    "TWILIO_FROM_NUMBER=+15005550006",
                    f"TWILIO_API_BASE_URL={self.simulator_url}",
                ]
            )
        )
        log = scratch / "loop.log"
        self.simulator = start(
            [str(BIN / "python"), "-m", "closeloop.provider_simulator", "--port", str(ports["simulator"])],
            {},
            log,
        )
        self.honcho = start(
            [
                str(BIN / "honcho"),
                "-f",
                "infra/Procfile",
                "-e",
                str(env_file),
                "-d",
                str(ROOT),
                "start",
                *LOOP_PROCESSES,
            ],
            {},
            log,
        )
        wait_until(lambda: requests.get(f"{self.survey_url}/openapi/survey.json", timeout=2).ok, 90, "survey")
        wait_until(
            lambda: requests.get(f"{self.simulator_url}/_simulator/messages", timeout=2).ok, 30, "simulator"
        )
        self.posted = 0

    def post(self, count: int, threads: int = 8, per_second: float | None = None) -> dict[str, float]:
        """Post ``count`` events for new customers; the time each was posted, by its customer's email."""
        start_number = self.posted
        self.posted += count
        began = time.time()

        def post_one(n: int) -> tuple[str, float]:
            if per_second:
                time.sleep(max(0.0, began + (n - start_number) / per_second - time.time()))
            email = f"loop{n}@example.com"
            event = {
                "id": f"evt-{uuid.uuid4().hex}",
                "type": "purchase.completed",
                "occurred_at": datetime.now().astimezone().isoformat(),
                "customer": {
                    "external_id": f"loop-{n}",
                    "email": email,
                    "name": "Loop Bench",
                    "locale": "en",
                },
                "properties": {"order_id": f"order-{n}"},
            }
            body = json.dumps(event).encode()
            posted_at = time.time()
            response = requests.post(
                f"{self.survey_url}/v1/events",
                data=body,
                headers={"Content-Type": "application/json", **signed_headers(SECRET, body)},
                timeout=30,
            )
            response.raise_for_status()
            return email, posted_at

        with ThreadPoolExecutor(threads) as pool:
            return dict(pool.map(post_one, range(start_number, start_number + count)))

    def sends(self) -> dict[str, float]:
        messages = requests.get(f"{self.simulator_url}/_simulator/messages", timeout=30).json()
        return {m["to"]: datetime.fromisoformat(m["received_at"]).timestamp() for m in messages}

    def wait_for_sends(self, emails: dict[str, float], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.sends()
            if all(email in sent for email in emails):
                return sent
            time.sleep(0.25)
        raise SystemExit(
            f"only {sum(e in self.sends() for e in emails)} of {len(emails)} sent in {timeout} s"
        )

    def close(self) -> None:
        stop(self.honcho)
        stop(self.simulator)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def measure_loop(events: int, seconds: int, scratch: Path) -> dict[str, float]:
    loop = Loop(scratch)
    try:
        loop.wait_for_sends(loop.post(20), 60)  # warm up every process
        began = time.time()
        posted = loop.post(events)
        sent = loop.wait_for_sends(posted, 300)
        peak = events / (max(sent[email] for email in posted) - began)
        posted = loop.post(max(1, int(peak / 2 * seconds)), per_second=peak / 2)
        sent = loop.wait_for_sends(posted, 300)
        latencies = [sent[email] - at for email, at in posted.items()]
    finally:
        loop.close()
    return {"rate": peak, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def worker_options(process: str) -> list[str]:
    """``--processes N --threads M`` as infra/Procfile runs ``process``."""
    line = next(
        line
        for line in (ROOT / "infra" / "Procfile").read_text().splitlines()
        if line.startswith(f"{process}:")
    )
    words = line.split()
    return [
        word for option in ("--processes", "--threads") for word in (option, words[words.index(option) + 1])
    ]


def measure_bare_dramatiq(events: int, seconds: int, scratch: Path) -> dict[str, float]:
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    env = {"BARE_BROKER_URL": BROKER_URL, "PYTHONPATH": str(BENCH)}
    # The same processes and threads as infra/Procfile's dispatch-worker, which consumes the loop's hop.
    worker = start(
        [str(BIN / "dramatiq"), "bare_dramatiq", *worker_options("dispatch-worker")],
        env,
        scratch / "bare.log",
        cwd=BENCH,
    )
    sys.path.insert(0, str(BENCH))
    os.environ["BARE_BROKER_URL"] = BROKER_URL
    import bare_dramatiq  # noqa: PLC0415 (needs the broker URL above before it connects)

    def run(count: int, per_second: float | None) -> list[float]:
        client.delete(bare_dramatiq.RESULTS_KEY)
        began = time.time()
        for n in range(count):
            if per_second:
                time.sleep(max(0.0, began + n / per_second - time.time()))
            bare_dramatiq.hop.send(time.time())
        wait_until(lambda: client.llen(bare_dramatiq.RESULTS_KEY) >= count, 300, "bare dramatiq")
        return [float(value) for value in client.lrange(bare_dramatiq.RESULTS_KEY, 0, -1)]

    try:
        run(20, None)
        began = time.time()
        run(events, None)
        peak = events / (time.time() - began)
        latencies = run(max(1, int(peak / 2 * seconds)), peak / 2)
    finally:
        stop(worker)
        client.flushdb()
    return {"rate": peak, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=400, help="events (and bare messages) for the peak rate"
    )
    parser.add_argument("--seconds", type=int, default=15, help="length of the half-rate latency run")
    args = parser.parse_args()
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"loop-bench-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    bare = measure_bare_dramatiq(args.events, args.seconds, scratch)
    loop = measure_loop(args.events, args.seconds, scratch)
    load = os.getloadavg()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; Redis broker; "
        f"load average {load[0]:.2f} {load[1]:.2f}; logs in {scratch}"
    )
    print(f"{'run':58} {'per s':>8} {'p50 ms':>7} {'p99 ms':>7}  ratio")
    print(
        f"{'bare dramatiq, one hop, no-op actor':58} {bare['rate']:8.0f} {bare['p50'] * 1000:7.0f} "
        f"{bare['p99'] * 1000:7.0f}"
    )
    print(
        f"{'services mode: event posted -> provider call (sends)':58} {loop['rate']:8.1f} "
        f"{loop['p50'] * 1000:7.0f} {loop['p99'] * 1000:7.0f}  {loop['rate'] / bare['rate']:.3f}x "
        f"(target >= 0.25x; p99 target < 1000 ms at half the peak rate)"
    )


if __name__ == "__main__":
    main()
