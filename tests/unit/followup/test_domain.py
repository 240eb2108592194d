from datetime import timedelta

import pytest

from services.followup import domain
from services.followup.domain import InvalidTransition, TaskPriority, TaskStatus, TaskUrgency
from shared.clock import utcnow

NOW = utcnow()


def test_very_low_score_is_due_within_a_day():
    urgency = domain.task_urgency(2, None, NOW)
    assert urgency.priority == TaskPriority.HIGH and urgency.due_at == NOW + timedelta(hours=24)


def test_negative_comment_raises_priority_of_a_mild_detractor():
    assert domain.task_urgency(6, "negative", NOW).priority == TaskPriority.HIGH
    normal = domain.task_urgency(6, "neutral", NOW)
    assert normal.priority == TaskPriority.NORMAL and normal.due_at == NOW + timedelta(hours=72)


def test_revision_can_make_a_task_more_urgent_and_due_sooner():
    first = TaskUrgency(TaskPriority.NORMAL, NOW + timedelta(hours=72))
    revised = first.revised(TaskUrgency(TaskPriority.HIGH, NOW + timedelta(hours=25)))
    assert revised == TaskUrgency(TaskPriority.HIGH, NOW + timedelta(hours=25))


def test_revision_never_lowers_the_priority_nor_gives_more_time():
    first = TaskUrgency(TaskPriority.HIGH, NOW + timedelta(hours=24))
    assert first.revised(TaskUrgency(TaskPriority.NORMAL, NOW + timedelta(hours=73))) == first


# The task state machine, as the success team's queue works: every move not listed here is forbidden.
MOVES = {
    (TaskStatus.OPEN, TaskStatus.IN_PROGRESS),
    (TaskStatus.OPEN, TaskStatus.DISMISSED),
    (TaskStatus.IN_PROGRESS, TaskStatus.RESOLVED),
    (TaskStatus.RESOLVED, TaskStatus.CLOSED),
    (TaskStatus.RESOLVED, TaskStatus.OPEN),
    (TaskStatus.CLOSED, TaskStatus.OPEN),
}
FORBIDDEN = [
    (current, requested)
    for current in TaskStatus
    for requested in TaskStatus
    if (current, requested) not in MOVES
]


@pytest.mark.parametrize(("current", "requested"), sorted(MOVES))
def test_allowed_move_gives_the_requested_status(current, requested):
    assert domain.transition(current, requested) is requested


@pytest.mark.parametrize(("current", "requested"), FORBIDDEN)
def test_forbidden_move_raises_an_error_naming_it(current, requested):
    with pytest.raises(InvalidTransition, match=f"a {current} task cannot become {requested}") as raised:
        domain.transition(current, requested)
    assert (raised.value.from_status, raised.value.to_status) == (current, requested)


@pytest.mark.parametrize("status", list(TaskStatus))
def test_moves_allowed_from_a_status_are_the_listed_ones(status):
    assert domain.allowed_moves(status) == {requested for current, requested in MOVES if current == status}


def test_status_as_stored_in_the_database_is_accepted():
    assert domain.allowed_moves("open") == {TaskStatus.IN_PROGRESS, TaskStatus.DISMISSED}
    assert domain.transition("open", "in_progress") is TaskStatus.IN_PROGRESS
    with pytest.raises(InvalidTransition):
        domain.transition("dismissed", "open")
