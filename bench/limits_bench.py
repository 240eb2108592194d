"""What the edge costs, and what the limits buy: the longest a single request can keep a worker busy.

    .venv/bin/python bench/limits_bench.py

- Strict JSON (shared.edge) beside json.loads, the baseline, on a typical CRM event and on the largest
  sentiment batch the limits let in.
- A 100,000-deep JSON body: refused, and how fast (json.loads raises RecursionError on it).
- Sentiment scoring: the largest batch the limits accept (SENTIMENT_MAX_BATCH_CHARS), beside the largest the
  old limits accepted (1,000 texts of 5,000 characters), measured on a fraction and scaled.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import time
import timeit
import uuid

from services.sentiment.analysis import analyze, analyze_batch
from shared.edge import HostileInput, strict_json_loads
from shared.settings import Limits

# Words both analyzers have opinions on, so scoring does its full work.
WORDS = [
    *("the", "service", "was", "slow", "and", "agent", "rude", "but", "product", "itself", "is", "great"),
    *("delivery", "fast", "not", "good", "very", "bad", "happy", "disappointed", "refund", "late", "helpful"),
]


def _per_call_us(call, number: int) -> float:
    return timeit.timeit(call, number=number) / number * 1e6


def _text(chars: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(chars // 3))[:chars]


def main() -> None:
    limits = Limits()
    print(f"machine: {platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.2f}")
    event = {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": "purchase.completed",
        "occurred_at": "2026-11-26T10:00:00+00:00",
        "customer": {"external_id": "crm-42", "email": "jane@example.com", "name": "Jane Doe"},
        "properties": {"order_id": "A-1001", "amount": 129.9, "items": [{"sku": "X1", "qty": 2}]},
    }
    body = json.dumps(event).encode()
    base = _per_call_us(lambda: json.loads(body), 20_000)
    strict = _per_call_us(lambda: strict_json_loads(body, limits.json_depth), 20_000)
    print(f"CRM event ({len(body)} B): json.loads {base:.1f} us, strict {strict:.1f} us, "
          f"ratio {strict / base:.2f}")

    rng = random.Random(17)
    per_text = limits.sentiment_text_chars
    texts = [_text(per_text, rng) for _ in range(limits.sentiment_batch_chars // per_text)]
    batch = json.dumps({"texts": texts}).encode()
    base = _per_call_us(lambda: json.loads(batch), 200)
    strict = _per_call_us(lambda: strict_json_loads(batch, limits.json_depth), 200)
    print(f"sentiment batch at its limit ({len(batch)} B): json.loads {base:.0f} us, strict {strict:.0f} us, "
          f"ratio {strict / base:.2f}")

    deep = ("[" * 100_000 + "]" * 100_000).encode()
    started = time.perf_counter()
    with contextlib.suppress(HostileInput):
        strict_json_loads(deep, limits.json_depth)
    print(f"100,000-deep body refused in {(time.perf_counter() - started) * 1000:.1f} ms "
          "(json.loads: RecursionError, a 500 before)")

    analyze("warm up")
    started = time.perf_counter()
    analyze_batch(texts)
    allowed = time.perf_counter() - started
    sample = [_text(5000, rng) for _ in range(20)]
    started = time.perf_counter()
    analyze_batch(sample)
    old_limit = (time.perf_counter() - started) * 1000 / len(sample)
    print(f"sentiment: largest batch allowed ({limits.sentiment_batch_chars:,} chars) scored in "
          f"{allowed:.2f} s; the old largest (1,000 x 5,000 chars) would take about {old_limit:.0f} s")


if __name__ == "__main__":
    main()
