"""Followup rules with no I/O: who gets a task, how urgent it is, who gets a referral request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class NpsGroup(StrEnum):
    DETRACTOR = "detractor"
    PASSIVE = "passive"
    PROMOTER = "promoter"


def nps_group(score: int) -> NpsGroup:
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0 to 10, not {score}")
    if score <= 6:
        return NpsGroup.DETRACTOR
    return NpsGroup.PASSIVE if score <= 8 else NpsGroup.PROMOTER


@dataclass(frozen=True)
class TaskUrgency:
    priority: str  # "high" or "normal"
    due_at: datetime


HIGH_PRIORITY_DUE = timedelta(hours=24)
NORMAL_PRIORITY_DUE = timedelta(hours=72)


def task_urgency(score: int, sentiment_label: str | None, opened_at: datetime) -> TaskUrgency:
    """0-3, or a detractor whose comment reads negative, is called back within a day; others in three."""
    high = score <= 3 or sentiment_label == "negative"
    return TaskUrgency(
        priority="high" if high else "normal",
        due_at=opened_at + (HIGH_PRIORITY_DUE if high else NORMAL_PRIORITY_DUE),
    )
