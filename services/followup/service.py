"""The followup service's use cases: tasks for detractors (and mismatches, and passives if asked), referral
requests for promoters and review requests for everyone, opened by the consumer of scored responses; the
success team's queue, where people claim, assign, annotate and resolve tasks (a resolution closes the loop
with the customer); and referral links, their clicks and their conversions. Every change to a task is written
to its timeline in the same transaction.

Outbound webhooks tell other systems (a CRM) what happened: each change records one delivery per subscribed
endpoint in the same transaction, and a due job sends them (the last section of this module).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.errors import ConflictError, DomainError, ForbiddenError, NotFoundError
from shared.principal import Principal, Role
from shared.signing import generate_secret
from shared.unit_of_work import Conflict

from . import domain, models, webhooks
from .domain import (
    ACTIVE_STATUSES,
    OWNER_ME,
    ReferralStatus,
    StaffMember,
    TaskPriority,
    TaskQuery,
    TaskStatus,
    TimelineKind,
)
from .models import (
    FollowupTask,
    ReferralClick,
    ReferralRequest,
    ResponseRevision,
    ReviewRequest,
    Team,
    TeamMember,
    TeamTouchpoint,
    TimelineEntry,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from .providers import HttpSendError, WebhookSender
from .runtime import FollowupRuntime
from .unit_of_work import FollowupUnitOfWork
from .webhooks import (
    EVENT_TYPES,
    WEBHOOK_RETRIES,
    DeliveryKind,
    DeliveryStatus,
    RefusedUrl,
    WebhookEventType,
    WebhookTarget,
)

log = logging.getLogger(__name__)

# --- The consumers -------------------------------------------------------------------------------------


@consumes("response.scored")
def act_on_scored_response(runtime: FollowupRuntime, uow: FollowupUnitOfWork, event: ReceivedEvent) -> None:
    """What an answer calls for (``domain.plan_for``): a task for a detractor, for a promoter whose comment
    contradicts the score (a mismatch) and, when the settings ask for it, for a passive; a referral request
    for any other promoter; a review request for every respondent when a review page is configured.

    A later revision of the same response (a comment after the score, a changed score) moves the customer
    between these cleanly: an open task no longer called for is dismissed, a dismissed one opens again, a
    referral request no longer called for is withdrawn (never sent, if it was not yet). An older revision
    arriving late changes nothing. A new task goes to the team that follows up its touchpoint, and to that
    team's members in turn.
    """
    data = event.data
    now = utcnow()
    _announce_response(uow, data, now, event.occurred_at)  # outbound webhooks, whatever changes here
    task = uow.tasks.for_response(data["response_id"])
    if not _is_latest_revision(uow, task, data, now):
        return
    plan = domain.plan_for(data["score"], data["sentiment"], runtime.settings.followup_passives)
    if plan.task is not None:
        _follow_up(runtime, uow, task, plan.task, data, now)
    elif task is not None:
        _no_longer_needed(uow, task, data, now)
    _keep_referral_request(runtime, uow, plan.referral, data, now)
    _keep_review_request(runtime, uow, data, now)


def _is_latest_revision(
    uow: FollowupUnitOfWork, task: FollowupTask | None, data: dict[str, Any], now: datetime
) -> bool:
    """Record ``data``'s revision as the latest of its response, unless a later one was acted on already.

    Tasks opened before followup recorded revisions carry their own.
    """
    seen = uow.revisions.latest(data["response_id"])
    latest = max(seen.revision if seen else 0, task.response_revision if task else 0)
    if latest >= data["revision"]:
        return False
    if seen is None:
        seen = ResponseRevision(response_id=data["response_id"], revision=data["revision"], updated_at=now)
        uow.revisions.add(seen)
    seen.revision, seen.updated_at = data["revision"], now
    return True


def _follow_up(
    runtime: FollowupRuntime,
    uow: FollowupUnitOfWork,
    task: FollowupTask | None,
    kind: domain.TaskKind,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Open the task the answer calls for, or bring the response's task up to date with it."""
    sentiment, customer = data["sentiment"], data["customer"]
    label = sentiment["label"] if sentiment else None
    urgency = domain.urgency_for(kind, data["score"], label, now, runtime.sla)
    opened = task is None
    # For the alert: a task nobody had to act on (a dismissed one opening again) was not high for anyone.
    was_high = task is not None and task.status in ACTIVE_STATUSES and task.priority == TaskPriority.HIGH
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
        entry = _record(uow, task, TimelineKind.CREATED, now, None, to_status=TaskStatus.OPEN)
    elif domain.is_revived(task.status):
        # The team gets the SLA's whole time again, as for a task reopened by hand.
        entry = _record(uow, task, TimelineKind.STATUS_CHANGED, now, None, task.status, TaskStatus.OPEN)
        task.status = TaskStatus.OPEN
    else:
        urgency = domain.TaskUrgency(domain.TaskPriority(task.priority), task.due_at).revised(urgency)
        entry = _record(uow, task, TimelineKind.REVISED, now, None)
    task.customer_external_id, task.customer_name = customer["external_id"], customer["name"]
    # Events written before these were in the contract have none (shared.events).
    task.customer_email, task.customer_phone = customer.get("email"), customer.get("phone")
    task.touchpoint, task.properties = data["touchpoint"], data.get("properties")
    task.locale, task.channel = data["locale"], data["channel"]
    _take_answer(task, data, now)
    task.mismatch = kind is domain.TaskKind.MISMATCH
    task.priority, task.due_at = urgency.priority, urgency.due_at
    if opened:
        _route_to_team(uow, task, now)
    _announce_followup_task(runtime, uow, task, entry, opened, was_high, now)  # outbound webhooks, alerts


