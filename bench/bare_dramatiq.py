"""The baseline of loop_services_bench.py: a bare dramatiq actor doing nothing but note its message's arrival.

    dramatiq bare_dramatiq --processes 1 --threads 4   (from bench/, BARE_BROKER_URL set)

Each message carries the time it was sent; the actor pushes "(arrival - sent) arrival" to a Redis list, so
the bench reads the rate and the latency of one broker hop with the same processes and threads as the loop's
dispatch worker (read from infra/Procfile).
"""

from __future__ import annotations

import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

BROKER_URL = os.environ.get("BARE_BROKER_URL", "redis://127.0.0.1:6379/15")
RESULTS_KEY = "bare-dramatiq-latencies"

dramatiq.set_broker(RedisBroker(url=BROKER_URL))
_results = redis.Redis.from_url(BROKER_URL)


@dramatiq.actor(queue_name="bare", max_retries=0)
def hop(sent_at: float) -> None:
    arrived = time.time()
    _results.rpush(RESULTS_KEY, f"{arrived - sent_at:.6f} {arrived:.6f}")
