"""Per event, in each process of the services-mode loop: SQL statements, commits, messages, CPU time.

    .venv/bin/python bench/loop_counts.py [--events 300]

Starts the loop as bench/loop_services_bench.py does (BENCH_REDIS, BENCH_POSTGRES), every process counting
through bench/loop_counts_hooks; posts ``--events`` events at once and prints, per process kind, what each
event cost between the first post and the last send: counts that the machine's load does not change, and
CPU milliseconds (which it does, a little), with PostgreSQL's backends and the bench's own client beside.
Runs one after the other on a shared machine differ by some 10-20% in CPU: compare runs alternated in order.

    LOOP_PROFILE="clock survey" .venv/bin/python bench/loop_counts.py   (or "dispatch.worker", ...)

also profiles the processes whose command line holds that text (cProfile on each thread's CPU clock, see
loop_counts_hooks): $scratch/counts/<pid>.prof, read with ``python -m pstats``. Profiling inflates pure-Python
call chains several times over (a Jinja render looks 10x its cost): time a suspect alone before cutting it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import loop_services_bench as bench
import psycopg

KINDS = (
    ("services.survey.wsgi", "survey-web"),
    ("services.dispatch.wsgi", "dispatch-web"),
    ("services.survey.worker", "survey-worker"),
    ("services.dispatch.worker", "dispatch-worker"),
    ("clock survey", "survey-clock"),
    ("clock dispatch", "dispatch-clock"),
    ("provider_simulator", "simulator"),
)
# What the bench itself runs, apart from the system measured (as bench/loop_services_bench.py splits them).
HARNESS = ("simulator",)


def kind_of(argv: str) -> str | None:
    return next((kind for key, kind in KINDS if key in argv), None)


def snapshot(counts_dir: Path, database: str) -> dict:
    processes = {}
    for path in counts_dir.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):  # a file being replaced
            processes[path.stem] = json.loads(path.read_text())
    with psycopg.connect(bench.ADMIN_DSN, autocommit=True) as connection:
        backends = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        postgres = {pid: bench.pid_cpu(pid) for (pid,) in backends.fetchall()}
    return {"processes": processes, "postgres": postgres, "client": sum(os.times()[:2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    events = parser.parse_args().events
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"loop-counts-{uuid.uuid4().hex[:8]}"
    counts_dir = scratch / "counts"
    counts_dir.mkdir(parents=True)
    hooks = str(bench.BENCH / "loop_counts_hooks")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [hooks, os.environ.get("PYTHONPATH")]))
    os.environ["LOOP_COUNTS_DIR"] = str(counts_dir)
    loop = bench.Loop(scratch)
    try:
        loop.wait_for_sends(loop.post(20), 60)
        time.sleep(2)
        before = snapshot(counts_dir, loop.database)
        began = time.time()
        sent = loop.wait_for_sends(loop.post(events), 300)
        rate = events / (max(sent.values()) - began)
        time.sleep(0.6)
        after = snapshot(counts_dir, loop.database)
    finally:
        loop.close()
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for pid, data in after["processes"].items():
        kind = kind_of(data.get("argv", ""))
        if kind is None:
            continue
        earlier = before["processes"].get(pid, {})
        for key, value in data.items():
            if isinstance(value, int | float):
                kinds[kind][key] += value - earlier.get(key, 0)
    load = os.getloadavg()
    print(f"{events} events, {rate:.1f} sends/s; load average {load[0]:.2f} {load[1]:.2f}; logs in {scratch}")
    system = harness = 0.0
    for kind, counts in sorted(kinds.items()):
        if kind in HARNESS:
            harness += counts["cpu"]
        else:
            system += counts["cpu"]
        print(
            f"{kind:16} CPU {counts['cpu'] / events * 1000:5.2f} ms, "
            f"{counts['sql'] / events:5.2f} statements, {counts['commit'] / events:4.2f} commits per event"
        )
        for key in sorted(key for key in counts if ":" in key and counts[key] >= events / 100):
            print(f"    {key:60} {counts[key] / events:7.3f}")
    postgres = sum(cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())
    client = after["client"] - before["client"]
    print(
        f"PostgreSQL backends CPU {postgres / events * 1000:.2f} ms, "
        f"bench client {client / events * 1000:.2f} ms; per event: "
        f"system {(system + postgres) / events * 1000:.2f} ms (the loop's processes and PostgreSQL), "
        f"harness {(harness + client) / events * 1000:.2f} ms (simulator and bench client), "
        f"all {(system + postgres + harness + client) / events * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