def _no_longer_needed(
    uow: FollowupUnitOfWork, task: FollowupTask, data: dict[str, Any], now: datetime
) -> None:
    """The answer no longer calls for a task: an open one is dismissed; one someone works on, or one that
    is over, stays as it is and shows the new answer."""
    if TaskStatus.DISMISSED in domain.allowed_moves(task.status):
        entry = _record(uow, task, TimelineKind.STATUS_CHANGED, now, None, task.status, TaskStatus.DISMISSED)
        task.status = TaskStatus.DISMISSED
    else:
        entry = _record(uow, task, TimelineKind.REVISED, now, None)
    _take_answer(task, data, now)
    _announce_task_change(uow, task, entry, now)  # outbound webhooks


def _take_answer(task: FollowupTask, data: dict[str, Any], now: datetime) -> None:
    """The task shows the latest revision: its score, and its comment and sentiment, even a comment gone."""
    task.response_revision = data["revision"]
    task.score, task.comment, task.sentiment = data["score"], data["comment"], data["sentiment"]
    task.updated_at = now


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


def task_gauges(runtime: FollowupRuntime) -> list[tuple[str, str, float]]:
    """Open and overdue tasks, read when /metrics is scraped (shared.metrics.register_gauges)."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        _, open_tasks = uow.tasks.search(TaskQuery(page_size=1), now)
        _, overdue_tasks = uow.tasks.search(TaskQuery(overdue=True, page_size=1), now)
    return [
        ("closeloop_followup_tasks_open", "Follow-up tasks someone still has to act on", open_tasks),
        ("closeloop_followup_tasks_overdue", "Open follow-up tasks past their due time", overdue_tasks),
    ]


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
        entry = _record(uow, task, TimelineKind.CLAIMED, now, actor, task.status, status)
        task.owner_id, task.owner_name, task.claimed_at = actor.id, actor.name, now
        task.status, task.updated_at = status, now
        _announce_task_change(uow, task, entry, now)  # outbound webhooks
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
            now = utcnow()
            entry = _give(uow, task, assignee, now, actor)
            _announce_task_change(uow, task, entry, now)  # outbound webhooks
        return task


def change_status(
    runtime: FollowupRuntime,
    actor: Principal,
    task_id: str,
    status: TaskStatus,
    resolution_code: str | None = None,
    note: str | None = None,
    close_loop_message: str | None = None,
) -> FollowupTask:
    """Move a task through the state machine; resolving it needs a resolution code, a note is optional.

    A move the state machine forbids is a ConflictError naming it. The task's owner and managers move a
    task; a reopened one gets a new due time from the SLA.

    Resolving emits followup.resolved: dispatch sends the customer ``close_loop_message`` when there is
    one, and survey asks them again FOLLOWUP_FOLLOW_UP_SURVEY_DAYS later when that is set.
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
        try:
            message = domain.close_loop_message_for(new_status, close_loop_message)
        except ValueError as invalid:
            raise DomainError(str(invalid), {"close_loop_message": [str(invalid)]}) from invalid
        now = utcnow()
        entry = _record(
            uow,
            task,
            TimelineKind.STATUS_CHANGED,
            now,
            actor,
            task.status,
            new_status,
            body=note,
            close_loop_message=message,
        )
        if new_status is TaskStatus.RESOLVED:
            task.resolved_at, task.resolution_code, task.resolution_note = now, code, note
            task.close_loop_message = message
        elif new_status is TaskStatus.OPEN:
            # Reopened: the earlier resolution stays in the timeline, and the team gets the SLA's time again.
            task.resolved_at = task.resolution_code = task.resolution_note = task.close_loop_message = None
            task.due_at = runtime.sla.due(domain.TaskPriority(task.priority), now)
        task.status, task.updated_at = new_status, now
        if new_status is TaskStatus.RESOLVED:
            _close_the_loop(runtime, uow, task)
        _announce_task_change(uow, task, entry, now)  # outbound webhooks
        return task


