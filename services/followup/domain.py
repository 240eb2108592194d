"""Followup rules with no I/O: what an answer calls for, how urgent a task is, how a task moves through the
success team's queue, and the referral links promoters get.

Who is a detractor, a passive or a promoter is ``shared.nps``'s rule, not this module's.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.channels import Channel
from shared.nps import NpsCategory, nps_category
from shared.sms import E164


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


# dispatch sends the message as written, by email or SMS (shared.events.FollowupResolvedSchema).
MAX_CLOSE_LOOP_MESSAGE = 1000


class InvalidCloseLoopMessage(ValueError):
    """A message to the customer given where a task is not being resolved, or too long to send."""


def close_loop_message_for(requested: str, message: str | None) -> str | None:
    """The words sent to the customer as a task is resolved: blank is none, and only a resolution has any."""
    message = (message or "").strip() or None
    if message is None:
        return None
    if TaskStatus(requested) is not TaskStatus.RESOLVED:
        raise InvalidCloseLoopMessage("a message to the customer is sent only when resolving a task")
    if len(message) > MAX_CLOSE_LOOP_MESSAGE:
        raise InvalidCloseLoopMessage(
            f"a message to the customer has at most {MAX_CLOSE_LOOP_MESSAGE} characters"
        )
    return message


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
    # A passive's task (FOLLOWUP_PASSIVES=task): worth a call when the urgent work is done.
    LOW = "low"


# The most urgent first is the highest rank: the queue's default order and a revision's rule both use it.
PRIORITY_RANK: Mapping[TaskPriority, int] = {
    TaskPriority.LOW: 0,
    TaskPriority.NORMAL: 1,
    TaskPriority.HIGH: 2,
}


@dataclass(frozen=True)
class Sla:
    """How long the team has to act on a task of each priority (settings FOLLOWUP_SLA_*_HOURS)."""

    high: timedelta
    normal: timedelta
    low: timedelta = timedelta(hours=168)

    @classmethod
    def from_hours(cls, high: float, normal: float, low: float = 168.0) -> Sla:
        return cls(timedelta(hours=high), timedelta(hours=normal), timedelta(hours=low))

    def due(self, priority: TaskPriority, opened_at: datetime) -> datetime:
        allowed = {TaskPriority.HIGH: self.high, TaskPriority.NORMAL: self.normal, TaskPriority.LOW: self.low}
        return opened_at + allowed[TaskPriority(priority)]


@dataclass(frozen=True)
class TaskUrgency:
    priority: TaskPriority
    due_at: datetime

    def revised(self, revision: TaskUrgency) -> TaskUrgency:
        """A revision may make a task more urgent, never give the team more time than first promised."""
        priority = max(self.priority, revision.priority, key=lambda priority: PRIORITY_RANK[priority])
        return TaskUrgency(priority, min(self.due_at, revision.due_at))


def task_urgency(score: int, sentiment_label: str | None, opened_at: datetime, sla: Sla) -> TaskUrgency:
    """0-3, or a detractor whose comment reads negative, is high priority; the SLA says when it is due."""
    priority = TaskPriority.HIGH if score <= 3 or sentiment_label == "negative" else TaskPriority.NORMAL
    return TaskUrgency(priority, sla.due(priority, opened_at))


# --- What an answer calls for ----------------------------------------------------------------------------


class PassivePolicy(StrEnum):
    """What a passive's answer (7-8) opens (setting FOLLOWUP_PASSIVES)."""

    IGNORE = "ignore"
    TASK = "task"


class TaskKind(StrEnum):
    """Why a task is open: the answer that calls for it."""

    DETRACTOR = "detractor"
    # A promoter's score with a clearly negative comment: the customer may have misread the scale, or be
    # happy overall with one thing that went wrong. A person looks before anyone asks them for a referral.
    MISMATCH = "mismatch"
    PASSIVE = "passive"


# A comment is clearly negative when the analyzer labels it so and its polarity is at most this (-1 to 1):
# a label alone flips on one grumpy word in an otherwise warm comment.
MISMATCH_POLARITY = -0.3


def is_mismatch(score: int, sentiment: Mapping[str, Any] | None) -> bool:
    """A promoter's score (9-10) with a comment that reads clearly negative."""
    if nps_category(score) is not NpsCategory.PROMOTER or not sentiment:
        return False
    polarity = sentiment.get("polarity")
    return sentiment.get("label") == "negative" and polarity is not None and polarity <= MISMATCH_POLARITY


@dataclass(frozen=True)
class FollowupPlan:
    """What an answer calls for: a task of some kind (None: no task), and whether to ask for a referral."""

    task: TaskKind | None
    referral: bool


