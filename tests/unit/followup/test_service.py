"""Every followup use case on the in-memory unit of work: no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.followup import domain, service
from services.followup.domain import TaskPriority, TaskStatus
from shared.events import new_event

from .fakes import FakeFollowupUnitOfWork, fake_runtime

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NEGATIVE = {
    "polarity": -0.6,
    "subjectivity": 0.5,
    "label": "negative",
    "language": "en",
    "key_phrases": ["hung"],
    "analyzer": "test",
}
NEUTRAL = {**NEGATIVE, "polarity": 0.0, "label": "neutral", "key_phrases": []}


class Clock:
    """The wall clock the use cases read, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(service, "utcnow", clock)
    return clock


@pytest.fixture
def uow() -> FakeFollowupUnitOfWork:
    return FakeFollowupUnitOfWork()


@pytest.fixture
def runtime(uow):
    return fake_runtime(uow)


def scored(
    score: int,
    revision: int = 1,
    comment: str | None = None,
    sentiment: dict[str, Any] | None = None,
    response_id: str = "r-1",
) -> dict[str, Any]:
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": f"i-{response_id}",
            "revision": revision,
            "score": score,
            "comment": comment,
            "locale": "en",
            "touchpoint": "support_call",
            "channel": "sms",
            "customer": {"customer_id": "c-1", "external_id": "crm-1", "name": "Jane Doe"},
            "submitted_at": START.isoformat(),
            "sentiment": sentiment,
        },
    )


def the_task(uow: FakeFollowupUnitOfWork, response_id: str = "r-1"):
    task = uow.tasks.for_response(response_id)
    assert task is not None, f"no task for {response_id}"
    return task


# act_on_scored_response: detractors


def test_very_low_score_opens_a_high_priority_task_due_within_a_day(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    task = the_task(uow)
    assert task.status == TaskStatus.OPEN and task.owner is None
    assert task.priority == TaskPriority.HIGH and task.due_at == START + timedelta(hours=24)
    assert (task.response_revision, task.score, task.invitation_id) == (1, 2, "i-r-1")
    assert (task.customer_id, task.customer_external_id, task.customer_name) == ("c-1", "crm-1", "Jane Doe")
    assert task.touchpoint == "support_call" and task.created_at == task.updated_at == START


def test_mild_detractor_without_a_comment_opens_a_normal_priority_task_due_within_three_days(
    runtime, uow, clock
):
    service.act_on_scored_response(runtime, scored(6))

    task = the_task(uow)
    assert task.status == TaskStatus.OPEN
    assert task.priority == TaskPriority.NORMAL and task.due_at == START + timedelta(hours=72)
    assert task.comment is None and task.sentiment is None


def test_detractor_whose_comment_reads_negative_opens_a_high_priority_task(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(6, comment="They hung up on me", sentiment=NEGATIVE))

    task = the_task(uow)
    assert task.priority == TaskPriority.HIGH and task.due_at == START + timedelta(hours=24)
    assert task.comment == "They hung up on me" and task.sentiment["label"] == "negative"


def test_later_revision_with_a_negative_comment_updates_the_task_and_makes_it_due_sooner(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(5))
    later = clock.advance(hours=1)
    service.act_on_scored_response(
        runtime, scored(5, revision=2, comment="They hung up on me", sentiment=NEGATIVE)
    )

    task = the_task(uow)
    assert task.response_revision == 2 and task.comment == "They hung up on me"
    assert task.priority == TaskPriority.HIGH and task.due_at == later + timedelta(hours=24)
    assert task.created_at == START and task.updated_at == later
    assert len(uow.tasks.queue(None, 100)) == 1


def test_later_revision_never_gives_the_team_more_time_than_first_promised(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))
    clock.advance(hours=1)
    service.act_on_scored_response(runtime, scored(6, revision=2, comment="Fine now", sentiment=NEUTRAL))

    task = the_task(uow)
    assert task.score == 6 and task.response_revision == 2
    assert task.priority == TaskPriority.HIGH and task.due_at == START + timedelta(hours=24)


def test_older_revision_arriving_late_changes_nothing(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3, revision=2, comment="Rude agent", sentiment=NEGATIVE))
    clock.advance(hours=1)
    service.act_on_scored_response(runtime, scored(6, revision=1))

    task = the_task(uow)
    assert (task.response_revision, task.score, task.comment) == (2, 3, "Rude agent")
    assert task.updated_at == START


# act_on_scored_response: a detractor who changes the score


@pytest.mark.parametrize("raised_to", [7, 8])
def test_detractor_who_raises_the_score_to_a_passive_has_the_open_task_dismissed(
    runtime, uow, clock, raised_to
):
    service.act_on_scored_response(runtime, scored(5))
    later = clock.advance(hours=1)
    service.act_on_scored_response(runtime, scored(raised_to, revision=2))

    task = the_task(uow)
    assert task.status == TaskStatus.DISMISSED
    assert (task.score, task.response_revision, task.updated_at) == (raised_to, 2, later)
    assert service.list_referral_requests(runtime) == []


