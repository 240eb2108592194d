"""The success team's queue on the in-memory unit of work: list, read, claim, assign, move, annotate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.followup import service
from services.followup.domain import (
    OWNER_ME,
    OWNER_NONE,
    ResolutionCode,
    StaffMember,
    TaskPriority,
    TaskQuery,
    TaskSort,
    TaskStatus,
)
from shared.http import ConflictError, DomainError, ForbiddenError, NotFoundError

from .support import ANA, BEN, MAYA, NEGATIVE, START, scored, the_task


def open_tasks(runtime, clock, scores: list[tuple[str, int]], **options) -> None:
    """A task per (response, score), each opened an hour after the one before."""
    for response_id, score in scores:
        service.act_on_scored_response(runtime, scored(score, response_id=response_id, **options))
        clock.advance(hours=1)


def listed(runtime, actor=None, **query) -> list[str]:
    return [task.response_id for task in service.list_tasks(runtime, TaskQuery(**query), actor).items]


def task_in_progress(runtime, uow, actor=ANA, response_id: str = "r-1"):
    service.act_on_scored_response(runtime, scored(2, response_id=response_id))
    return service.claim_task(runtime, actor, the_task(uow, response_id).id)


# list_tasks


def test_queue_lists_high_priority_tasks_first_then_the_earliest_due(runtime, clock):
    open_tasks(runtime, clock, [("normal", 6), ("made-urgent", 6), ("high", 2)])  # due at 72 h, 73 h, 26 h
    service.act_on_scored_response(
        runtime, scored(6, revision=2, comment="Rude", sentiment=NEGATIVE, response_id="made-urgent")
    )  # now high, due at 27 h
    clock.now = START + timedelta(hours=60)
    open_tasks(runtime, clock, [("high-late", 1)])  # due at 84 h, after the normal one

    assert listed(runtime) == ["high", "made-urgent", "high-late", "normal"]


def test_queue_lists_the_tasks_still_to_act_on_unless_asked_for_other_statuses(runtime, uow, clock):
    open_tasks(runtime, clock, [("stays-open", 5), ("dismissed", 5), ("in-progress", 5)])
    service.act_on_scored_response(runtime, scored(9, revision=2, response_id="dismissed"))
    service.claim_task(runtime, ANA, the_task(uow, "in-progress").id)

    assert sorted(listed(runtime)) == ["in-progress", "stays-open"]
    assert listed(runtime, statuses=frozenset({TaskStatus.DISMISSED})) == ["dismissed"]
    assert sorted(listed(runtime, statuses=frozenset(TaskStatus))) == [
        "dismissed",
        "in-progress",
        "stays-open",
    ]


def test_queue_filters_by_owner_a_user_me_or_nobody(runtime, uow, clock):
    open_tasks(runtime, clock, [("ana", 5), ("ben", 5), ("nobody", 5)])
    service.claim_task(runtime, ANA, the_task(uow, "ana").id)
    service.claim_task(runtime, BEN, the_task(uow, "ben").id)

    assert listed(runtime, owner="u-ben") == ["ben"]
    assert listed(runtime, ANA, owner=OWNER_ME) == ["ana"]
    assert listed(runtime, owner=OWNER_NONE) == ["nobody"]


def test_my_tasks_need_someone_signed_in(runtime, clock):
    with pytest.raises(DomainError) as refused:
        service.list_tasks(runtime, TaskQuery(owner=OWNER_ME))
    assert refused.value.errors == {"owner": ["Nobody is signed in."]}


def test_queue_filters_by_team_touchpoint_and_priority(runtime, clock):
    team = service.create_team(runtime, MAYA, "Care", ["support_call"])
    open_tasks(runtime, clock, [("call-high", 2), ("call-normal", 6)])
    open_tasks(runtime, clock, [("purchase-high", 1)], touchpoint="purchase")

    assert listed(runtime, team_id=team.id) == ["call-high", "call-normal"]
    assert listed(runtime, touchpoint="purchase") == ["purchase-high"]
    assert listed(runtime, priority=TaskPriority.NORMAL) == ["call-normal"]
    assert listed(runtime, priority=TaskPriority.HIGH, touchpoint="support_call") == ["call-high"]


def test_overdue_filter_keeps_tasks_past_due_and_still_to_act_on(runtime, uow, clock):
    open_tasks(runtime, clock, [("late", 2), ("late-but-resolved", 2), ("in-time", 6)])
    task = task_in_progress(runtime, uow, response_id="late-but-resolved")
    service.change_status(runtime, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED)
    clock.now = START + timedelta(hours=30)  # high ones were due at 24 h and 25 h

    everything = frozenset(TaskStatus)
    assert listed(runtime, statuses=everything, overdue=True) == ["late"]
    assert sorted(listed(runtime, statuses=everything, overdue=False)) == ["in-time", "late-but-resolved"]


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        (TaskSort.DUE_AT, None, ["b-high", "a-normal", "c-normal"]),
        (TaskSort.DUE_AT, True, ["c-normal", "a-normal", "b-high"]),
        (TaskSort.CREATED_AT, None, ["c-normal", "b-high", "a-normal"]),
        (TaskSort.CREATED_AT, False, ["a-normal", "b-high", "c-normal"]),
        (TaskSort.SCORE, None, ["b-high", "c-normal", "a-normal"]),
        (TaskSort.SCORE, True, ["a-normal", "c-normal", "b-high"]),
        (TaskSort.PRIORITY, None, ["b-high", "a-normal", "c-normal"]),
        # Ties keep the soonest due first whichever way the key goes.
        (TaskSort.PRIORITY, False, ["a-normal", "c-normal", "b-high"]),
    ],
)
def test_queue_sorts_by_the_key_asked_for(runtime, clock, sort, descending, expected):
    open_tasks(runtime, clock, [("a-normal", 6), ("b-high", 2), ("c-normal", 5)])

    assert listed(runtime, sort=sort, descending=descending) == expected


def test_queue_comes_a_page_at_a_time_with_the_total_of_every_page(runtime, clock):
    open_tasks(runtime, clock, [(f"r-{n}", 2) for n in range(5)])

    pages = [service.list_tasks(runtime, TaskQuery(page=page, page_size=2)) for page in (1, 2, 3, 4)]

    assert [[task.response_id for task in page.items] for page in pages] == [
        ["r-0", "r-1"],
        ["r-2", "r-3"],
        ["r-4"],
        [],
    ]
    assert {page.total for page in pages} == {5}


# get_task


def test_task_comes_with_its_timeline_oldest_first(runtime, uow, clock):
    task = task_in_progress(runtime, uow)
    clock.advance(minutes=5)
    service.add_note(runtime, ANA, task.id, "Left a voicemail")

    found = service.get_task(runtime, task.id)

    assert found.customer_email == "jane@example.com"
    assert [(entry.kind, entry.actor_name) for entry in found.timeline] == [
        ("created", None),
        ("claimed", "Ana Lima"),
        ("note_added", "Ana Lima"),
    ]


def test_unknown_task_is_not_found(runtime, clock):
    for use_case in (
        lambda: service.get_task(runtime, "nope"),
        lambda: service.claim_task(runtime, ANA, "nope"),
        lambda: service.assign_task(runtime, MAYA, "nope", StaffMember("u-ana", "Ana")),
        lambda: service.change_status(runtime, MAYA, "nope", TaskStatus.IN_PROGRESS),
        lambda: service.add_note(runtime, ANA, "nope", "Hello"),
    ):
        with pytest.raises(NotFoundError):
            use_case()


# claim_task


def test_claim_gives_the_task_to_the_claimant_and_starts_it(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))
    later = clock.advance(minutes=10)

    task = service.claim_task(runtime, ANA, the_task(uow).id)

    assert (task.owner_id, task.owner_name, task.claimed_at) == ("u-ana", "Ana Lima", later)
    assert task.status == TaskStatus.IN_PROGRESS and task.updated_at == later
    claimed = uow.timeline.of(task.id)[-1]
    assert (claimed.kind, claimed.actor_id, claimed.from_status, claimed.to_status) == (
        "claimed",
        "u-ana",
        "open",
        "in_progress",
    )


def test_claim_of_a_task_someone_else_has_is_a_conflict_naming_them(runtime, uow, clock):
    task = task_in_progress(runtime, uow, actor=ANA)

    with pytest.raises(ConflictError, match="Ana Lima has this task already"):
        service.claim_task(runtime, BEN, task.id)
    assert the_task(uow).owner_id == "u-ana"


def test_claiming_a_task_one_has_already_changes_nothing(runtime, uow, clock):
    task = task_in_progress(runtime, uow)
    entries = len(uow.timeline.of(task.id))
    clock.advance(minutes=1)

    again = service.claim_task(runtime, ANA, task.id)

    assert again.claimed_at == START and len(uow.timeline.of(task.id)) == entries


def test_claim_starts_a_task_that_was_assigned_to_the_claimant(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))
    service.assign_task(runtime, MAYA, the_task(uow).id, StaffMember("u-ana", "Ana Lima"))

    task = service.claim_task(runtime, ANA, the_task(uow).id)

    assert task.status == TaskStatus.IN_PROGRESS and task.claimed_at == START


def test_claim_of_a_task_nobody_has_to_act_on_is_a_conflict_naming_the_move(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(5))
    service.act_on_scored_response(runtime, scored(9, revision=2))

    with pytest.raises(ConflictError, match="a dismissed task cannot become in_progress"):
        service.claim_task(runtime, ANA, the_task(uow).id)


# assign_task


def test_manager_assigns_a_task_to_anyone(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    task = service.assign_task(runtime, MAYA, the_task(uow).id, StaffMember("u-ben", "Ben Okafor"))

    assert (task.owner_id, task.owner_name, task.claimed_at) == ("u-ben", "Ben Okafor", None)
    assert task.status == TaskStatus.OPEN
    assigned = uow.timeline.of(task.id)[-1]
    assert (assigned.kind, assigned.actor_name, assigned.assignee_id) == ("assigned", "Maya Şahin", "u-ben")


def test_manager_reassigns_a_task_someone_works_on(runtime, uow, clock):
    task = task_in_progress(runtime, uow, actor=ANA)

    task = service.assign_task(runtime, MAYA, task.id, StaffMember("u-ben", "Ben Okafor"))

    assert task.owner_id == "u-ben" and task.status == TaskStatus.IN_PROGRESS and task.claimed_at is None


def test_agent_assigns_a_task_to_nobody_but_themselves(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    with pytest.raises(ForbiddenError) as refused:
        service.assign_task(runtime, ANA, the_task(uow).id, StaffMember("u-ben", "Ben Okafor"))
    assert refused.value.status == 403 and the_task(uow).owner_id is None

    task = service.assign_task(runtime, ANA, the_task(uow).id, StaffMember("u-ana", "Ana Lima"))
    assert (task.owner_id, task.claimed_at) == ("u-ana", START)


def test_agent_cannot_take_a_task_someone_else_has_by_assigning_it(runtime, uow, clock):
    task = task_in_progress(runtime, uow, actor=BEN)

    with pytest.raises(ConflictError, match="Ben Okafor has this task already"):
        service.assign_task(runtime, ANA, task.id, StaffMember("u-ana", "Ana Lima"))


def test_task_nobody_has_to_act_on_is_not_assigned(runtime, uow, clock):
    task = task_in_progress(runtime, uow)
    service.change_status(runtime, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.UNREACHABLE)

    with pytest.raises(ConflictError, match="resolved task"):
        service.assign_task(runtime, MAYA, task.id, StaffMember("u-ben", "Ben Okafor"))


# change_status


def test_owner_resolves_a_task_with_a_resolution_code_and_a_note(runtime, uow, clock):
    task = task_in_progress(runtime, uow)
    later = clock.advance(hours=2)

    task = service.change_status(
        runtime, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED, "  Refunded  "
    )

    assert task.status == TaskStatus.RESOLVED and task.resolved_at == later
    assert (task.resolution_code, task.resolution_note) == ("contacted_resolved", "Refunded")
    changed = uow.timeline.of(task.id)[-1]
    assert (changed.kind, changed.from_status, changed.to_status, changed.body) == (
        "status_changed",
        "in_progress",
        "resolved",
        "Refunded",
    )


def test_resolving_without_a_resolution_code_is_refused_and_changes_nothing(runtime, uow, clock):
    task = task_in_progress(runtime, uow)
    entries = len(uow.timeline.of(task.id))

    with pytest.raises(DomainError) as refused:
        service.change_status(runtime, ANA, task.id, TaskStatus.RESOLVED)

    assert refused.value.status == 400 and "resolution_code" in refused.value.errors
    assert the_task(uow).status == TaskStatus.IN_PROGRESS and len(uow.timeline.of(task.id)) == entries


def test_resolution_code_on_another_move_is_refused(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    with pytest.raises(DomainError, match="only when resolving"):
        service.change_status(runtime, MAYA, the_task(uow).id, TaskStatus.IN_PROGRESS, "unreachable")


def test_forbidden_move_is_a_conflict_naming_it(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(2))

    with pytest.raises(ConflictError, match="^An open task cannot become closed.$") as refused:
        service.change_status(runtime, MAYA, the_task(uow).id, TaskStatus.CLOSED)
    assert refused.value.status == 409 and the_task(uow).status == TaskStatus.OPEN


def test_agent_moves_only_their_own_tasks_and_a_manager_any(runtime, uow, clock):
    task = task_in_progress(runtime, uow, actor=BEN)

    with pytest.raises(ForbiddenError):
        service.change_status(runtime, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.NOT_NEEDED)
    task = service.change_status(runtime, MAYA, task.id, TaskStatus.RESOLVED, ResolutionCode.NOT_NEEDED)
    assert task.status == TaskStatus.RESOLVED and task.owner_id == "u-ben"


def test_reopened_task_forgets_its_resolution_and_gets_the_slas_time_again(runtime, uow, clock):
    task = task_in_progress(runtime, uow)  # high priority: 24 h
    service.change_status(runtime, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED, "Ok")
    service.change_status(runtime, ANA, task.id, TaskStatus.CLOSED)
    reopened_at = clock.advance(days=3)

    task = service.change_status(runtime, ANA, task.id, TaskStatus.OPEN, note="Called back, still angry")

    assert task.status == TaskStatus.OPEN and task.owner_id == "u-ana"
    assert (task.resolved_at, task.resolution_code, task.resolution_note) == (None, None, None)
    assert task.due_at == reopened_at + timedelta(hours=24)
    kinds = [(entry.from_status, entry.to_status) for entry in uow.timeline.of(task.id)[-3:]]
    assert kinds == [("in_progress", "resolved"), ("resolved", "closed"), ("closed", "open")]


# add_note


def test_anyone_on_the_team_adds_a_note(runtime, uow, clock):
    task = task_in_progress(runtime, uow, actor=ANA)
    later = clock.advance(minutes=3)

    note = service.add_note(runtime, BEN, task.id, "  Customer prefers calls after 5 pm  ")

    assert (note.kind, note.body, note.actor_id, note.actor_name, note.at) == (
        "note_added",
        "Customer prefers calls after 5 pm",
        "u-ben",
        "Ben Okafor",
        later,
    )
    assert uow.timeline.of(task.id)[-1] is note and the_task(uow).updated_at == later


def test_blank_note_is_refused(runtime, uow, clock):
    task = task_in_progress(runtime, uow)

    with pytest.raises(DomainError) as refused:
        service.add_note(runtime, ANA, task.id, "   ")
    assert refused.value.errors == {"body": ["A note needs some text."]}
