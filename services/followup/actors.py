"""The followup service's consumers: plain functions taking an event envelope."""

from __future__ import annotations

from shared.broker import Consumer

from . import service
from .bootstrap import FollowupRuntime


def consumers(runtime: FollowupRuntime) -> list[Consumer]:
    return [
        Consumer(
            "followup", "response.scored", lambda envelope: service.act_on_scored_response(runtime, envelope)
        )
    ]
