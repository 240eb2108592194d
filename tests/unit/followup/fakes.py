"""The followup service on an in-memory unit of work: every use case runs in milliseconds, no database.

Rows are the service's own ORM classes used as plain objects. A failed block drops the events it emitted, as
a rollback would; changes it made to rows stay, so the use cases check before they change anything.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from services.followup import domain
from services.followup.domain import OWNER_NONE, TaskPriority, TaskQuery, TaskSort
from services.followup.models import SERVICE, FollowupTask, ReferralRequest, Team, TimelineEntry
from services.followup.runtime import FollowupRuntime
from services.followup.unit_of_work import FollowupUnitOfWork
from shared.principal import Principal, Role
from shared.unit_of_work import Conflict, InMemoryUnitOfWork
from tests.conftest import make_settings
from tests.fakes import FakeIdentityStore

# The success team of these tests.
ANA = Principal("user", "u-ana", "Ana Lima", Role.AGENT, "ana@example.com")
BEN = Principal("user", "u-ben", "Ben Okafor", Role.AGENT, "ben@example.com")
MAYA = Principal("user", "u-maya", "Maya Şahin", Role.MANAGER, "maya@example.com")


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
        TaskSort.PRIORITY: task.priority == TaskPriority.HIGH,
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

    def exists_for_response(self, response_id: str) -> bool:
        return response_id in self.by_response

    def add(self, request: ReferralRequest) -> None:
        if request.response_id in self.by_response:
            raise Conflict(f"a referral request for response {request.response_id} exists")
        self.by_response[request.response_id] = request

    def newest(self, limit: int) -> list[ReferralRequest]:
        return sorted(self.by_response.values(), key=lambda request: request.created_at, reverse=True)[:limit]


class FakeFollowupUnitOfWork(InMemoryUnitOfWork, FollowupUnitOfWork):
    """The repositories live as long as the fake: what one block added, the next one finds."""

    def __init__(self) -> None:
        super().__init__(SERVICE)
        self.timeline = InMemoryTimeline()
        self.tasks = InMemoryTasks(self.timeline)
        self.teams = InMemoryTeams()
        self.referrals = InMemoryReferralRequests()


def fake_runtime(uow: FakeFollowupUnitOfWork, **settings: float) -> FollowupRuntime:
    """A runtime whose every unit of work is ``uow``, so a test reads what the use cases left there.

    Its identity store knows the staff of ``support``: ``tests.fakes.bearer(ANA)`` signs a request as Ana.
    """
    return FollowupRuntime(
        make_settings("sqlite://", **settings), lambda: uow, identity=FakeIdentityStore(ANA, BEN, MAYA)
    )
