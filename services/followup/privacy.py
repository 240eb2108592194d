"""Erasure in followup: a customer erased in survey leaves no task, note, referral, review request, webhook
delivery or outbox event here."""

from __future__ import annotations

import logging

from sqlalchemy import Text, cast, delete, select

from shared.consumers import ReceivedEvent, consumes, record_erasure
from shared.outbox import forget_events_mentioning
from shared.personal_data import row_data

from . import models
from .models import (
    FollowupTask,
    ReferralClick,
    ReferralRequest,
    ResponseRevision,
    ReviewRequest,
    TimelineEntry,
    WebhookDelivery,
)
from .runtime import FollowupRuntime
from .unit_of_work import FollowupUnitOfWork

log = logging.getLogger(__name__)


@consumes("customer.erased")
def erase_customer(runtime: FollowupRuntime, uow: FollowupUnitOfWork, event: ReceivedEvent) -> None:
    data = event.data
    customer_id = data["customer_id"]
    record_erasure(uow, customer_id)
    session = uow.session  # erasure deletes by key across every table
    task_ids = select(FollowupTask.id).where(FollowupTask.customer_id == customer_id)
    session.execute(delete(TimelineEntry).where(TimelineEntry.task_id.in_(task_ids)))
    tasks = session.execute(delete(FollowupTask).where(FollowupTask.customer_id == customer_id)).rowcount
    referral_ids = select(ReferralRequest.id).where(ReferralRequest.customer_id == customer_id)
    session.execute(delete(ReferralClick).where(ReferralClick.referral_request_id.in_(referral_ids)))
    session.execute(delete(ReferralRequest).where(ReferralRequest.customer_id == customer_id))
    session.execute(delete(ReviewRequest).where(ReviewRequest.customer_id == customer_id))
    session.execute(delete(ResponseRevision).where(ResponseRevision.response_id.in_(data["response_ids"])))
    # Outbound webhooks carried the response (and the customer's contact) to the CRM; our copies go.
    session.execute(delete(WebhookDelivery).where(cast(WebhookDelivery.payload, Text).contains(customer_id)))
    forget_events_mentioning(session, models.outbox, customer_id)
    log.info("customer %s erased in followup: %d tasks", customer_id, tasks)


def export_customer(runtime: FollowupRuntime, keys: dict) -> dict[str, list[dict]]:
    """The customer's tasks with their timelines, referral requests with their clicks, and review requests."""
    customer_id = keys["customer_id"]
    with runtime.unit_of_work() as uow:
        session = uow.session

        def rows(model, condition) -> list[dict]:
            return [row_data(row) for row in session.scalars(select(model).where(condition))]

        task_ids = select(FollowupTask.id).where(FollowupTask.customer_id == customer_id)
        referral_ids = select(ReferralRequest.id).where(ReferralRequest.customer_id == customer_id)
        return {
            "tasks": rows(FollowupTask, FollowupTask.customer_id == customer_id),
            "timeline": rows(TimelineEntry, TimelineEntry.task_id.in_(task_ids)),
            "referral_requests": rows(ReferralRequest, ReferralRequest.customer_id == customer_id),
            "referral_clicks": rows(ReferralClick, ReferralClick.referral_request_id.in_(referral_ids)),
            "review_requests": rows(ReviewRequest, ReviewRequest.customer_id == customer_id),
        }
