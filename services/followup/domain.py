"""Followup rules with no I/O: how urgent a task is and how a task moves through the success team's queue.

Who is a detractor, a passive or a promoter is ``shared.nps``'s rule, not this module's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class TaskStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    # The detractor later raised the score to a passive or promoter one: nothing left to follow up.
    DISMISSED = "dismissed"


# Every move a task may make, written once: the consumer and the success team's queue both ask here.
TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.DISMISSED}),
    # Only an open task is dismissed: once someone works on it, a better score does not take it away.
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.RESOLVED}),
    TaskStatus.RESOLVED: frozenset({TaskStatus.CLOSED, TaskStatus.OPEN}),
    TaskStatus.CLOSED: frozenset({TaskStatus.OPEN}),
    TaskStatus.DISMISSED: frozenset(),
}


class InvalidTransition(Exception):
    """A move the task state machine forbids."""

    def __init__(self, from_status: TaskStatus, to_status: TaskStatus) -> None:
        super().__init__(f"a {from_status} task cannot become {to_status}")
        self.from_status = from_status
        self.to_status = to_status


def allowed_moves(status: str) -> frozenset[TaskStatus]:
    """The statuses a task with ``status`` may move to."""
    return TASK_TRANSITIONS[TaskStatus(status)]


def transition(current: str, requested: str) -> TaskStatus:
    """The status a task takes moving from ``current`` to ``requested``; InvalidTransition if forbidden."""
    current, requested = TaskStatus(current), TaskStatus(requested)
    if requested not in TASK_TRANSITIONS[current]:
        raise InvalidTransition(current, requested)
    return requested


class TaskPriority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"


@dataclass(frozen=True)
class TaskUrgency:
    priority: TaskPriority
    due_at: datetime

    def revised(self, revision: TaskUrgency) -> TaskUrgency:
        """A revision may make a task more urgent, never give the team more time than first promised."""
        high = TaskPriority.HIGH in (self.priority, revision.priority)
        return TaskUrgency(
            TaskPriority.HIGH if high else TaskPriority.NORMAL, min(self.due_at, revision.due_at)
        )


HIGH_PRIORITY_DUE = timedelta(hours=24)
NORMAL_PRIORITY_DUE = timedelta(hours=72)


def task_urgency(score: int, sentiment_label: str | None, opened_at: datetime) -> TaskUrgency:
    """0-3, or a detractor whose comment reads negative, is called back within a day; others in three."""
    high = score <= 3 or sentiment_label == "negative"
    return TaskUrgency(
        priority=TaskPriority.HIGH if high else TaskPriority.NORMAL,
        due_at=opened_at + (HIGH_PRIORITY_DUE if high else NORMAL_PRIORITY_DUE),
    )
