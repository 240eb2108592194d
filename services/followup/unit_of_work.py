"""The followup service's unit of work: its tasks and referral requests, read and changed in one transaction.

The use cases see ``FollowupUnitOfWork`` and the two repository ports; ``SqlFollowupUnitOfWork`` implements
them on the service's database, and the unit tests' fake implements them in memory.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import Database
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models
from .domain import TaskPriority, TaskStatus
from .models import FollowupTask, ReferralRequest


class Tasks(Protocol):
    def for_response(self, response_id: str) -> FollowupTask | None:
        """The task opened for a response, whatever its status."""
        ...

    def add(self, task: FollowupTask) -> None: ...

    def queue(self, status: TaskStatus | None, limit: int) -> list[FollowupTask]:
        """Tasks with ``status`` (any when None), most urgent first: high priority, then the earliest due."""
        ...


class ReferralRequests(Protocol):
    def exists_for_response(self, response_id: str) -> bool: ...

    def add(self, request: ReferralRequest) -> None: ...

    def newest(self, limit: int) -> list[ReferralRequest]:
        """Referral requests, the most recently created first."""
        ...


class FollowupUnitOfWork(UnitOfWork):
    """What the followup use cases work with: a transaction and the service's repositories."""

    tasks: Tasks
    referrals: ReferralRequests


class SqlTasks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_response(self, response_id: str) -> FollowupTask | None:
        return self.session.scalars(
            select(FollowupTask).where(FollowupTask.response_id == response_id)
        ).first()

    def add(self, task: FollowupTask) -> None:
        self.session.add(task)

    def queue(self, status: TaskStatus | None, limit: int) -> list[FollowupTask]:
        query = select(FollowupTask)
        if status:
            query = query.where(FollowupTask.status == status)
        query = query.order_by((FollowupTask.priority == TaskPriority.HIGH).desc(), FollowupTask.due_at)
        return list(self.session.scalars(query.limit(limit)).all())


class SqlReferralRequests:
    def __init__(self, session: Session) -> None:
        self.session = session

    def exists_for_response(self, response_id: str) -> bool:
        found = self.session.scalars(
            select(ReferralRequest.id).where(ReferralRequest.response_id == response_id)
        ).first()
        return found is not None

    def add(self, request: ReferralRequest) -> None:
        self.session.add(request)

    def newest(self, limit: int) -> list[ReferralRequest]:
        query = select(ReferralRequest).order_by(ReferralRequest.created_at.desc()).limit(limit)
        return list(self.session.scalars(query).all())


class SqlFollowupUnitOfWork(SqlUnitOfWork, FollowupUnitOfWork):
    def __init__(self, database: Database) -> None:
        super().__init__(models.SERVICE, database, models.outbox, models.consumed_events)

    def _open_repositories(self, session: Session) -> None:
        self.tasks = SqlTasks(session)
        self.referrals = SqlReferralRequests(session)