def _close_the_loop(runtime: FollowupRuntime, uow: FollowupUnitOfWork, task: FollowupTask) -> None:
    """followup.resolved, in the transaction that resolves the task: dispatch and survey take it from here."""
    assert task.resolution_code is not None  # a resolution always has one (domain.resolution_for)
    uow.emit(
        "followup.resolved",
        {
            "task_id": task.id,
            "response_id": task.response_id,
            "invitation_id": task.invitation_id,
            "customer": _contact(task),
            "locale": domain.event_locale(task.locale),
            "resolution_code": task.resolution_code,
            "close_loop_message": task.close_loop_message,
            "follow_up_survey_after_days": runtime.settings.followup_follow_up_survey_days,
        },
    )


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
        entry = _record(uow, task, TimelineKind.NOTE_ADDED, now, actor, body=body)
        _announce_task_change(uow, task, entry, now)  # outbound webhooks
        return entry


def _task_for_update(uow: FollowupUnitOfWork, task_id: str) -> FollowupTask:
    task = uow.tasks.get(task_id, for_update=True)
    if task is None:
        raise NotFoundError(f"There is no task {task_id}.")
    return task


def _give(
    uow: FollowupUnitOfWork, task: FollowupTask, assignee: StaffMember, now: datetime, actor: Principal | None
) -> TimelineEntry:
    entry = _record(
        uow, task, TimelineKind.ASSIGNED, now, actor, assignee_id=assignee.id, assignee_name=assignee.name
    )
    # The new owner has not claimed it yet, unless they are the one assigning it to themselves.
    claimed = actor is not None and actor.id == assignee.id
    task.owner_id, task.owner_name = assignee.id, assignee.name
    task.claimed_at = now if claimed else None
    task.updated_at = now
    return entry


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


# --- Referral and review requests -----------------------------------------------------------------------


def _keep_referral_request(
    runtime: FollowupRuntime, uow: FollowupUnitOfWork, wanted: bool, data: dict[str, Any], now: datetime
) -> None:
    """A promoter gets one referral request per response; an answer that no longer calls for it withdraws
    it, and one that calls for it again asks again (without a second message if the first went out)."""
    request = uow.referrals.for_response(data["response_id"])
    if not wanted:
        if request is not None and request.status == ReferralStatus.REQUESTED:
            request.status, request.withdrawn_at, request.send_at = ReferralStatus.WITHDRAWN, now, None
            log.info("referral request %s withdrawn: response %s changed", request.id, request.response_id)
        return
    if request is None:
        customer = data["customer"]
        request = ReferralRequest(
            id=str(uuid.uuid4()),
            response_id=data["response_id"],
            invitation_id=data["invitation_id"],
            code=domain.new_referral_code(),
            customer_id=customer["customer_id"],
            customer_name=customer["name"],
            customer_email=customer.get("email"),
            customer_phone=customer.get("phone"),
            locale=data["locale"],
            channel=data["channel"],
            score=data["score"],
            status=ReferralStatus.REQUESTED,
            clicks=0,
            created_at=now,
        )
        request.send_at = _referral_send_at(runtime, request, now)
        uow.referrals.add(request)
        _record_webhooks(uow, WebhookEventType.REFERRAL_REQUESTED, webhooks.referral_data(request), now)
    elif request.status == ReferralStatus.WITHDRAWN:
        request.status, request.withdrawn_at = ReferralStatus.REQUESTED, None
        request.send_at = None if request.sent_at else _referral_send_at(runtime, request, now)
    if request.send_at is not None and request.send_at <= now:
        _send_referral_request(runtime, uow, request, now)  # no delay: in this very transaction


