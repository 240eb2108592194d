"""The sentiment service's use cases."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shared.events import new_event, parse_event
from shared.outbox import first_consumption, record_event

from .analysis import analyze
from .bootstrap import SentimentRuntime
from .models import consumed_events, outbox


def score_response(runtime: SentimentRuntime, envelope: dict[str, Any]) -> None:
    """Consumer of ``response.submitted``: score its comment and pass the response on, scored."""
    event, data = parse_event(envelope, "response.submitted")
    # Scored outside the transaction: it is pure CPU and needs no lock held.
    sentiment = asdict(analyze(data["comment"])) if data.get("comment") else None
    with runtime.database.transaction() as session:
        if not first_consumption(session, consumed_events, event["id"], "score_response"):
            return
        # The envelope's JSON data, validated above, passes on as it came; only the sentiment is added.
        record_event(session, outbox, new_event("response.scored", {**event["data"], "sentiment": sentiment}))
