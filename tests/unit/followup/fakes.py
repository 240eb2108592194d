"""The followup service on an in-memory unit of work: every use case runs in milliseconds, no database."""

from __future__ import annotations

from services.followup.domain import TaskPriority, TaskStatus
from services.followup.models import SERVICE, FollowupTask, ReferralRequest
from services.followup.runtime import FollowupRuntime
from services.followup.unit_of_work import FollowupUnitOfWork
from shared.unit_of_work import Conflict, InMemoryUnitOfWork
from tests.conftest import make_settings


class InMemoryTasks:
    def __init__(self) -> None:
        self.by_response: dict[str, FollowupTask] = {}

    def for_response(self, response_id: str) -> FollowupTask | None:
        return self.by_response.get(response_id)

    def add(self, task: FollowupTask) -> None:
        # The table's unique key: a second task for one response is a bug the fake must not hide.
        if task.response_id in self.by_response:
            raise Conflict(f"a task for response {task.response_id} exists")
        self.by_response[task.response_id] = task

    def queue(self, status: TaskStatus | None, limit: int) -> list[FollowupTask]:
        tasks = [task for task in self.by_response.values() if status is None or task.status == status]
        tasks.sort(key=lambda task: (task.priority != TaskPriority.HIGH, task.due_at))
        return tasks[:limit]


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
        self.tasks = InMemoryTasks()
        self.referrals = InMemoryReferralRequests()


def fake_runtime(uow: FakeFollowupUnitOfWork) -> FollowupRuntime:
    """A runtime whose every unit of work is ``uow``, so a test reads what the use cases left there."""
    return FollowupRuntime(make_settings("sqlite://"), lambda: uow)