def test_detractor_who_raises_the_score_to_a_promoter_has_the_task_dismissed_and_gets_a_referral_request(
    runtime, uow, clock
):
    service.act_on_scored_response(runtime, scored(5))
    service.act_on_scored_response(runtime, scored(10, revision=2))

    assert the_task(uow).status == TaskStatus.DISMISSED
    assert [request.score for request in service.list_referral_requests(runtime)] == [10]


def test_task_someone_works_on_stays_with_them_when_the_score_is_raised(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(5))
    task = the_task(uow)
    task.status = domain.transition(task.status, TaskStatus.IN_PROGRESS)
    service.act_on_scored_response(runtime, scored(9, revision=2))

    assert the_task(uow).status == TaskStatus.IN_PROGRESS


# act_on_scored_response: promoters and passives


@pytest.mark.parametrize("score", [9, 10])
def test_promoter_gets_a_referral_request_and_no_task(runtime, uow, clock, score):
    service.act_on_scored_response(runtime, scored(score))

    [request] = service.list_referral_requests(runtime)
    assert (request.response_id, request.invitation_id, request.score) == ("r-1", "i-r-1", score)
    assert (request.customer_id, request.customer_name) == ("c-1", "Jane Doe")
    assert request.status == "requested" and request.created_at == START
    assert uow.tasks.for_response("r-1") is None


def test_promoter_who_adds_a_comment_later_still_has_one_referral_request(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(9))
    clock.advance(hours=1)
    service.act_on_scored_response(runtime, scored(10, revision=2, comment="Great", sentiment=NEUTRAL))

    [request] = service.list_referral_requests(runtime)
    assert request.score == 9 and request.created_at == START


@pytest.mark.parametrize("score", [7, 8])
def test_passive_gets_neither_a_task_nor_a_referral_request(runtime, uow, clock, score):
    service.act_on_scored_response(runtime, scored(score))

    assert uow.tasks.for_response("r-1") is None
    assert service.list_referral_requests(runtime) == []


def test_same_event_delivered_twice_is_acted_on_once(runtime, uow, clock):
    event = scored(4)
    service.act_on_scored_response(runtime, event)
    clock.advance(hours=1)
    service.act_on_scored_response(runtime, event)

    assert uow.consumed == {(event["id"], "act_on_scored_response")}
    assert len(service.list_tasks(runtime, None)) == 1
    assert the_task(uow).updated_at == START


# list_tasks and list_referral_requests


def open_tasks(runtime, clock, scores: list[tuple[str, int]]) -> None:
    """A task per (response, score), each opened an hour after the one before."""
    for response_id, score in scores:
        service.act_on_scored_response(runtime, scored(score, response_id=response_id))
        clock.advance(hours=1)


def test_queue_lists_high_priority_tasks_first_then_the_earliest_due(runtime, clock):
    open_tasks(runtime, clock, [("normal", 6), ("made-urgent", 6), ("high", 2)])  # due at 72 h, 73 h, 26 h
    service.act_on_scored_response(
        runtime, scored(6, revision=2, comment="Rude", sentiment=NEGATIVE, response_id="made-urgent")
    )  # now high, due at 27 h
    clock.now = START + timedelta(hours=60)
    open_tasks(runtime, clock, [("high-late", 1)])  # due at 84 h, after the normal one

    queue = service.list_tasks(runtime)
    assert [task.response_id for task in queue] == ["high", "made-urgent", "high-late", "normal"]


def test_queue_lists_open_tasks_unless_asked_for_another_status(runtime, uow, clock):
    open_tasks(runtime, clock, [("stays-open", 5), ("dismissed", 5), ("in-progress", 5)])
    service.act_on_scored_response(runtime, scored(9, revision=2, response_id="dismissed"))
    task = the_task(uow, "in-progress")
    task.status = domain.transition(task.status, TaskStatus.IN_PROGRESS)

    def listed(*status: TaskStatus | None) -> list[str]:
        return sorted(task.response_id for task in service.list_tasks(runtime, *status))

    assert listed() == ["stays-open"]
    assert listed(TaskStatus.DISMISSED) == ["dismissed"]
    assert listed(TaskStatus.IN_PROGRESS) == ["in-progress"]
    assert listed(None) == ["dismissed", "in-progress", "stays-open"]


def test_queue_lists_no_more_than_the_limit_keeping_the_most_urgent(runtime, clock):
    open_tasks(runtime, clock, [("normal", 6), ("high", 1), ("high-later", 2)])

    assert [task.response_id for task in service.list_tasks(runtime, limit=2)] == ["high", "high-later"]


def test_referral_requests_are_listed_newest_first_up_to_the_limit(runtime, clock):
    for response_id in ("oldest", "middle", "newest"):
        service.act_on_scored_response(runtime, scored(10, response_id=response_id))
        clock.advance(minutes=5)

    assert [request.response_id for request in service.list_referral_requests(runtime)] == [
        "newest",
        "middle",
        "oldest",
    ]
    assert [request.response_id for request in service.list_referral_requests(runtime, limit=1)] == ["newest"]
