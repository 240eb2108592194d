"""The dispatch service's consumers: plain functions taking an event envelope."""

from __future__ import annotations

from shared.broker import Consumer

from . import service
from .bootstrap import DispatchRuntime


def consumers(runtime: DispatchRuntime) -> list[Consumer]:
    return [
        Consumer(
            "dispatch",
            "invitation.requested",
            lambda envelope: service.schedule_invitation(runtime, envelope),
        )
    ]
