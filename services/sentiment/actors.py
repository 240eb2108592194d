"""The sentiment service's consumers: plain functions taking an event envelope."""

from __future__ import annotations

from shared.broker import Consumer

from . import service
from .bootstrap import SentimentRuntime


def consumers(runtime: SentimentRuntime) -> list[Consumer]:
    return [
        Consumer(
            "sentiment", "response.submitted", lambda envelope: service.score_response(runtime, envelope)
        )
    ]
