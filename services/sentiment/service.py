"""The sentiment service's use cases."""

from __future__ import annotations

from dataclasses import asdict

from shared.consumers import ReceivedEvent, consumes
from shared.unit_of_work import UnitOfWork

from .analysis import analyze
from .runtime import SentimentRuntime


@consumes("response.submitted")
def score_response(runtime: SentimentRuntime, uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Score a submitted response's comment and pass the response on, scored."""
    comment = event.data.get("comment")
    sentiment = asdict(analyze(comment)) if comment else None
    # The event's JSON data, validated, passes on as it came; only the sentiment is added.
    uow.emit("response.scored", {**event.payload, "sentiment": sentiment})