def _referral_send_at(runtime: FollowupRuntime, request: ReferralRequest, now: datetime) -> datetime | None:
    # Without a landing page there is nothing to link to: the request is kept, and never sent.
    if runtime.settings.followup_referral_url is None:
        return None
    return domain.request_send_at(
        now, _request_delay(runtime), request.customer_email, request.customer_phone
    )


def _keep_review_request(
    runtime: FollowupRuntime, uow: FollowupUnitOfWork, data: dict[str, Any], now: datetime
) -> None:
    """Every respondent is asked for a review once per response, whatever the score: review sites forbid
    asking only the happy ones. Until it is sent, the request follows the latest score (its wording)."""
    if runtime.settings.followup_review_url is None:
        return
    request = uow.review_requests.for_response(data["response_id"])
    if request is None:
        customer = data["customer"]
        request = ReviewRequest(
            id=str(uuid.uuid4()),
            response_id=data["response_id"],
            invitation_id=data["invitation_id"],
            customer_id=customer["customer_id"],
            customer_name=customer["name"],
            customer_email=customer.get("email"),
            customer_phone=customer.get("phone"),
            locale=domain.event_locale(data["locale"]),
            channel=data["channel"],
            score=data["score"],
            created_at=now,
        )
        request.send_at = domain.request_send_at(
            now, _request_delay(runtime), request.customer_email, request.customer_phone
        )
        uow.review_requests.add(request)
    elif request.sent_at is None:
        request.score = data["score"]
    if request.send_at is not None and request.send_at <= now:
        _send_review_request(runtime, uow, request, now)


def _request_delay(runtime: FollowupRuntime) -> timedelta:
    return timedelta(minutes=runtime.settings.followup_request_delay_minutes)


def send_due_requests(runtime: FollowupRuntime, limit: int = 100) -> int:
    """Due job: ask dispatch to send every referral and review request whose time has come.

    Each request is marked sent in the transaction that writes its event to the outbox; the rows are locked
    and others' skipped, so clocks in several processes never send one twice.
    """
    now = utcnow()
    with runtime.unit_of_work() as uow:
        referrals = uow.referrals.due(now, limit)
        for referral in referrals:
            _send_referral_request(runtime, uow, referral, now)
        reviews = uow.review_requests.due(now, limit)
        for review in reviews:
            _send_review_request(runtime, uow, review, now)
    return len(referrals) + len(reviews)


def _send_referral_request(
    runtime: FollowupRuntime, uow: FollowupUnitOfWork, request: ReferralRequest, now: datetime
) -> None:
    request.send_at = None
    if runtime.settings.followup_referral_url is None:
        log.info("referral request %s not sent: FOLLOWUP_REFERRAL_URL is not set any more", request.id)
        return
    followup_url = runtime.settings.public_url_for(models.SERVICE)
    uow.emit(
        "referral.requested",
        {
            "referral_id": request.id,
            "customer": _contact(request),
            "referral_url": domain.referral_link(followup_url, request.code),
            "locale": domain.event_locale(request.locale),
        },
    )
    request.sent_at = now


def _send_review_request(
    runtime: FollowupRuntime, uow: FollowupUnitOfWork, request: ReviewRequest, now: datetime
) -> None:
    request.send_at = None
    review_url = runtime.settings.followup_review_url
    if review_url is None:
        log.info("review request %s not sent: FOLLOWUP_REVIEW_URL is not set any more", request.id)
        return
    uow.emit(
        "review.requested",
        {
            "review_request_id": request.id,
            "customer": _contact(request),
            "review_url": review_url,
            "score": request.score,
            "locale": request.locale,
        },
    )
    request.sent_at = now


def _contact(row: FollowupTask | ReferralRequest | ReviewRequest) -> dict[str, Any]:
    return domain.customer_contact(
        row.customer_id, row.customer_name, row.customer_email, row.customer_phone, row.channel
    )


def follow_referral_link(runtime: FollowupRuntime, code: str, user_agent: str | None) -> str:
    """Count a click on a promoter's link and give the landing page to send the browser to.

    NotFoundError for a code no request has, and while no landing page is configured.
    """
    landing = runtime.settings.followup_referral_url
    if landing is None or not domain.is_referral_code(code):
        raise NotFoundError("There is no such referral link.")
    now = utcnow()
    with runtime.unit_of_work() as uow:
        request = uow.referrals.by_code(code, for_update=True)
        if request is None:
            raise NotFoundError("There is no such referral link.")
        uow.referrals.add_click(
            ReferralClick(
                referral_request_id=request.id,
                clicked_at=now,
                user_agent=domain.user_agent_excerpt(user_agent),
            )
        )
        request.clicks, request.last_clicked_at = request.clicks + 1, now
    return domain.landing_url(landing, code)


