"""The survey clock's decisions, in this process: CPU per decided CRM event, without the loop around them.

    .venv/bin/python bench/decide_profile.py [--events 400] [--rounds 5] [--profile]

Stores ``--events`` CRM events (intake_bench.py's) through ``accept_crm_event`` on a PostgreSQL database of
its own, then times ``decide_received_events`` deciding them all (the process's CPU: the deciders are
threads), round after round. Beside it, the same rounds with each invitation's outbox row inserted as it
is emitted (``emit_at_commit`` off, as before issue 19), alternated in order: both figures from one run.
``--profile`` prints cProfile's top functions for one round of the current code, decided by one thread.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from intake_bench import create_database, crm_event, drop_database  # noqa: E402

from shared.signing import generate_secret  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    name = f"profile_decide_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    os.environ.update(
        DATABASE_URL=dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        BROKER_URL="memory://",
        CLOSELOOP_WEBHOOK_SECRET=generate_secret(),
        CLOSELOOP_SECRET_KEY="bench-secret-key",
    )
    from closeloop.services import SERVICES  # noqa: PLC0415
    from services.survey import service  # noqa: PLC0415
    from shared.settings import Settings  # noqa: PLC0415
    from shared.unit_of_work import SqlUnitOfWork  # noqa: PLC0415

    wiring = SERVICES["survey"]
    runtime = wiring.bootstrap(Settings.from_env())
    current = SqlUnitOfWork.emit_at_commit

    def store() -> None:
        for n in range(args.events):
            service.accept_crm_event(runtime, crm_event(n))

    def cpu_per_decision(batched_outbox: bool) -> float:
        SqlUnitOfWork.emit_at_commit = current if batched_outbox else lambda self: None  # type: ignore[method-assign]
        store()
        start, decided = time.process_time(), 0
        while count := service.decide_received_events(runtime, 100):
            decided += count
        assert decided == args.events, decided
        return (time.process_time() - start) / decided * 1000

    try:
        wiring.migrate(runtime)
        cpu_per_decision(True)  # warm up: imports, pools, caches
        if args.profile:
            store()
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            while service._decide_batch(runtime, 100):  # one thread: the profiler sees it whole
                pass
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(25)
            return
        figures: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for batched in (True, False) if round_ % 2 else (False, True):
                figures[batched].append(cpu_per_decision(batched))
        new, old = statistics.median(figures[True]), statistics.median(figures[False])
        print(f"CPU ms per decided event (median of {args.rounds} rounds of {args.events}):")
        print(f"  outbox rows inserted at commit, one statement (current) {new:7.3f}")
        print(f"  one outbox INSERT per emitted event (before issue 19)   {old:7.3f}   ratio {new / old:.2f}")
        print(f"load average {os.getloadavg()}")
    finally:
        SqlUnitOfWork.emit_at_commit = current  # type: ignore[method-assign]
        runtime.database.dispose()
        drop_database(name)


if __name__ == "__main__":
    main()
