"""Where a burst waits in the services-mode loop: when its events passed each stage, from the rows' own times.

    .venv/bin/python bench/loop_stages.py [--events 400]

Starts the loop as bench/loop_services_bench.py does, warms it up, waits a second (its workers go idle, as
before that bench's peak run), posts ``--events`` events as fast as 8 threads can, and once every one was
sent prints, per stage, when the first, the median and the last event passed it, in seconds from the first
post: received (the intake's commit), decided (survey's clock), published (survey's relay handed the
invitation to the broker), taken (dispatch stored its delivery), sent (dispatch recorded the provider's
answer). The stage whose last event comes much later than the one before it is the loop's bottleneck; a
first event late at a stage is a wait for a process to wake (issue 19 found the dispatch worker taking a
burst's first invitation 0.57-0.75 s after it was published: dramatiq's idle backoff).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import loop_services_bench as bench
import psycopg
from machine import machine_line

STAGES = ("received", "decided", "published", "taken by dispatch", "sent")
# One row per event, each stage's time in epoch seconds; the warm-up's events (before ``began``) left out.
STAGE_TIMES = """
    SELECT extract(epoch FROM event.received_at), extract(epoch FROM event.decided_at),
           extract(epoch FROM outbox.published_at), extract(epoch FROM delivery.created_at),
           extract(epoch FROM delivery.updated_at)
    FROM survey_crm_events AS event
    JOIN survey_outbox AS outbox
      ON outbox.consumer = 'dispatch' AND outbox.payload -> 'data' ->> 'invitation_id' = event.invitation_id
    JOIN dispatch_deliveries AS delivery
      ON delivery.source_id = event.invitation_id AND delivery.kind = 'invitation'
    WHERE event.received_at >= to_timestamp(%s)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="loop-stages-") as scratch:
        loop = bench.Loop(Path(scratch))
        try:
            loop.wait_for_sends(loop.post(20), 60)  # warm up every process
            time.sleep(1)
            began = time.time()
            sent = loop.wait_for_sends(loop.post(args.events), 300)
            last_send = max(sent.values())
            with psycopg.connect(loop.dsn) as connection:
                rows = connection.execute(STAGE_TIMES, (began,)).fetchall()
        finally:
            loop.close()
    print(f"{args.events} events, {args.events / (last_send - began):.1f} sends/s (to the simulator's last)")
    print(f"{'stage':20s} {'first s':>8s} {'median s':>9s} {'last s':>7s} {'events':>7s}")
    for number, stage in enumerate(STAGES):
        times = [float(row[number]) - began for row in rows if row[number] is not None]
        print(
            f"{stage:20s} {min(times):8.3f} {statistics.median(times):9.3f} {max(times):7.3f} {len(times):7d}"
        )


if __name__ == "__main__":
    main()
