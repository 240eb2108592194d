"""The followup service's unit of work: the responses' latest revisions, its tasks and their timelines, its
teams, the referral and review requests, and the outbound webhooks' endpoints and deliveries, read and changed
in one transaction.

The use cases see ``FollowupUnitOfWork`` and the repository ports; ``SqlFollowupUnitOfWork`` implements them
on the service's database, and the unit tests' fake implements them in memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, case, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from shared.claims import claim_due, recover_stalled
from shared.db import Database
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models
from .domain import ACTIVE_STATUSES, OWNER_NONE, PRIORITY_RANK, ReferralStatus, TaskQuery, TaskSort
from .models import (
    FollowupTask,
    ReferralClick,
    ReferralRequest,
    ResponseRevision,
    ReviewRequest,
    Team,
    TeamTouchpoint,
    TimelineEntry,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from .webhooks import WEBHOOK_RETRIES, DeliveryKind


class ResponseRevisions(Protocol):
    def latest(self, response_id: str) -> ResponseRevision | None:
        """The latest revision acted on, locked until the transaction ends: two revisions of one response
        are decided one after the other."""
        ...

    def add(self, revision: ResponseRevision) -> None: ...


class Tasks(Protocol):
    def for_response(self, response_id: str) -> FollowupTask | None:
        """The task opened for a response, whatever its status."""
        ...

    def get(self, task_id: str, for_update: bool = False) -> FollowupTask | None:
        """A task; ``for_update`` locks it until the transaction ends, so changes to it queue up."""
        ...

    def with_timeline(self, task_id: str) -> FollowupTask | None:
        """A task with its ``timeline`` loaded, oldest entry first."""
        ...

    def add(self, task: FollowupTask) -> None: ...

    def search(self, query: TaskQuery, now: datetime) -> tuple[list[FollowupTask], int]:
        """The page of tasks ``query`` asks for, and how many tasks match it on every page."""
        ...


class Timeline(Protocol):
    def add(self, entry: TimelineEntry) -> None: ...


class Teams(Protocol):
    def get(self, team_id: str) -> Team | None: ...

    def named(self, name: str) -> Team | None: ...

    def handling(self, touchpoint: str) -> Team | None:
        """The team that follows up ``touchpoint``, if one does."""
        ...

    def all(self) -> list[Team]:
        """Every team, by name."""
        ...

    def add(self, team: Team) -> None: ...

    def take_turn(self, team_id: str) -> int:
        """Count one more task handed out by the team and return its number (the first is 1).

        Two transactions never get the same number: this is what keeps several workers' round-robin fair.
        """
        ...


class ReferralRequests(Protocol):
    def get(self, request_id: str) -> ReferralRequest | None: ...

    def for_response(self, response_id: str) -> ReferralRequest | None: ...

    def by_code(self, code: str, for_update: bool = False) -> ReferralRequest | None:
        """The request whose link carries ``code``; ``for_update`` locks it until the transaction ends."""
        ...

    def add(self, request: ReferralRequest) -> None: ...

    def newest(self, limit: int) -> list[ReferralRequest]:
        """Referral requests, the most recently created first."""
        ...

    def due(self, now: datetime, limit: int) -> list[ReferralRequest]:
        """Requests still asked for whose ``send_at`` has come, earliest first, locked until the transaction
        ends; rows another transaction holds are skipped, not waited for."""
        ...

    def add_click(self, click: ReferralClick) -> None: ...


class ReviewRequests(Protocol):
    def for_response(self, response_id: str) -> ReviewRequest | None: ...

    def add(self, request: ReviewRequest) -> None: ...

    def due(self, now: datetime, limit: int) -> list[ReviewRequest]:
        """Requests whose ``send_at`` has come, earliest first, locked as ``ReferralRequests.due``."""
        ...


class WebhookEndpoints(Protocol):
    def get(self, endpoint_id: str) -> WebhookEndpoint | None: ...

    def all(self) -> list[WebhookEndpoint]:
        """Every endpoint, the oldest first."""
        ...

    def subscribed_to(self, event_type: str) -> list[WebhookEndpoint]:
        """The enabled endpoints subscribed to ``event_type``."""
        ...

    def add(self, endpoint: WebhookEndpoint) -> None: ...

    def delete(self, endpoint: WebhookEndpoint) -> None:
        """The endpoint, its subscriptions and its delivery log."""
        ...


class WebhookDeliveries(Protocol):
    def get(self, delivery_id: str) -> WebhookDelivery | None: ...

    def add(self, delivery: WebhookDelivery) -> None: ...

    def for_endpoint(self, endpoint_id: str, limit: int) -> list[WebhookDelivery]:
        """An endpoint's delivery log, the newest first."""
        ...

    def alerts(self, limit: int) -> list[WebhookDelivery]:
        """The alerts' delivery log, the newest first."""
        ...

    def claim_due(self, now: datetime, limit: int) -> list[WebhookDelivery]:
        """Up to ``limit`` due deliveries, earliest first, claimed (``WEBHOOK_RETRIES``); none to a disabled
        endpoint: those wait until it is enabled again."""
        ...

    def recover_stalled(self, now: datetime) -> list[WebhookDelivery]:
        """Deliveries whose claim outlived its lease, back on the schedule or given up."""
        ...


