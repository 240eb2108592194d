"""The followup service's use cases: tasks for detractors and referral requests for promoters, opened by the
consumer of scored responses, and the success team's queue, where people claim, assign, annotate and resolve
tasks. Every change to a task is written to its timeline in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.http import ConflictError, DomainError, ForbiddenError, NotFoundError
from shared.nps import NpsCategory, nps_category
from shared.principal import Principal, Role
from shared.unit_of_work import Conflict

from . import domain
from .domain import (
    ACTIVE_STATUSES,
    OWNER_ME,
    StaffMember,
    TaskQuery,
    TaskStatus,
    TimelineKind,
)
from .models import FollowupTask, ReferralRequest, Team, TeamMember, TeamTouchpoint, TimelineEntry
from .runtime import FollowupRuntime
from .unit_of_work import FollowupUnitOfWork

# --- The consumer --------------------------------------------------------------------------------------


@consumes("response.scored")
def act_on_scored_response(runtime: FollowupRuntime, uow: FollowupUnitOfWork, event: ReceivedEvent) -> None:
    """A task for a detractor, a referral request for a promoter; a raised score dismisses an open task.

    A later revision of the same response (a comment after the score) updates what it opened; an older
    revision arriving late changes nothing. A new task goes to the team that follows up its touchpoint,
    and to that team's members in turn.
    """
    data = event.data
    category = nps_category(data["score"])
    now = utcnow()
    task = uow.tasks.for_response(data["response_id"])
    if task is not None and task.response_revision >= data["revision"]:
        return
    if category is NpsCategory.DETRACTOR:
        _follow_up_detractor(runtime, uow, task, data, now)
    elif task is not None and TaskStatus.DISMISSED in domain.allowed_moves(task.status):
        _record(uow, task, TimelineKind.STATUS_CHANGED, now, None, task.status, TaskStatus.DISMISSED)
        task.status, task.score = TaskStatus.DISMISSED, data["score"]
        task.response_revision, task.updated_at = data["revision"], now
    if category is NpsCategory.PROMOTER and not uow.referrals.exists_for_response(data["response_id"]):
        uow.referrals.add(
            ReferralRequest(
                id=str(uuid.uuid4()),
                response_id=data["response_id"],
                invitation_id=data["invitation_id"],
                customer_id=data["customer"]["customer_id"],
                customer_name=data["customer"]["name"],
                score=data["score"],
                status="requested",
                created_at=now,
            )
        )


def _follow_up_detractor(
    runtime: FollowupRuntime,
    uow: FollowupUnitOfWork,
    task: FollowupTask | None,
    data: dict[str, Any],
    now: datetime,
) -> None:
    sentiment, customer = data["sentiment"], data["customer"]
    urgency = domain.task_urgency(data["score"], sentiment["label"] if sentiment else None, now, runtime.sla)
    opened = task is None
    if task is None:
        task = FollowupTask(
            id=str(uuid.uuid4()),
            response_id=data["response_id"],
            invitation_id=data["invitation_id"],
            customer_id=customer["customer_id"],
            status=TaskStatus.OPEN,
            created_at=now,
        )
        uow.tasks.add(task)
        _record(uow, task, TimelineKind.CREATED, now, None, to_status=TaskStatus.OPEN)
    else:
        urgency = domain.TaskUrgency(domain.TaskPriority(task.priority), task.due_at).revised(urgency)
        _record(uow, task, TimelineKind.REVISED, now, None)
    task.response_revision = data["revision"]
    task.customer_external_id, task.customer_name = customer["external_id"], customer["name"]
    # Events written before these were in the contract have none (shared.events).
    task.customer_email, task.customer_phone = customer.get("email"), customer.get("phone")
    task.touchpoint, task.properties = data["touchpoint"], data.get("properties")
    task.score, task.comment, task.sentiment = data["score"], data["comment"], sentiment
    task.priority, task.due_at = urgency.priority, urgency.due_at
    task.updated_at = now
    if opened:
        _route_to_team(uow, task, now)


def _route_to_team(uow: FollowupUnitOfWork, task: FollowupTask, now: datetime) -> None:
    """The team that follows up the task's touchpoint gets it, and its next member in turn; else nobody."""
    team = uow.teams.handling(task.touchpoint)
    if team is None:
        return
    task.team_id = team.id
    if team.members:
        member = domain.next_in_rotation(team.members, uow.teams.take_turn(team.id))
        _give(uow, task, StaffMember(member.user_id, member.user_name), now, None)


# --- The queue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskPage:
    items: list[FollowupTask]
    # Tasks matching the query on every page.
    total: int