def plan_for(score: int, sentiment: Mapping[str, Any] | None, passives: str) -> FollowupPlan:
    """Detractors get a task; passives one when the settings ask for it; promoters a referral request,
    unless their comment contradicts their score (a mismatch task instead). Reviews are asked of everyone,
    whatever the score, and are not this rule's business."""
    category = nps_category(score)
    if category is NpsCategory.DETRACTOR:
        return FollowupPlan(TaskKind.DETRACTOR, referral=False)
    if category is NpsCategory.PASSIVE:
        task = TaskKind.PASSIVE if PassivePolicy(passives) is PassivePolicy.TASK else None
        return FollowupPlan(task, referral=False)
    if is_mismatch(score, sentiment):
        return FollowupPlan(TaskKind.MISMATCH, referral=False)
    return FollowupPlan(None, referral=True)


def urgency_for(
    kind: TaskKind, score: int, sentiment_label: str | None, opened_at: datetime, sla: Sla
) -> TaskUrgency:
    """A detractor's task by ``task_urgency``; a mismatch is normal (the score says the customer is
    satisfied: worth a look, not an emergency); a passive's task is low."""
    if kind is TaskKind.DETRACTOR:
        return task_urgency(score, sentiment_label, opened_at, sla)
    priority = TaskPriority.NORMAL if kind is TaskKind.MISMATCH else TaskPriority.LOW
    return TaskUrgency(priority, sla.due(priority, opened_at))


def is_revived(status: str) -> bool:
    """A dismissed task opens again when a later answer calls for a task again (5, then 9, then 3).

    Not a move of the state machine: Closeloop dismissed it and only Closeloop brings it back, so no one on
    the team gets a button for it.
    """
    return TaskStatus(status) is TaskStatus.DISMISSED


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


# --- Referral and review requests ------------------------------------------------------------------------


class ReferralStatus(StrEnum):
    # Asked for: sent once ``sent_at`` is set (referral requests wait a little, and need a landing URL).
    REQUESTED = "requested"
    # The answer changed and no longer calls for a referral: an unsent request is never sent.
    WITHDRAWN = "withdrawn"
    # Someone came through the link and the CRM told us (referral.code_used).
    CONVERTED = "converted"


# 96 random bits: unguessable, and short enough for an SMS.
REFERRAL_CODE_BYTES = 12
_REFERRAL_CODE = re.compile(r"[A-Za-z0-9_-]{8,32}")
# What a click keeps of the browser's User-Agent header.
MAX_USER_AGENT = 200


def new_referral_code() -> str:
    return secrets.token_urlsafe(REFERRAL_CODE_BYTES)


def is_referral_code(code: str) -> bool:
    """Whether ``code`` has the form of our codes: anything else (a NUL byte, 5,000 characters) is unknown
    without asking the database."""
    return _REFERRAL_CODE.fullmatch(code) is not None


def referral_link(followup_public_url: str, code: str) -> str:
    """The link a promoter is sent: followup counts the click, then sends them on to the landing page."""
    return f"{followup_public_url.rstrip('/')}/r/{code}"


def landing_url(referral_url: str, code: str) -> str:
    """``referral_url`` (FOLLOWUP_REFERRAL_URL) with ``ref=<code>``, replacing any ``ref`` it had."""
    parts = urlsplit(referral_url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "ref"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("ref", code)])))


def user_agent_excerpt(user_agent: str | None) -> str | None:
    """A click's User-Agent as stored: cut short, and without NUL, which PostgreSQL cannot store."""
    if not user_agent:
        return None
    return user_agent.replace("\x00", "\ufffd")[:MAX_USER_AGENT]


def request_send_at(
    created_at: datetime, delay: timedelta, email: str | None, phone: str | None
) -> datetime | None:
    """When a referral or review request goes to dispatch; None when it never does (no email nor phone).

    The delay lets what often follows a score (an SMS comment, the answer page's comment box) withdraw a
    referral request or change a review request's wording before anything is sent.
    """
    return created_at + delay if email or phone else None


def preferred_channel(answered_on: str | None, email: str | None, phone: str | None) -> Channel:
    """followup does not know the customer's preferred channel: the one they answered on is a good guess
    when we can reach them there; dispatch falls back to the other."""
    if (answered_on == Channel.EMAIL and email) or (answered_on == Channel.SMS and phone):
        return Channel(answered_on)
    return Channel.SMS if phone and not email else Channel.EMAIL


def customer_contact(
    customer_id: str,
    name: str | None,
    email: str | None,
    phone: str | None,
    answered_on: str | None,
) -> dict[str, Any]:
    """The ``customer`` of the events to dispatch (shared.events.CustomerContactSchema), from what followup
    stored: a phone not in E.164 form or an over-long name is left out rather than failing the event."""
    phone = phone if phone and E164.regex.match(phone) else None
    email = email if email and len(email) <= 320 else None
    return {
        "customer_id": customer_id,
        "name": name[:200] if name else None,
        "email": email,
        "phone": phone,
        "preferred_channel": preferred_channel(answered_on, email, phone).value,
    }


def event_locale(locale: str | None) -> str:
    """The message's language as the events carry it; tasks opened before followup kept one say English."""
    return locale if locale and len(locale) <= 16 else "en"