@consumes("referral.code_used")
def attribute_referral(runtime: FollowupRuntime, uow: FollowupUnitOfWork, event: ReceivedEvent) -> None:
    """A CRM event carried a referral code: the promoter's request is converted, once.

    An unknown code (mistyped, or not ours) is logged and acknowledged: trying again would not find it.
    """
    data = event.data
    code = data["referral_code"].strip()
    request = uow.referrals.by_code(code, for_update=True) if domain.is_referral_code(code) else None
    if request is None:
        # A prefix only (a code is a customer's link), quoted: it came from a CRM event.
        log.warning("referral.code_used %s: no referral request has the code %r…", event.id, code[:4])
        return
    if request.customer_id == data["customer_id"]:
        log.info("referral.code_used %s: the promoter used their own code; not a referral", event.id)
        return
    conversion = {
        "referral_code": code,
        "event_id": data["event_id"],
        "event_type": data["event_type"],
        "customer_id": data["customer_id"],
        "occurred_at": data["occurred_at"].isoformat(),
    }
    if not _convert(uow, request, conversion, utcnow()):
        log.info("referral.code_used %s: referral request %s was converted already", event.id, request.id)


def list_referral_requests(runtime: FollowupRuntime, limit: int = 100) -> list[ReferralRequest]:
    """Promoters to ask for a referral, newest first: whether each was sent, and how often it was clicked."""
    with runtime.unit_of_work() as uow:
        return uow.referrals.newest(limit)


def referral_for_response(runtime: FollowupRuntime, response_id: str) -> ReferralRequest | None:
    """The referral request of a response, if it had one (a task's page shows it)."""
    with runtime.unit_of_work() as uow:
        return uow.referrals.for_response(response_id)


# --- Outbound webhooks and alerts ----------------------------------------------------------------------


class InvalidWebhookInput(DomainError):
    """Input only a use case can judge (a URL that resolves to a refused address): a 422 naming the field,
    like the schemas' own field errors."""

    status = 422
    title = "Unprocessable Entity"


def create_webhook_endpoint(
    runtime: FollowupRuntime,
    actor: Principal,
    url: str,
    event_types: Sequence[str],
    description: str | None = None,
) -> WebhookEndpoint:
    """Register a receiver for ``event_types``; admins only. Its ``secret`` is for this answer only.

    The URL must be http(s) and its host must resolve to public addresses only (unless the settings allow
    private ones): it is checked here, and again before every attempt.
    """
    _require_admin(actor)
    url = url.strip()
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown or not event_types:
        problem = f"Unknown event types: {', '.join(unknown)}." if unknown else "Choose at least one event."
        raise InvalidWebhookInput(problem, {"event_types": [problem]})
    try:
        _receiver(runtime, url)
    except (RefusedUrl, HttpSendError) as refused:
        raise InvalidWebhookInput(str(refused), {"url": [str(refused)]}) from refused
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=str(uuid.uuid4()),
        url=url,
        description=(description or "").strip() or None,
        secret=generate_secret(),
        enabled=True,
        created_by=actor.email or actor.name,
        created_at=now,
        updated_at=now,
        subscriptions=[WebhookSubscription(event_type=event_type) for event_type in sorted(set(event_types))],
    )
    with runtime.unit_of_work() as uow:
        uow.webhook_endpoints.add(endpoint)
    log.info("webhook endpoint %s registered by %s", endpoint.id, actor.id)
    return endpoint


def list_webhook_endpoints(runtime: FollowupRuntime, actor: Principal) -> list[WebhookEndpoint]:
    """Every endpoint, the oldest first; admins only."""
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        return uow.webhook_endpoints.all()