class FollowupUnitOfWork(UnitOfWork):
    """What the followup use cases work with: a transaction and the service's repositories."""

    revisions: ResponseRevisions
    tasks: Tasks
    timeline: Timeline
    teams: Teams
    referrals: ReferralRequests
    review_requests: ReviewRequests
    webhook_endpoints: WebhookEndpoints
    webhook_deliveries: WebhookDeliveries


class SqlResponseRevisions:
    def __init__(self, session: Session) -> None:
        self.session = session

    def latest(self, response_id: str) -> ResponseRevision | None:
        query = select(ResponseRevision).where(ResponseRevision.response_id == response_id)
        return self.session.scalars(query.with_for_update()).first()

    def add(self, revision: ResponseRevision) -> None:
        self.session.add(revision)


class SqlTasks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_response(self, response_id: str) -> FollowupTask | None:
        return self.session.scalars(
            select(FollowupTask).where(FollowupTask.response_id == response_id)
        ).first()

    def get(self, task_id: str, for_update: bool = False) -> FollowupTask | None:
        query = select(FollowupTask).where(FollowupTask.id == task_id)
        # SQLite leaves FOR UPDATE out; its transactions take the write lock at BEGIN (shared.db).
        return self.session.scalars(query.with_for_update() if for_update else query).first()

    def with_timeline(self, task_id: str) -> FollowupTask | None:
        query = select(FollowupTask).where(FollowupTask.id == task_id)
        return self.session.scalars(query.options(selectinload(FollowupTask.timeline))).first()

    def add(self, task: FollowupTask) -> None:
        self.session.add(task)

    def search(self, query: TaskQuery, now: datetime) -> tuple[list[FollowupTask], int]:
        conditions = _conditions(query, now)
        total = self.session.scalar(select(func.count()).select_from(FollowupTask).where(*conditions))
        page = (
            select(FollowupTask)
            .where(*conditions)
            .order_by(*_order(query))
            .offset(query.offset)
            .limit(query.page_size)
        )
        return list(self.session.scalars(page).all()), total or 0


def _conditions(query: TaskQuery, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [FollowupTask.status.in_(sorted(query.statuses))]
    if query.owner == OWNER_NONE:
        conditions.append(FollowupTask.owner_id.is_(None))
    elif query.owner is not None:
        conditions.append(FollowupTask.owner_id == query.owner)
    if query.team_id is not None:
        conditions.append(FollowupTask.team_id == query.team_id)
    if query.touchpoint is not None:
        conditions.append(FollowupTask.touchpoint == query.touchpoint)
    if query.priority is not None:
        conditions.append(FollowupTask.priority == query.priority)
    if query.overdue is not None:
        # domain.is_overdue, in SQL.
        overdue = FollowupTask.status.in_(sorted(ACTIVE_STATUSES)) & (FollowupTask.due_at < now)
        conditions.append(overdue if query.overdue else ~overdue)
    return conditions


def _order(query: TaskQuery) -> list[Any]:
    descending = query.is_descending
    columns: dict[TaskSort, Any] = {
        TaskSort.DUE_AT: FollowupTask.due_at,
        TaskSort.CREATED_AT: FollowupTask.created_at,
        TaskSort.SCORE: FollowupTask.score,
        TaskSort.PRIORITY: case(
            *((FollowupTask.priority == priority.value, rank) for priority, rank in PRIORITY_RANK.items()),
            else_=0,
        ),
    }
    key = columns[query.sort]
    # Ties go to the soonest due, then to the id, so that pages never overlap nor skip a task.
    return [key.desc() if descending else key.asc(), FollowupTask.due_at, FollowupTask.id]


class SqlTimeline:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: TimelineEntry) -> None:
        self.session.add(entry)


class SqlTeams:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, team_id: str) -> Team | None:
        return self.session.get(Team, team_id)

    def named(self, name: str) -> Team | None:
        return self.session.scalars(select(Team).where(Team.name == name)).first()

    def handling(self, touchpoint: str) -> Team | None:
        query = select(Team).join(TeamTouchpoint).where(TeamTouchpoint.touchpoint == touchpoint)
        return self.session.scalars(query).first()

    def all(self) -> list[Team]:
        return list(self.session.scalars(select(Team).order_by(Team.name)).all())

    def add(self, team: Team) -> None:
        self.session.add(team)

    def take_turn(self, team_id: str) -> int:
        # One statement: the row lock it takes makes a concurrent transaction wait and then count on from
        # the committed value (PostgreSQL re-reads the row under READ COMMITTED); SQLite runs one writer.
        turn = self.session.execute(
            update(Team).where(Team.id == team_id).values(turns=Team.turns + 1).returning(Team.turns),
            execution_options={"synchronize_session": False},
        ).scalar_one()
        return int(turn)