def list_tasks(
    runtime: FollowupRuntime, query: TaskQuery | None = None, actor: Principal | None = None
) -> TaskPage:
    """A page of the queue; by default the tasks someone still has to act on, most urgent first.

    ``query.owner`` may be OWNER_ME: the tasks of ``actor``.
    """
    query = query or TaskQuery()
    if query.owner == OWNER_ME:
        if actor is None:
            raise DomainError(
                "Only someone signed in has tasks of their own.", {"owner": ["Nobody is signed in."]}
            )
        query = replace(query, owner=actor.id)
    with runtime.unit_of_work() as uow:
        items, total = uow.tasks.search(query, utcnow())
    return TaskPage(items, total)


def get_task(runtime: FollowupRuntime, task_id: str) -> FollowupTask:
    """A task with its timeline, oldest entry first."""
    with runtime.unit_of_work() as uow:
        task = uow.tasks.with_timeline(task_id)
        if task is None:
            raise NotFoundError(f"There is no task {task_id}.")
        return task


def claim_task(runtime: FollowupRuntime, actor: Principal, task_id: str) -> FollowupTask:
    """``actor`` takes the task and starts on it (an open task is in progress from then on).

    Of two people claiming one task at once, one gets it and the other a ConflictError: the task's row is
    locked while the claim decides. Claiming a task one already has changes nothing.
    """
    with runtime.unit_of_work() as uow:
        task = _task_for_update(uow, task_id)
        try:
            status = domain.claimed_status(task.status, task.owner_id, actor.id)
        except domain.TaskTaken as taken:
            raise ConflictError(f"{task.owner_name or 'Someone else'} has this task already.") from taken
        except domain.InvalidTransition as forbidden:
            raise ConflictError(f"The task cannot be claimed: {forbidden}.") from forbidden
        if task.owner_id == actor.id and task.claimed_at is not None and task.status == status:
            return task
        now = utcnow()
        _record(uow, task, TimelineKind.CLAIMED, now, actor, task.status, status)
        task.owner_id, task.owner_name, task.claimed_at = actor.id, actor.name, now
        task.status, task.updated_at = status, now
        return task


def assign_task(
    runtime: FollowupRuntime, actor: Principal, task_id: str, assignee: StaffMember
) -> FollowupTask:
    """Give a task someone still has to act on to ``assignee``.

    A manager assigns anyone; an agent only themselves, and never a task someone else has.
    """
    manager = actor.role.allows(Role.MANAGER)
    if not manager and assignee.id != actor.id:
        raise ForbiddenError("Only a manager assigns a task to someone else.")
    with runtime.unit_of_work() as uow:
        task = _task_for_update(uow, task_id)
        if task.status not in ACTIVE_STATUSES:
            raise ConflictError(f"A {task.status} task has nothing left to do: reopen it to assign it.")
        if not manager and task.owner_id not in (None, actor.id):
            raise ConflictError(f"{task.owner_name or 'Someone else'} has this task already.")
        if task.owner_id != assignee.id:
            _give(uow, task, assignee, utcnow(), actor)
        return task


def change_status(
    runtime: FollowupRuntime,
    actor: Principal,
    task_id: str,
    status: TaskStatus,
    resolution_code: str | None = None,
    note: str | None = None,
) -> FollowupTask:
    """Move a task through the state machine; resolving it needs a resolution code, a note is optional.

    A move the state machine forbids is a ConflictError naming it. The task's owner and managers move a
    task; a reopened one gets a new due time from the SLA.
    """
    if note is not None:
        note = note.strip() or None
    with runtime.unit_of_work() as uow:
        task = _task_for_update(uow, task_id)
        if not actor.role.allows(Role.MANAGER) and task.owner_id != actor.id:
            raise ForbiddenError("Only the task's owner or a manager changes its status.")
        try:
            new_status = domain.transition(task.status, status)
        except domain.InvalidTransition as forbidden:
            raise ConflictError(f"{str(forbidden).capitalize()}.") from forbidden
        try:
            code = domain.resolution_for(new_status, resolution_code)
        except ValueError as invalid:
            raise DomainError(str(invalid), {"resolution_code": [str(invalid)]}) from invalid
        now = utcnow()
        _record(uow, task, TimelineKind.STATUS_CHANGED, now, actor, task.status, new_status, body=note)
        if new_status is TaskStatus.RESOLVED:
            task.resolved_at, task.resolution_code, task.resolution_note = now, code, note
        elif new_status is TaskStatus.OPEN:
            # Reopened: the earlier resolution stays in the timeline, and the team gets the SLA's time again.
            task.resolved_at = task.resolution_code = task.resolution_note = None
            task.due_at = runtime.sla.due(domain.TaskPriority(task.priority), now)
        task.status, task.updated_at = new_status, now
        return task


