"""The survey service's consumers: plain functions taking an event envelope."""

from __future__ import annotations

from shared.broker import Consumer

from . import service
from .bootstrap import SurveyRuntime


def consumers(runtime: SurveyRuntime) -> list[Consumer]:
    return [Consumer("survey", "sms.received", lambda envelope: service.record_sms_answer(runtime, envelope))]