class SqlReferralRequests:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, request_id: str) -> ReferralRequest | None:
        return self.session.get(ReferralRequest, request_id)

    def for_response(self, response_id: str) -> ReferralRequest | None:
        query = select(ReferralRequest).where(ReferralRequest.response_id == response_id)
        return self.session.scalars(query).first()

    def by_code(self, code: str, for_update: bool = False) -> ReferralRequest | None:
        query = select(ReferralRequest).where(ReferralRequest.code == code)
        return self.session.scalars(query.with_for_update() if for_update else query).first()

    def add(self, request: ReferralRequest) -> None:
        self.session.add(request)

    def newest(self, limit: int) -> list[ReferralRequest]:
        query = select(ReferralRequest).order_by(ReferralRequest.created_at.desc()).limit(limit)
        return list(self.session.scalars(query).all())

    def due(self, now: datetime, limit: int) -> list[ReferralRequest]:
        query = (
            select(ReferralRequest)
            .where(ReferralRequest.status == ReferralStatus.REQUESTED, ReferralRequest.send_at <= now)
            .order_by(ReferralRequest.send_at)
            .limit(limit)
        )
        # Several clocks each take different rows; SQLite leaves the clause out and runs one writer.
        return list(self.session.scalars(query.with_for_update(skip_locked=True)).all())

    def add_click(self, click: ReferralClick) -> None:
        self.session.add(click)


class SqlReviewRequests:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_response(self, response_id: str) -> ReviewRequest | None:
        query = select(ReviewRequest).where(ReviewRequest.response_id == response_id)
        return self.session.scalars(query).first()

    def add(self, request: ReviewRequest) -> None:
        self.session.add(request)

    def due(self, now: datetime, limit: int) -> list[ReviewRequest]:
        query = (
            select(ReviewRequest)
            .where(ReviewRequest.send_at <= now)
            .order_by(ReviewRequest.send_at)
            .limit(limit)
        )
        return list(self.session.scalars(query.with_for_update(skip_locked=True)).all())


class SqlWebhookEndpoints:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self.session.get(WebhookEndpoint, endpoint_id)

    def all(self) -> list[WebhookEndpoint]:
        query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        return list(self.session.scalars(query).all())

    def subscribed_to(self, event_type: str) -> list[WebhookEndpoint]:
        query = (
            select(WebhookEndpoint)
            .join(WebhookSubscription)
            .where(WebhookEndpoint.enabled.is_(True), WebhookSubscription.event_type == event_type)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return list(self.session.scalars(query).all())

    def add(self, endpoint: WebhookEndpoint) -> None:
        self.session.add(endpoint)

    def delete(self, endpoint: WebhookEndpoint) -> None:
        self.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
        self.session.delete(endpoint)


class SqlWebhookDeliveries:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, delivery_id: str) -> WebhookDelivery | None:
        return self.session.get(WebhookDelivery, delivery_id)

    def add(self, delivery: WebhookDelivery) -> None:
        self.session.add(delivery)

    def for_endpoint(self, endpoint_id: str, limit: int) -> list[WebhookDelivery]:
        return self._newest(WebhookDelivery.endpoint_id == endpoint_id, limit)

    def alerts(self, limit: int) -> list[WebhookDelivery]:
        return self._newest(WebhookDelivery.kind == DeliveryKind.ALERT, limit)

    def _newest(self, condition: ColumnElement[bool], limit: int) -> list[WebhookDelivery]:
        query = (
            select(WebhookDelivery)
            .where(condition)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query).all())

    def claim_due(self, now: datetime, limit: int) -> list[WebhookDelivery]:
        enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
        # Alerts have no endpoint; a webhook waits while its endpoint is disabled.
        deliverable = or_(WebhookDelivery.endpoint_id.is_(None), WebhookDelivery.endpoint_id.in_(enabled))
        return claim_due(self.session, WebhookDelivery, WEBHOOK_RETRIES, now, limit, [deliverable])

    def recover_stalled(self, now: datetime) -> list[WebhookDelivery]:
        return recover_stalled(self.session, WebhookDelivery, WEBHOOK_RETRIES, now)


class SqlFollowupUnitOfWork(SqlUnitOfWork, FollowupUnitOfWork):
    def __init__(self, database: Database) -> None:
        super().__init__(models.SERVICE, database, models.outbox, models.consumed_events)

    def _open_repositories(self, session: Session) -> None:
        self.revisions = SqlResponseRevisions(session)
        self.tasks = SqlTasks(session)
        self.timeline = SqlTimeline(session)
        self.teams = SqlTeams(session)
        self.referrals = SqlReferralRequests(session)
        self.review_requests = SqlReviewRequests(session)
        self.webhook_endpoints = SqlWebhookEndpoints(session)
        self.webhook_deliveries = SqlWebhookDeliveries(session)