def add_note(runtime: FollowupRuntime, actor: Principal, task_id: str, body: str) -> TimelineEntry:
    """A note on the task's timeline; anyone on the team may write one."""
    body = body.strip()
    if not body:
        raise DomainError("A note needs some text.", {"body": ["A note needs some text."]})
    with runtime.unit_of_work() as uow:
        task = uow.tasks.get(task_id)
        if task is None:
            raise NotFoundError(f"There is no task {task_id}.")
        now = utcnow()
        task.updated_at = now
        return _record(uow, task, TimelineKind.NOTE_ADDED, now, actor, body=body)


def _task_for_update(uow: FollowupUnitOfWork, task_id: str) -> FollowupTask:
    task = uow.tasks.get(task_id, for_update=True)
    if task is None:
        raise NotFoundError(f"There is no task {task_id}.")
    return task


def _give(
    uow: FollowupUnitOfWork, task: FollowupTask, assignee: StaffMember, now: datetime, actor: Principal | None
) -> None:
    _record(
        uow, task, TimelineKind.ASSIGNED, now, actor, assignee_id=assignee.id, assignee_name=assignee.name
    )
    # The new owner has not claimed it yet, unless they are the one assigning it to themselves.
    claimed = actor is not None and actor.id == assignee.id
    task.owner_id, task.owner_name = assignee.id, assignee.name
    task.claimed_at = now if claimed else None
    task.updated_at = now


def _record(
    uow: FollowupUnitOfWork,
    task: FollowupTask,
    kind: TimelineKind,
    at: datetime,
    actor: Principal | None,
    from_status: str | None = None,
    to_status: str | None = None,
    **details: str | None,
) -> TimelineEntry:
    entry = TimelineEntry(
        task_id=task.id,
        kind=kind,
        at=at,
        actor_id=actor.id if actor else None,
        actor_name=actor.name if actor else None,
        from_status=from_status,
        to_status=to_status,
        **details,
    )
    uow.timeline.add(entry)
    return entry


# --- Teams ---------------------------------------------------------------------------------------------


def list_teams(runtime: FollowupRuntime) -> list[Team]:
    """Every team with its touchpoints and members, by name."""
    with runtime.unit_of_work() as uow:
        return uow.teams.all()


def create_team(
    runtime: FollowupRuntime,
    actor: Principal,
    name: str,
    touchpoints: Sequence[str],
    members: Sequence[StaffMember] = (),
) -> Team:
    """A team that follows up ``touchpoints`` (each touchpoint one team's at most); managers only."""
    _require_manager(actor, "Only a manager creates teams.")
    _check_members(members)
    try:
        with runtime.unit_of_work() as uow:
            if uow.teams.named(name) is not None:
                raise ConflictError(f"There is a team named {name} already.")
            for touchpoint in touchpoints:
                other = uow.teams.handling(touchpoint)
                if other is not None:
                    raise ConflictError(f"Team {other.name} follows up {touchpoint} already.")
            team = Team(
                id=str(uuid.uuid4()),
                name=name,
                turns=0,
                created_at=utcnow(),
                touchpoints=[
                    TeamTouchpoint(touchpoint=touchpoint) for touchpoint in sorted(set(touchpoints))
                ],
                members=[
                    TeamMember(user_id=member.id, user_name=member.name, position=position)
                    for position, member in enumerate(members)
                ],
            )
            uow.teams.add(team)
            return team
    except Conflict as taken:
        # A concurrent request took the name or a touchpoint between our checks and our commit.
        raise ConflictError("Another team took this name or one of these touchpoints meanwhile.") from taken


def set_team_members(
    runtime: FollowupRuntime, actor: Principal, team_id: str, members: Sequence[StaffMember]
) -> Team:
    """The team's members from now on, in the order new tasks go round; managers only."""
    _require_manager(actor, "Only a manager changes a team's members.")
    _check_members(members)
    with runtime.unit_of_work() as uow:
        team = uow.teams.get(team_id)
        if team is None:
            raise NotFoundError(f"There is no team {team_id}.")
        # Members who stay keep their rows: only names and places change.
        current = {member.user_id: member for member in team.members}
        team.members = [
            _placed(current.get(member.id) or TeamMember(user_id=member.id), member, position)
            for position, member in enumerate(members)
        ]
        return team


def _placed(row: TeamMember, member: StaffMember, position: int) -> TeamMember:
    row.user_name, row.position = member.name, position
    return row


def _require_manager(actor: Principal, refusal: str) -> None:
    if not actor.role.allows(Role.MANAGER):
        raise ForbiddenError(refusal)


def _check_members(members: Sequence[StaffMember]) -> None:
    ids = [member.id for member in members]
    if len(set(ids)) != len(ids):
        raise DomainError("A team lists each member once.", {"members": ["A member is listed twice."]})


# --- Referral requests ---------------------------------------------------------------------------------


def list_referral_requests(runtime: FollowupRuntime, limit: int = 100) -> list[ReferralRequest]:
    """Promoters to ask for a referral, newest first."""
    with runtime.unit_of_work() as uow:
        return uow.referrals.newest(limit)
