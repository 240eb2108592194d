"""The followup service's use cases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.nps import NpsCategory, nps_category

from . import domain
from .domain import TaskStatus
from .models import FollowupTask, ReferralRequest
from .runtime import FollowupRuntime
from .unit_of_work import FollowupUnitOfWork


@consumes("response.scored")
def act_on_scored_response(runtime: FollowupRuntime, uow: FollowupUnitOfWork, event: ReceivedEvent) -> None:
    """A task for a detractor, a referral request for a promoter; a raised score dismisses an open task.

    A later revision of the same response (a comment after the score) updates what it opened; an older
    revision arriving late changes nothing.
    """
    data = event.data
    category = nps_category(data["score"])
    now = utcnow()
    task = uow.tasks.for_response(data["response_id"])
    if task is not None and task.response_revision >= data["revision"]:
        return
    if category is NpsCategory.DETRACTOR:
        _follow_up_detractor(uow, task, data, now)
    elif task is not None and TaskStatus.DISMISSED in domain.allowed_moves(task.status):
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
    uow: FollowupUnitOfWork, task: FollowupTask | None, data: dict[str, Any], now: datetime
) -> None:
    sentiment = data["sentiment"]
    urgency = domain.task_urgency(data["score"], sentiment["label"] if sentiment else None, now)
    if task is None:
        task = FollowupTask(
            id=str(uuid.uuid4()),
            response_id=data["response_id"],
            invitation_id=data["invitation_id"],
            customer_id=data["customer"]["customer_id"],
            status=TaskStatus.OPEN,
            owner=None,
            created_at=now,
        )
        uow.tasks.add(task)
    else:
        urgency = domain.TaskUrgency(domain.TaskPriority(task.priority), task.due_at).revised(urgency)
    task.response_revision = data["revision"]
    task.customer_external_id = data["customer"]["external_id"]
    task.customer_name = data["customer"]["name"]
    task.touchpoint = data["touchpoint"]
    task.score, task.comment, task.sentiment = data["score"], data["comment"], sentiment
    task.priority, task.due_at = urgency.priority, urgency.due_at
    task.updated_at = now


def list_tasks(
    runtime: FollowupRuntime, status: TaskStatus | None = TaskStatus.OPEN, limit: int = 100
) -> list[FollowupTask]:
    """The queue: most urgent first (high priority, then the earliest due)."""
    with runtime.unit_of_work() as uow:
        return uow.tasks.queue(status, limit)


def list_referral_requests(runtime: FollowupRuntime, limit: int = 100) -> list[ReferralRequest]:
    """Promoters to ask for a referral, newest first."""
    with runtime.unit_of_work() as uow:
        return uow.referrals.newest(limit)
