"""The followup consumer on the in-memory unit of work: what a scored response opens, changes and routes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.followup import domain, service
from services.followup.domain import Sla, StaffMember, TaskPriority, TaskStatus, TimelineKind
from services.followup.runtime import FollowupRuntime
from shared.settings import Settings

from .fakes import fake_runtime
from .support import MAYA, NEGATIVE, NEUTRAL, START, scored, the_task

# act_on_scored_response: detractors


def test_task_carries_what_the_agent_needs_to_act(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(4, comment="They hung up on me", sentiment=NEGATIVE))

    task = the_task(uow)
    assert (task.customer_name, task.customer_email, task.customer_phone) == (
        "Jane Doe",
        "jane@example.com",
        "+15555550100",
    )
    assert (task.score, task.comment, task.touchpoint) == (4, "They hung up on me", "support_call")
    assert task.sentiment["label"] == "negative" and task.sentiment["key_phrases"] == ["hung"]
    assert task.properties == {"order_id": "A-1001", "amount": 129.5}


def test_event_written_before_contact_details_were_in_the_contract_still_opens_a_task(runtime, uow, clock):
    event = scored(2, customer={"customer_id": "c-1", "external_id": "crm-1", "name": "Jane Doe"})
    del event["data"]["properties"]

    service.act_on_scored_response(runtime, event)

    task = the_task(uow)
    assert (task.customer_email, task.customer_phone, task.properties) == (None, None, None)


def test_due_times_follow_the_configured_sla(uow, clock):
    runtime = fake_runtime(uow, followup_sla_high_hours=4, followup_sla_normal_hours=48)
    service.act_on_scored_response(runtime, scored(2, response_id="high"))
    service.act_on_scored_response(runtime, scored(6, response_id="normal"))

    assert the_task(uow, "high").due_at == START + timedelta(hours=4)
    assert the_task(uow, "normal").due_at == START + timedelta(hours=48)


def test_sla_hours_come_from_the_environment(uow):
    settings = Settings.from_env({"FOLLOWUP_SLA_HIGH_HOURS": "8", "FOLLOWUP_SLA_NORMAL_HOURS": "36"})

    sla = FollowupRuntime(settings, lambda: uow).sla

    assert (sla.high, sla.normal) == (timedelta(hours=8), timedelta(hours=36))
    assert FollowupRuntime(Settings.from_env({}), lambda: uow).sla == Sla.from_hours(24, 72)
    with pytest.raises(ValueError, match="FOLLOWUP_SLA_HIGH_HOURS"):
        Settings.from_env({"FOLLOWUP_SLA_HIGH_HOURS": "0"})


def test_new_task_starts_its_timeline_as_created_by_closeloop(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    [created] = uow.timeline.of(the_task(uow).id)
    assert (created.kind, created.to_status, created.at) == (TimelineKind.CREATED, TaskStatus.OPEN, START)
    assert created.actor_id is None and created.actor_name is None


def test_revision_and_dismissal_are_written_to_the_timeline(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(5))
    service.act_on_scored_response(runtime, scored(4, revision=2, comment="Slow", sentiment=NEUTRAL))
    later = clock.advance(hours=1)
    service.act_on_scored_response(runtime, scored(9, revision=3))

    timeline = uow.timeline.of(the_task(uow).id)
    assert [entry.kind for entry in timeline] == ["created", "revised", "status_changed"]
    assert (timeline[-1].from_status, timeline[-1].to_status, timeline[-1].at) == ("open", "dismissed", later)


def test_very_low_score_opens_a_high_priority_task_due_within_a_day(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    task = the_task(uow)
    assert task.status == TaskStatus.OPEN and task.owner_id is None and task.team_id is None
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
    assert len(uow.tasks.by_response) == 1


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
    assert len(uow.tasks.by_response) == 1
    assert the_task(uow).updated_at == START


# act_on_scored_response: routing new tasks to teams


def team_for(runtime, touchpoints: list[str], members: list[str]) -> str:
    names = [StaffMember(f"u-{name}", name.title()) for name in members]
    return service.create_team(runtime, MAYA, f"Team {'/'.join(touchpoints)}", touchpoints, names).id


def test_new_tasks_go_round_the_members_of_the_team_that_handles_their_touchpoint(runtime, uow, clock):
    team_id = team_for(runtime, ["support_call"], ["ana", "ben", "cem"])
    for n in range(5):
        service.act_on_scored_response(runtime, scored(3, response_id=f"r-{n}"))

    tasks = [the_task(uow, f"r-{n}") for n in range(5)]
    assert [task.owner_id for task in tasks] == ["u-ana", "u-ben", "u-cem", "u-ana", "u-ben"]
    assert {task.team_id for task in tasks} == {team_id}
    assert tasks[0].owner_name == "Ana" and tasks[0].claimed_at is None
    assigned = uow.timeline.of(tasks[1].id)[-1]
    assert (assigned.kind, assigned.assignee_id, assigned.assignee_name) == ("assigned", "u-ben", "Ben")
    assert assigned.actor_id is None  # Closeloop assigned it


def test_task_for_a_touchpoint_no_team_handles_stays_unassigned(runtime, uow, clock):
    team_for(runtime, ["purchase"], ["ana"])
    service.act_on_scored_response(runtime, scored(3, touchpoint="site_visit"))

    task = the_task(uow)
    assert (task.team_id, task.owner_id) == (None, None)
    assert [entry.kind for entry in uow.timeline.of(task.id)] == ["created"]


def test_task_for_a_team_without_members_goes_to_the_team_and_nobody_in_it(runtime, uow, clock):
    team_id = team_for(runtime, ["support_call"], [])
    service.act_on_scored_response(runtime, scored(3))

    task = the_task(uow)
    assert (task.team_id, task.owner_id) == (team_id, None)
    assert uow.teams.get(team_id).turns == 0


def test_revision_keeps_the_task_with_whoever_has_it(runtime, uow, clock):
    team_for(runtime, ["support_call"], ["ana", "ben"])
    service.act_on_scored_response(runtime, scored(5))
    service.act_on_scored_response(runtime, scored(3, revision=2, comment="Worse", sentiment=NEGATIVE))

    assert the_task(uow).owner_id == "u-ana"
    assert uow.teams.handling("support_call").turns == 1


# list_referral_requests


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
