"""Followup rules with no I/O: how urgent a task is and how a task moves through the success team's queue.

Who is a detractor, a passive or a promoter is ``shared.nps``'s rule, not this module's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar


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

# Tasks someone still has to act on: only these can be claimed, assigned or be overdue.
ACTIVE_STATUSES = frozenset({TaskStatus.OPEN, TaskStatus.IN_PROGRESS})


class InvalidTransition(Exception):
    """A move the task state machine forbids."""

    def __init__(self, from_status: TaskStatus, to_status: TaskStatus) -> None:
        article = "an" if from_status[0] in "aeiou" else "a"
        super().__init__(f"{article} {from_status} task cannot become {to_status}")
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


class ResolutionCode(StrEnum):
    """How a resolved task ended; a short fixed list, so the team's outcomes can be counted."""

    CONTACTED_RESOLVED = "contacted_resolved"
    CONTACTED_UNRESOLVED = "contacted_unresolved"
    UNREACHABLE = "unreachable"
    NOT_NEEDED = "not_needed"


class InvalidResolution(ValueError):
    """A resolution code missing where a task is resolved, or given where it is not."""


def resolution_for(requested: str, code: str | None) -> ResolutionCode | None:
    """The resolution code a move to ``requested`` records: required to resolve, refused otherwise."""
    if TaskStatus(requested) is TaskStatus.RESOLVED:
        if code is None:
            raise InvalidResolution("resolving a task needs a resolution code")
        return ResolutionCode(code)
    if code is not None:
        raise InvalidResolution("a resolution code is given only when resolving a task")
    return None


class TaskTaken(Exception):
    """The task belongs to someone else: a claim must not take it from them."""


def claimed_status(status: str, owner_id: str | None, claimant_id: str) -> TaskStatus:
    """The status a task takes when ``claimant_id`` claims it: an open one is in progress from then on.

    A task its claimant already owns may be claimed again (a task assigned to them, or a double click);
    one owned by someone else raises TaskTaken; one nobody has to act on any more, InvalidTransition.
    """
    if owner_id is not None and owner_id != claimant_id:
        raise TaskTaken
    if TaskStatus(status) is TaskStatus.IN_PROGRESS:
        return TaskStatus.IN_PROGRESS
    return transition(status, TaskStatus.IN_PROGRESS)


class TaskPriority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"


@dataclass(frozen=True)
class Sla:
    """How long the team has to act on a task of each priority (settings FOLLOWUP_SLA_*_HOURS)."""

    high: timedelta
    normal: timedelta

    @classmethod
    def from_hours(cls, high: float, normal: float) -> Sla:
        return cls(timedelta(hours=high), timedelta(hours=normal))

    def due(self, priority: TaskPriority, opened_at: datetime) -> datetime:
        return opened_at + (self.high if priority is TaskPriority.HIGH else self.normal)


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


def task_urgency(score: int, sentiment_label: str | None, opened_at: datetime, sla: Sla) -> TaskUrgency:
    """0-3, or a detractor whose comment reads negative, is high priority; the SLA says when it is due."""
    priority = TaskPriority.HIGH if score <= 3 or sentiment_label == "negative" else TaskPriority.NORMAL
    return TaskUrgency(priority, sla.due(priority, opened_at))


def is_overdue(status: str, due_at: datetime, now: datetime) -> bool:
    """Past its due time with someone still to act on it; a resolved, closed or dismissed task never is."""
    return TaskStatus(status) in ACTIVE_STATUSES and due_at < now


@dataclass(frozen=True)
class StaffMember:
    """A member of the success team as followup knows them: the user id and the name to show."""

    id: str
    name: str


Member = TypeVar("Member")


def next_in_rotation(members: Sequence[Member], turn: int) -> Member | None:
    """Round-robin: the member whose turn ``turn`` is (the first turn is 1), None for a team of nobody."""
    return members[(turn - 1) % len(members)] if members else None


class TimelineKind(StrEnum):
    """What a task's timeline records."""

    CREATED = "created"
    # A later revision of the response (a comment after the score) changed the task.
    REVISED = "revised"
    ASSIGNED = "assigned"
    CLAIMED = "claimed"
    STATUS_CHANGED = "status_changed"
    NOTE_ADDED = "note_added"


class TaskSort(StrEnum):
    DUE_AT = "due_at"
    CREATED_AT = "created_at"
    SCORE = "score"
    # High before normal when descending, then the earliest due.
    PRIORITY = "priority"


# The order each sort key means when none is asked for: the soonest due, the newest, the lowest score,
# the most urgent first.
DEFAULT_DESCENDING: Mapping[TaskSort, bool] = {
    TaskSort.DUE_AT: False,
    TaskSort.CREATED_AT: True,
    TaskSort.SCORE: False,
    TaskSort.PRIORITY: True,
}

# Values of the queue's owner filter besides a user id.
OWNER_ME = "me"
OWNER_NONE = "none"


@dataclass(frozen=True)
class TaskQuery:
    """A page of the queue: the filters (None: any), the order and the page (the first is 1).

    ``owner`` is a user id or OWNER_NONE for unassigned tasks; ``overdue`` True keeps only overdue tasks,
    False only those that are not.
    """

    statuses: frozenset[TaskStatus] = ACTIVE_STATUSES
    owner: str | None = None
    team_id: str | None = None
    touchpoint: str | None = None
    priority: TaskPriority | None = None
    overdue: bool | None = None
    sort: TaskSort = TaskSort.PRIORITY
    descending: bool | None = None
    page: int = 1
    page_size: int = 100

    @property
    def is_descending(self) -> bool:
        return DEFAULT_DESCENDING[self.sort] if self.descending is None else self.descending

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size
