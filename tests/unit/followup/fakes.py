"""The followup service on an in-memory unit of work: every use case runs in milliseconds, no database.

Rows are the service's own ORM classes used as plain objects. A failed block drops the events it emitted, as
a rollback would; changes it made to rows stay, so the use cases check before they change anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.followup import domain
from services.followup.domain import OWNER_NONE, PRIORITY_RANK, ReferralStatus, TaskQuery, TaskSort
from services.followup.models import (
    SERVICE,
    FollowupTask,
    ReferralClick,
    ReferralRequest,
    ResponseRevision,
    ReviewRequest,
    Team,
    TimelineEntry,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.followup.providers import HttpAnswer, HttpSendError
from services.followup.runtime import FollowupRuntime
from services.followup.unit_of_work import FollowupUnitOfWork
from services.followup.webhooks import WEBHOOK_RETRIES, DeliveryKind, WebhookTarget
from shared.principal import Principal, Role
from shared.unit_of_work import Conflict, InMemoryUnitOfWork
from tests.conftest import make_settings
from tests.fakes import FakeIdentityStore

# The success team of these tests.
ANA = Principal("user", "u-ana", "Ana Lima", Role.AGENT, "ana@example.com")
BEN = Principal("user", "u-ben", "Ben Okafor", Role.AGENT, "ben@example.com")
MAYA = Principal("user", "u-maya", "Maya Şahin", Role.MANAGER, "maya@example.com")


class InMemoryResponseRevisions:
    def __init__(self) -> None:
        self.rows: dict[str, ResponseRevision] = {}

    def latest(self, response_id: str) -> ResponseRevision | None:
        return self.rows.get(response_id)

    def add(self, revision: ResponseRevision) -> None:
        if revision.response_id in self.rows:
            raise Conflict(f"response {revision.response_id} has its revision row")
        self.rows[revision.response_id] = revision


class InMemoryTimeline:
    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []
        self._ids = itertools.count(1)

    def add(self, entry: TimelineEntry) -> None:
        entry.id = next(self._ids)  # the table's sequence
        self.entries.append(entry)

    def of(self, task_id: str) -> list[TimelineEntry]:
        return [entry for entry in self.entries if entry.task_id == task_id]


class InMemoryTasks:
    def __init__(self, timeline: InMemoryTimeline) -> None:
        self.by_response: dict[str, FollowupTask] = {}
        self.timeline = timeline

    def for_response(self, response_id: str) -> FollowupTask | None:
        return self.by_response.get(response_id)

    def get(self, task_id: str, for_update: bool = False) -> FollowupTask | None:
        return next((task for task in self.by_response.values() if task.id == task_id), None)

    def with_timeline(self, task_id: str) -> FollowupTask | None:
        task = self.get(task_id)
        if task is not None:
            task.timeline = self.timeline.of(task_id)
        return task

    def add(self, task: FollowupTask) -> None:
        # The table's unique key: a second task for one response is a bug the fake must not hide.
        if task.response_id in self.by_response:
            raise Conflict(f"a task for response {task.response_id} exists")
        self.by_response[task.response_id] = task

    def search(self, query: TaskQuery, now: datetime) -> tuple[list[FollowupTask], int]:
        tasks = [task for task in self.by_response.values() if _matches(task, query, now)]
        # Ties go to the soonest due, then the id, as in SQL: sort by those first, then (stably) by the key.
        tasks.sort(key=lambda task: (task.due_at, task.id))
        tasks.sort(key=lambda task: _sort_key(task, query.sort), reverse=query.is_descending)
        return tasks[query.offset : query.offset + query.page_size], len(tasks)


def _matches(task: FollowupTask, query: TaskQuery, now: datetime) -> bool:
    owner = None if query.owner == OWNER_NONE else query.owner
    return (
        task.status in query.statuses
        and (query.owner is None or task.owner_id == owner)
        and query.team_id in (None, task.team_id)
        and query.touchpoint in (None, task.touchpoint)
        and query.priority in (None, task.priority)
        and query.overdue in (None, domain.is_overdue(task.status, task.due_at, now))
    )


def _sort_key(task: FollowupTask, sort: TaskSort) -> object:
    return {
        TaskSort.DUE_AT: task.due_at,
        TaskSort.CREATED_AT: task.created_at,
        TaskSort.SCORE: task.score,
        TaskSort.PRIORITY: PRIORITY_RANK[task.priority],
    }[sort]


class InMemoryTeams:
    def __init__(self) -> None:
        self.rows: dict[str, Team] = {}

    def get(self, team_id: str) -> Team | None:
        return self.rows.get(team_id)

    def named(self, name: str) -> Team | None:
        return next((team for team in self.rows.values() if team.name == name), None)

    def handling(self, touchpoint: str) -> Team | None:
        return next(
            (team for team in self.rows.values() if touchpoint in {t.touchpoint for t in team.touchpoints}),
            None,
        )

    def all(self) -> list[Team]:
        return sorted(self.rows.values(), key=lambda team: team.name)

    def add(self, team: Team) -> None:
        # The tables' unique keys: a team's name, and a touchpoint (one team's at most).
        taken = {t.touchpoint for other in self.rows.values() for t in other.touchpoints}
        if self.named(team.name) or taken & {t.touchpoint for t in team.touchpoints}:
            raise Conflict(f"team {team.name} or one of its touchpoints exists")
        self.rows[team.id] = team

    def take_turn(self, team_id: str) -> int:
        team = self.rows[team_id]
        team.turns += 1
        return team.turns


class InMemoryReferralRequests:
    def __init__(self) -> None:
        self.by_response: dict[str, ReferralRequest] = {}
        self.clicks: list[ReferralClick] = []

    def get(self, request_id: str) -> ReferralRequest | None:
        return next((request for request in self.by_response.values() if request.id == request_id), None)

    def for_response(self, response_id: str) -> ReferralRequest | None:
        return self.by_response.get(response_id)

    def by_code(self, code: str, for_update: bool = False) -> ReferralRequest | None:
        return next((request for request in self.by_response.values() if request.code == code), None)

    def add(self, request: ReferralRequest) -> None:
        # The table's unique keys: one request per response, and a code is one request's.
        if request.response_id in self.by_response or self.by_code(request.code):
            raise Conflict(f"a referral request for response {request.response_id} or its code exists")
        self.by_response[request.response_id] = request

    def newest(self, limit: int) -> list[ReferralRequest]:
        return sorted(self.by_response.values(), key=lambda request: request.created_at, reverse=True)[:limit]

    def due(self, now: datetime, limit: int) -> list[ReferralRequest]:
        due = [
            request
            for request in self.by_response.values()
            if request.status == ReferralStatus.REQUESTED
            and request.send_at is not None
            and request.send_at <= now
        ]
        return sorted(due, key=lambda request: request.send_at)[:limit]

    def add_click(self, click: ReferralClick) -> None:
        click.id = len(self.clicks) + 1  # the table's sequence
        self.clicks.append(click)


class InMemoryReviewRequests:
    def __init__(self) -> None:
        self.by_response: dict[str, ReviewRequest] = {}

    def for_response(self, response_id: str) -> ReviewRequest | None:
        return self.by_response.get(response_id)

    def add(self, request: ReviewRequest) -> None:
        if request.response_id in self.by_response:
            raise Conflict(f"a review request for response {request.response_id} exists")
        self.by_response[request.response_id] = request

    def due(self, now: datetime, limit: int) -> list[ReviewRequest]:
        due = [row for row in self.by_response.values() if row.send_at is not None and row.send_at <= now]
        return sorted(due, key=lambda request: request.send_at)[:limit]


class InMemoryWebhookEndpoints:
    def __init__(self) -> None:
        self.rows: dict[str, WebhookEndpoint] = {}
        self.deliveries: InMemoryWebhookDeliveries | None = None

    def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self.rows.get(endpoint_id)

    def all(self) -> list[WebhookEndpoint]:
        return sorted(self.rows.values(), key=lambda endpoint: (endpoint.created_at, endpoint.id))

    def subscribed_to(self, event_type: str) -> list[WebhookEndpoint]:
        return [row for row in self.all() if row.enabled and event_type in row.event_types]

    def add(self, endpoint: WebhookEndpoint) -> None:
        self.rows[endpoint.id] = endpoint

    def delete(self, endpoint: WebhookEndpoint) -> None:
        del self.rows[endpoint.id]
        if self.deliveries is not None:
            self.deliveries.rows = {
                key: row for key, row in self.deliveries.rows.items() if row.endpoint_id != endpoint.id
            }


class InMemoryWebhookDeliveries:
    def __init__(self, endpoints: InMemoryWebhookEndpoints) -> None:
        self.rows: dict[str, WebhookDelivery] = {}
        self.endpoints = endpoints

    def get(self, delivery_id: str) -> WebhookDelivery | None:
        return self.rows.get(delivery_id)

    def add(self, delivery: WebhookDelivery) -> None:
        self.rows[delivery.id] = delivery

    def for_endpoint(self, endpoint_id: str, limit: int) -> list[WebhookDelivery]:
        return self._newest([row for row in self.rows.values() if row.endpoint_id == endpoint_id], limit)

    def alerts(self, limit: int) -> list[WebhookDelivery]:
        return self._newest([row for row in self.rows.values() if row.kind == DeliveryKind.ALERT], limit)

    @staticmethod
    def _newest(rows: list[WebhookDelivery], limit: int) -> list[WebhookDelivery]:
        # Insertion order breaks ties of created_at, as the id does in SQL (rows made in one tick).
        ordered = list(reversed(rows))
        return sorted(ordered, key=lambda row: row.created_at, reverse=True)[:limit]

    def claim_due(self, now: datetime, limit: int) -> list[WebhookDelivery]:
        due = [
            row
            for row in self.rows.values()
            if WEBHOOK_RETRIES.is_due(row, now)
            and (row.endpoint_id is None or self.endpoints.rows[row.endpoint_id].enabled)
        ]
        claimed = sorted(due, key=lambda row: row.next_attempt_at)[:limit]
        for row in claimed:
            WEBHOOK_RETRIES.mark_claimed(row, now)
        return claimed

    def recover_stalled(self, now: datetime) -> list[WebhookDelivery]:
        stalled = [row for row in self.rows.values() if WEBHOOK_RETRIES.is_stalled(row, now)]
        for row in stalled:
            WEBHOOK_RETRIES.retry_later(row, now)
        return stalled

    def of_kind(self, kind: str) -> list[WebhookDelivery]:
        """Oldest first, for the tests."""
        return [row for row in self.rows.values() if row.kind == kind]


@dataclass
class SentRequest:
    target: WebhookTarget
    address: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeWebhookSender:
    """The HTTP edge in memory: names resolve as ``addresses`` says (a literal address to itself), and every
    POST is kept in ``sent`` and answered as ``by_host`` says, else with the next of ``answers`` (an
    HttpAnswer, or an HttpSendError to raise), then with ``default``."""

    addresses: dict[str, list[str]] = field(default_factory=dict)
    answers: list[HttpAnswer | HttpSendError] = field(default_factory=list)
    default: HttpAnswer | HttpSendError = field(default_factory=lambda: HttpAnswer(204, b""))
    # The answer of every POST to one host, before ``answers`` and ``default``.
    by_host: dict[str, HttpAnswer] = field(default_factory=dict)
    sent: list[SentRequest] = field(default_factory=list)

    def resolve(self, host: str, port: int) -> list[str]:
        if host in self.addresses:
            return list(self.addresses[host])
        if host.replace(".", "").isdigit() or ":" in host:
            return [host]
        raise HttpSendError(f"{host} does not resolve (fake)")

    def post(
        self, target: WebhookTarget, address: str, body: bytes, headers: Mapping[str, str]
    ) -> HttpAnswer:
        self.sent.append(SentRequest(target, address, body, dict(headers)))
        if target.host in self.by_host:
            return self.by_host[target.host]
        answer = self.answers.pop(0) if self.answers else self.default
        if isinstance(answer, HttpSendError):
            raise answer
        return answer


# Public addresses of documentation-free ranges, for receivers' names in the tests.
CRM_ADDRESS = "93.184.216.34"
CRM_HOST = "crm.example.com"


class FakeFollowupUnitOfWork(InMemoryUnitOfWork, FollowupUnitOfWork):
    """The repositories live as long as the fake: what one block added, the next one finds."""

    def __init__(self) -> None:
        super().__init__(SERVICE)
        self.revisions = InMemoryResponseRevisions()
        self.timeline = InMemoryTimeline()
        self.tasks = InMemoryTasks(self.timeline)
        self.teams = InMemoryTeams()
        self.referrals = InMemoryReferralRequests()
        self.review_requests = InMemoryReviewRequests()
        self.webhook_endpoints = InMemoryWebhookEndpoints()
        self.webhook_deliveries = InMemoryWebhookDeliveries(self.webhook_endpoints)
        self.webhook_endpoints.deliveries = self.webhook_deliveries


def fake_runtime(
    uow: FakeFollowupUnitOfWork, sender: FakeWebhookSender | None = None, **settings: Any
) -> FollowupRuntime:
    """A runtime whose every unit of work is ``uow``, so a test reads what the use cases left there.

    Its identity store knows the staff of ``support``: ``tests.fakes.bearer(ANA)`` signs a request as Ana.
    Its webhook sender is ``sender``, by default one where ``CRM_HOST`` resolves to a public address.
    """
    return FollowupRuntime(
        make_settings("sqlite://", **settings),
        lambda: uow,
        identity=FakeIdentityStore(ANA, BEN, MAYA),
        webhook_sender=sender or FakeWebhookSender({CRM_HOST: [CRM_ADDRESS]}),
    )