def get_webhook_endpoint(runtime: FollowupRuntime, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        return _endpoint(uow, endpoint_id)


def disable_webhook_endpoint(runtime: FollowupRuntime, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
    """No new deliveries, and the waiting ones held, until it is enabled again; admins only."""
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        endpoint = _endpoint(uow, endpoint_id)
        if endpoint.enabled:
            _disable(endpoint, f"Disabled by {actor.name}.", utcnow())
        return endpoint


def enable_webhook_endpoint(runtime: FollowupRuntime, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
    """New events are delivered again, and the deliveries held while it was disabled go out when due."""
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        endpoint = _endpoint(uow, endpoint_id)
        if not endpoint.enabled:
            endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
            endpoint.updated_at = utcnow()
        return endpoint


def delete_webhook_endpoint(runtime: FollowupRuntime, actor: Principal, endpoint_id: str) -> None:
    """The endpoint and its delivery log; what was waiting is never sent. Admins only."""
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        uow.webhook_endpoints.delete(_endpoint(uow, endpoint_id))
    log.info("webhook endpoint %s deleted by %s", endpoint_id, actor.id)


def list_webhook_deliveries(
    runtime: FollowupRuntime, actor: Principal, endpoint_id: str, limit: int = 100
) -> list[WebhookDelivery]:
    """An endpoint's delivery log, the newest first; admins only."""
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        _endpoint(uow, endpoint_id)
        return uow.webhook_deliveries.for_endpoint(endpoint_id, limit)


def list_alert_deliveries(
    runtime: FollowupRuntime, actor: Principal, limit: int = 100
) -> list[WebhookDelivery]:
    """The alerts' delivery log, the newest first; admins only."""
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        return uow.webhook_deliveries.alerts(limit)


def resend_webhook_delivery(runtime: FollowupRuntime, actor: Principal, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again ("send again" in the log); admins only. Returns the delivery that will go out.

    A delivered or failed one is copied into a new delivery with the same message and webhook-id (a receiver
    that had it already de-duplicates); one still waiting for a retry is simply due now. One being sent, or
    one to a disabled endpoint, is a ConflictError.
    """
    _require_admin(actor)
    with runtime.unit_of_work() as uow:
        original = uow.webhook_deliveries.get(delivery_id)
        if original is None:
            raise NotFoundError(f"There is no webhook delivery {delivery_id}.")
        if original.endpoint_id is not None and not _endpoint(uow, original.endpoint_id).enabled:
            raise ConflictError("The endpoint is disabled: enable it before sending anything again.")
        now = utcnow()
        if original.status == DeliveryStatus.SENDING:
            raise ConflictError("This delivery is being sent right now.")
        if original.status == DeliveryStatus.SCHEDULED:
            original.next_attempt_at, original.updated_at = now, now
            return original
        kind, payload = DeliveryKind(original.kind), original.payload
        again = _new_delivery(kind, original.url, original.endpoint_id, original.event_type, payload, now)
        again.message_id, again.resent_from = original.message_id, original.id
        uow.webhook_deliveries.add(again)
        return again


def convert_referral(
    runtime: FollowupRuntime, referral_request_id: str, conversion: Mapping[str, Any] | None = None
) -> ReferralRequest:
    """The hook referral attribution calls when a referred customer converts: the request is converted, and
    referral.converted goes to the endpoints subscribed to it.

    ``conversion`` is what the attribution knows (the referred customer's CRM id, the CRM event's id...): it
    is sent as the event's ``data.conversion``, so it must be JSON and name no more than the CRM needs.
    """
    with runtime.unit_of_work() as uow:
        request = uow.referrals.get(referral_request_id)
        if request is None:
            raise NotFoundError(f"There is no referral request {referral_request_id}.")
        _convert(uow, request, conversion or {}, utcnow())
        return request


def _convert(
    uow: FollowupUnitOfWork, request: ReferralRequest, conversion: Mapping[str, Any], now: datetime
) -> bool:
    """Converted once and announced once: False, and nothing done, when it was converted already.

    A withdrawn request converts too: its link went out before the answer changed, and it worked.
    """
    if request.status == ReferralStatus.CONVERTED:
        return False
    request.status, request.converted_at, request.send_at = ReferralStatus.CONVERTED, now, None
    data = webhooks.referral_data(request, conversion)
    _record_webhooks(uow, WebhookEventType.REFERRAL_CONVERTED, data, now)
    return True


def _announce_response(
    uow: FollowupUnitOfWork, data: dict[str, Any], now: datetime, scored_at: datetime
) -> None:
    """response.received (stamped when the customer answered) and response.scored, for every revision.

    Both come from sentiment's response.scored, which carries the whole answer: followup does not consume
    response.submitted, so an answer reaches the receivers once sentiment has scored it.
    """
    received = webhooks.response_data(data, scored=False)
    _record_webhooks(uow, WebhookEventType.RESPONSE_RECEIVED, received, now, data["submitted_at"])
    scored = webhooks.response_data(data, scored=True)
    _record_webhooks(uow, WebhookEventType.RESPONSE_SCORED, scored, now, scored_at)


def send_due_webhooks(runtime: FollowupRuntime, limit: int = 50) -> int:
    """Due job: attempt every webhook and alert whose time has come, outside any transaction.

    The batch is claimed at once and sent one after the other, so its calls must end within the claim's
    lease: 50 attempts of a few seconds each (5 s to connect, 5 s per read) end well within 15 minutes.
    """
    with runtime.unit_of_work() as uow:
        claimed = uow.webhook_deliveries.claim_due(utcnow(), limit)
        outgoing = [_outgoing(uow, delivery) for delivery in claimed]
    for message in outgoing:
        try:
            _record_attempt(runtime, message.delivery_id, _attempt(runtime, message))
        except Exception:
            # The rest of the batch is claimed too: it must not wait for the lease because of this one.
            log.exception("webhook delivery %s: the attempt ended unexpectedly", message.delivery_id)
    return len(outgoing)


def recover_stalled_webhooks(runtime: FollowupRuntime, now: datetime | None = None) -> int:
    """Put deliveries whose worker died mid-attempt back on the schedule; receivers de-duplicate a repeat."""
    with runtime.unit_of_work() as uow:
        stalled = uow.webhook_deliveries.recover_stalled(now or utcnow())
        for delivery in stalled:
            delivery.last_error = "The attempt was interrupted before the receiver answered."
    return len(stalled)


@dataclass(frozen=True)
class _Outgoing:
    """A claimed delivery as the attempt needs it, read before its transaction ended."""

    delivery_id: str
    url: str
    message_id: str
    payload: dict[str, Any]
    secret: str | None  # None: an alert, not signed


@dataclass(frozen=True)
class _Attempt:
    status: int | None = None
    body: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and webhooks.is_delivered(self.status)


def _outgoing(uow: FollowupUnitOfWork, delivery: WebhookDelivery) -> _Outgoing:
    endpoint = uow.webhook_endpoints.get(delivery.endpoint_id) if delivery.endpoint_id else None
    return _Outgoing(
        delivery.id,
        delivery.url,
        delivery.message_id,
        delivery.payload,
        endpoint.secret if endpoint else None,
    )


def _attempt(runtime: FollowupRuntime, message: _Outgoing) -> _Attempt:
    """One POST, its address checked again first: a name may resolve elsewhere than at registration."""
    try:
        target, address = _receiver(runtime, message.url)
        body = webhooks.encode(message.payload)
        headers = webhooks.request_headers(message.secret, message.message_id, body, utcnow())
        answer = _sender(runtime).post(target, address, body, headers)
    except (RefusedUrl, HttpSendError) as failure:
        # A timeout may come after the receiver acted: retrying is safe, it de-duplicates on webhook-id.
        return _Attempt(error=str(failure))
    error = (
        None
        if webhooks.is_delivered(answer.status)
        else webhooks.failure_text(answer.status, answer.location)
    )
    return _Attempt(answer.status, webhooks.excerpt(answer.body), error)


def _record_attempt(runtime: FollowupRuntime, delivery_id: str, attempt: _Attempt) -> None:
    """Delivered, or back on the schedule; after the last attempt the delivery fails and its endpoint is
    disabled, so a receiver that is gone stops costing attempts."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        delivery = uow.webhook_deliveries.get(delivery_id)
        if delivery is None:
            return  # deleted with its endpoint meanwhile
        delivery.last_attempt_at = now
        delivery.response_status, delivery.response_body = attempt.status, attempt.body
        if attempt.delivered:
            WEBHOOK_RETRIES.finish(delivery, DeliveryStatus.DELIVERED, now)
            delivery.delivered_at, delivery.last_error = now, None
            return
        delivery.last_error = webhooks.error_text(attempt.error or "The attempt failed.")
        if WEBHOOK_RETRIES.retry_later(delivery, now) is not None:
            return
        log.warning("webhook delivery %s failed after %d attempts", delivery.id, delivery.attempts)
        endpoint = uow.webhook_endpoints.get(delivery.endpoint_id) if delivery.endpoint_id else None
        if endpoint is not None and endpoint.enabled:
            reason = (
                f"Disabled automatically: a {delivery.event_type} delivery failed {delivery.attempts} times "
                f"over about a day. Last error: {delivery.last_error}"
            )
            _disable(endpoint, webhooks.error_text(reason), now)
            log.warning("webhook endpoint %s disabled after delivery %s failed", endpoint.id, delivery.id)


def _receiver(runtime: FollowupRuntime, url: str) -> tuple[WebhookTarget, str]:
    """Where ``url`` is and the address to connect to, every resolved address checked; RefusedUrl if one is
    refused, HttpSendError if the host does not resolve."""
    allow_private = runtime.settings.webhooks_allow_private
    target = webhooks.check_url(url, allow_private)
    addresses = _sender(runtime).resolve(target.host, target.port)
    webhooks.check_addresses(target.host, addresses, allow_private)
    return target, addresses[0]


def _sender(runtime: FollowupRuntime) -> WebhookSender:
    if runtime.webhook_sender is None:
        raise RuntimeError("this followup runtime has no webhook sender")
    return runtime.webhook_sender


def _record_webhooks(
    uow: FollowupUnitOfWork,
    event_type: WebhookEventType,
    data: Mapping[str, Any],
    now: datetime,
    occurred_at: datetime | None = None,
) -> None:
    """One delivery per enabled endpoint subscribed to ``event_type``, in the caller's transaction."""
    body = webhooks.message(event_type, occurred_at or now, data)
    for endpoint in uow.webhook_endpoints.subscribed_to(event_type):
        uow.webhook_deliveries.add(
            _new_delivery(DeliveryKind.WEBHOOK, endpoint.url, endpoint.id, event_type, body, now)
        )


def _announce_task_change(
    uow: FollowupUnitOfWork, task: FollowupTask, change: TimelineEntry, now: datetime
) -> None:
    """followup.resolved for the change that resolved the task, followup.updated for any other."""
    resolved = change.to_status == TaskStatus.RESOLVED and change.from_status != TaskStatus.RESOLVED
    event_type = WebhookEventType.FOLLOWUP_RESOLVED if resolved else WebhookEventType.FOLLOWUP_UPDATED
    _record_webhooks(uow, event_type, webhooks.task_data(task, change), now)


def _announce_followup_task(
    runtime: FollowupRuntime,
    uow: FollowupUnitOfWork,
    task: FollowupTask,
    change: TimelineEntry,
    opened: bool,
    was_high: bool,
    now: datetime,
) -> None:
    """followup.opened or followup.updated; an alert when the task is, or has just become, high priority."""
    if opened:
        _record_webhooks(uow, WebhookEventType.FOLLOWUP_OPENED, webhooks.task_data(task), now)
    else:
        _announce_task_change(uow, task, change, now)
    alert_url = runtime.settings.followup_alert_webhook_url
    if alert_url and task.priority == TaskPriority.HIGH and not was_high and task.status in ACTIVE_STATUSES:
        task_url = f"{runtime.settings.public_url_for(models.SERVICE)}/tasks/{task.id}"
        customer = task.customer_name or task.customer_external_id or "A customer"
        alert = webhooks.alert_message(customer, task.score, task.comment, task_url)
        event_type = WebhookEventType.FOLLOWUP_OPENED if opened else WebhookEventType.FOLLOWUP_UPDATED
        uow.webhook_deliveries.add(_new_delivery(DeliveryKind.ALERT, alert_url, None, event_type, alert, now))


def _new_delivery(
    kind: DeliveryKind,
    url: str,
    endpoint_id: str | None,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
) -> WebhookDelivery:
    delivery_id = str(uuid.uuid4())
    return WebhookDelivery(
        id=delivery_id,
        kind=kind,
        endpoint_id=endpoint_id,
        url=url,
        event_type=event_type,
        message_id=webhooks.new_message_id(delivery_id),
        payload=payload,
        status=DeliveryStatus.SCHEDULED,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def _endpoint(uow: FollowupUnitOfWork, endpoint_id: str) -> WebhookEndpoint:
    endpoint = uow.webhook_endpoints.get(endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"There is no webhook endpoint {endpoint_id}.")
    return endpoint


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
    endpoint.updated_at = now


def _require_admin(actor: Principal) -> None:
    if not actor.role.allows(Role.ADMIN):
        raise ForbiddenError("Only an admin manages webhooks.")
