"""The followup service's use cases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.unit_of_work import UnitOfWork

from . import domain
from .models import FollowupTask, ReferralRequest
from .runtime import FollowupRuntime


@consumes("response.scored")
def act_on_scored_response(runtime: FollowupRuntime, uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A task for a detractor, a referral request for a promoter.

    A later revision of the same response (a comment after the score) updates what it opened; an older
    revision arriving late changes nothing.
    """
    data, session = event.data, uow.session
    group = domain.nps_group(data["score"])
    now = utcnow()
    task = session.scalars(
        select(FollowupTask).where(FollowupTask.response_id == data["response_id"])
    ).first()
    if task is not None and task.response_revision >= data["revision"]:
        return
    sentiment = data["sentiment"]
    if group is domain.NpsGroup.DETRACTOR:
        urgency = domain.task_urgency(data["score"], sentiment["label"] if sentiment else None, now)
        if task is None:
            task = FollowupTask(
                id=str(uuid.uuid4()),
                response_id=data["response_id"],
                invitation_id=data["invitation_id"],
                customer_id=data["customer"]["customer_id"],
                status="open",
                created_at=now,
                due_at=urgency.due_at,
            )
            session.add(task)
        task.response_revision = data["revision"]
        task.customer_external_id = data["customer"].get("external_id")
        task.customer_name = data["customer"].get("name")
        task.touchpoint = data["touchpoint"]
        task.score, task.comment, task.sentiment = data["score"], data["comment"], sentiment
        # A revision may make it more urgent, never give the team more time than first promised.
        task.priority = "high" if "high" in (task.priority, urgency.priority) else urgency.priority
        task.due_at = min(task.due_at, urgency.due_at)
        task.updated_at = now
    elif task is not None and task.status == "open":
        # The customer changed the score to a passive or promoter one: nothing left to follow up.
        task.status, task.score = "dismissed", data["score"]
        task.response_revision, task.updated_at = data["revision"], now
    if group is domain.NpsGroup.PROMOTER:
        _request_referral(session, data, now)


def _request_referral(session: Session, data: dict[str, Any], now: datetime) -> None:
    exists = session.scalars(
        select(ReferralRequest.id).where(ReferralRequest.response_id == data["response_id"])
    ).first()
    if exists:
        return
    session.add(
        ReferralRequest(
            id=str(uuid.uuid4()),
            response_id=data["response_id"],
            invitation_id=data["invitation_id"],
            customer_id=data["customer"]["customer_id"],
            customer_name=data["customer"].get("name"),
            score=data["score"],
            status="requested",
            created_at=now,
        )
    )


def list_tasks(runtime: FollowupRuntime, status: str | None = "open", limit: int = 100) -> list[FollowupTask]:
    """The queue: most urgent first (high priority, then the earliest due)."""
    with runtime.unit_of_work() as uow:
        session = uow.session
        query = select(FollowupTask)
        if status:
            query = query.where(FollowupTask.status == status)
        query = query.order_by((FollowupTask.priority == "high").desc(), FollowupTask.due_at).limit(limit)
        return list(session.scalars(query).all())


def list_referral_requests(runtime: FollowupRuntime, limit: int = 100) -> list[ReferralRequest]:
    with runtime.unit_of_work() as uow:
        session = uow.session
        query = select(ReferralRequest).order_by(ReferralRequest.created_at.desc()).limit(limit)
        return list(session.scalars(query).all())
