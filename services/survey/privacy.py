"""Erasure and export of everything survey holds about one customer; erasure reaches the other services
through ``customer.erased``, whose consumers delete what they hold."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, or_, select, update

from shared.clock import utcnow
from shared.consumers import ERASED_EVENT, record_erasure
from shared.errors import NotFoundError
from shared.outbox import forget_events_mentioning
from shared.personal_data import row_data

from .models import (
    EVENT_RECEIVED,
    AnswerMessage,
    ChannelOptOut,
    CrmEvent,
    Customer,
    DelightedImport,
    DelightedSuppression,
    DelightedSurveyRequest,
    FollowUpSurvey,
    Invitation,
    Response,
    ResponseKeyPhrase,
    ResponseSentiment,
    ScoreClick,
    outbox,
)
from .runtime import SurveyRuntime

log = logging.getLogger(__name__)


def customer_id_for(runtime: SurveyRuntime, external_id: str) -> str:
    with runtime.unit_of_work() as uow:
        customer = uow.customers.by_external_id(external_id)
        if customer is None:
            raise NotFoundError(f"No customer {external_id}.")
        return customer.id


def erase_by_external_id(runtime: SurveyRuntime, external_id: str) -> tuple[str | None, dict[str, int]]:
    """Erase the customer a CRM knows as ``external_id`` (``erase_customer``): their id and the rows erased.

    Not a customer yet, they may have events waiting for the decider (its first one, the clock behind or
    down): those are erased and the id is None; nothing else holds anything about them then. NotFoundError
    when there is neither.
    """
    waiting = 0
    with runtime.unit_of_work() as uow:
        customer = uow.customers.by_external_id(external_id)
        if customer is None:
            waiting = _delete(uow.session, CrmEvent, _received_for(external_id))
            # A decider deciding one of them was waited for: that one is decided, its customer made (this
            # statement reads what committed meanwhile) and erased below.
            customer = uow.customers.by_external_id(external_id)
        customer_id = customer.id if customer is not None else None
    if customer_id is None:
        if not waiting:
            raise NotFoundError(f"No customer {external_id}.")
        log.info("erased %d events waiting for their decision, of someone not yet a customer", waiting)
        return None, {"crm_events": waiting}
    counts = erase_customer(runtime, customer_id)
    counts["crm_events"] += waiting
    return customer_id, counts


def erase_customer(runtime: SurveyRuntime, customer_id: str) -> dict[str, int]:
    """Delete the customer and every row about them (events, invitations, clicks, responses, follow-ups,
    Delighted requests, unsubscribes, bounces, imports, outbox rows), then tell the other services.

    Returns how many rows of each kind went. Run again for an erased customer it raises NotFoundError.
    """
    with runtime.unit_of_work() as uow:
        session = uow.session  # erasure deletes by key across every table: SQL, no repository per table
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFoundError("No such customer.")
        # First of all: a consumer acting on an event about them (a response's sentiment arriving now) is
        # waited for, and any later one meets the erasure mark. Taken before the row locks below, which such
        # a consumer may be waiting for: the other order could deadlock.
        marked_addresses = _addresses(customer)
        record_erasure(uow, customer_id, marked_addresses)
        # Their events received but not yet decided carry their fields, not their id (the decider sets it):
        # deciding one later would make them a customer again. A decider deciding one now is waited for;
        # its decision is theirs then, and goes with their other events below.
        received_events = _delete(session, CrmEvent, _received_for(customer.external_id))
        # Rows locked before anything is deleted, as well: whatever else adds a row pointing at one of them
        # waits for the erasure, then fails its foreign key. Without the locks its insert could land between
        # our deletes and make the last of them fail. (SQLite's writers are serialised; no FOR UPDATE there.)
        customer = session.get(Customer, customer_id, with_for_update=True, populate_existing=True)
        if customer is None:  # erased meanwhile by another request
            raise NotFoundError("No such customer.")
        invitation_ids = list(
            session.scalars(
                select(Invitation.id).where(Invitation.customer_id == customer_id).with_for_update()
            )
        )
        response_ids = list(
            session.scalars(select(Response.id).where(Response.customer_id == customer_id).with_for_update())
        )
        addresses = _addresses(customer)
        emails = [customer.email.lower()] if customer.email else []
        counts = {
            "score_clicks": _delete(session, ScoreClick, ScoreClick.invitation_id.in_(invitation_ids)),
            "answer_messages": _delete(
                session, AnswerMessage, AnswerMessage.invitation_id.in_(invitation_ids)
            ),
            "response_sentiments": _delete(
                session, ResponseSentiment, ResponseSentiment.response_id.in_(response_ids)
            ),
            "response_key_phrases": _delete(
                session, ResponseKeyPhrase, ResponseKeyPhrase.response_id.in_(response_ids)
            ),
            "opt_outs": sum(
                _delete(
                    session,
                    ChannelOptOut,
                    (ChannelOptOut.channel == item["channel"]) & (ChannelOptOut.address == item["address"]),
                )
                for item in _addresses(customer)
            ),
            "follow_up_surveys": _delete(
                session,
                FollowUpSurvey,
                or_(
                    FollowUpSurvey.customer_id == customer_id,
                    FollowUpSurvey.invitation_id.in_(invitation_ids),
                ),
            ),
            "responses": _delete(session, Response, Response.customer_id == customer_id),
            "delighted_survey_requests": _delete(
                session, DelightedSurveyRequest, DelightedSurveyRequest.customer_id == customer_id
            ),
        }
        # Invitations point at CRM events and CRM events name invitations: unlink before deleting either.
        session.execute(
            update(CrmEvent).where(CrmEvent.customer_id == customer_id).values(invitation_id=None)
        )
        counts["invitations"] = _delete(session, Invitation, Invitation.customer_id == customer_id)
        counts["crm_events"] = received_events + _delete(
            session, CrmEvent, CrmEvent.customer_id == customer_id
        )
        counts["delighted_suppressions"] = _delete(
            session,
            DelightedSuppression,
            or_(DelightedSuppression.customer_id == customer_id, DelightedSuppression.email.in_(emails)),
        )
        counts["delighted_imports"] = _delete(
            session, DelightedImport, DelightedImport.customer_id == customer_id
        )
        session.delete(customer)
        session.flush()
        counts["customers"] = 1
        # Every event about them names their id: invitation.requested, response.submitted, referral.code_used.
        counts["outbox_events"] = forget_events_mentioning(session, outbox, customer_id)
        # unsubscribe.requested names only the address.
        for item in addresses:
            counts["outbox_events"] += forget_events_mentioning(session, outbox, item["address"])
        if addresses != marked_addresses:  # changed while the erasure waited: those are marked too
            record_erasure(uow, customer_id, addresses)
        uow.emit(
            ERASED_EVENT,
            {
                "customer_id": customer_id,
                "invitation_ids": invitation_ids,
                "response_ids": response_ids,
                "addresses": addresses,
            },
        )
    log.info("customer %s erased in survey: %s", customer_id, counts)
    return counts


def _received_for(external_id: str) -> Any:
    """Their CRM events still waiting for the decider: those name them by their fields, not by their id."""
    named = CrmEvent.customer_fields["external_id"].as_string() == external_id
    return (CrmEvent.status == EVENT_RECEIVED) & named


def _delete(session: Any, model: Any, condition: Any) -> int:
    return session.execute(delete(model).where(condition)).rowcount or 0


def forget_acknowledged_erasures(runtime: SurveyRuntime) -> int:
    """Scheduler job: an erasure event names the addresses it erased; once every consumer has acknowledged
    it, nothing needs it any more, so its outbox row goes at once instead of after the retention."""
    with runtime.unit_of_work() as uow:
        return (
            uow.session.execute(
                delete(outbox).where(
                    outbox.c.event_type == ERASED_EVENT,
                    outbox.c.next_publish_at.is_(None),
                    outbox.c.created_at <= utcnow(),
                )
            ).rowcount
            or 0
        )


def export_customer(runtime: SurveyRuntime, customer_id: str) -> dict[str, Any]:
    """Everything survey holds about the customer, and the keys the other services find their part by."""
    with runtime.unit_of_work() as uow:
        session = uow.session
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFoundError("No such customer.")
        invitations = list(session.scalars(select(Invitation).where(Invitation.customer_id == customer_id)))
        invitation_ids = [row.id for row in invitations]
        responses = _rows(session, Response, Response.customer_id == customer_id)
        tables = {
            "customers": [row_data(customer)],
            "crm_events": _rows(
                session, CrmEvent, (CrmEvent.customer_id == customer_id) | _received_for(customer.external_id)
            ),
            # The token is the secret of the answer link, not data about the person.
            "invitations": [row_data(row, exclude=("token",)) for row in invitations],
            "score_clicks": _rows(session, ScoreClick, ScoreClick.invitation_id.in_(invitation_ids)),
            "answer_messages": _rows(session, AnswerMessage, AnswerMessage.invitation_id.in_(invitation_ids)),
            "responses": responses,
            "response_sentiments": _rows(
                session,
                ResponseSentiment,
                ResponseSentiment.response_id.in_([row["id"] for row in responses]),
            ),
            "opt_outs": [
                row
                for item in _addresses(customer)
                for row in _rows(
                    session,
                    ChannelOptOut,
                    (ChannelOptOut.channel == item["channel"]) & (ChannelOptOut.address == item["address"]),
                )
            ],
            "follow_up_surveys": _rows(session, FollowUpSurvey, FollowUpSurvey.customer_id == customer_id),
            "delighted_survey_requests": _rows(
                session, DelightedSurveyRequest, DelightedSurveyRequest.customer_id == customer_id
            ),
            "delighted_suppressions": _rows(
                session, DelightedSuppression, DelightedSuppression.customer_id == customer_id
            ),
        }
        keys = {
            "customer_id": customer_id,
            "invitation_ids": invitation_ids,
            "response_ids": [row["id"] for row in responses],
            "addresses": _addresses(customer),
        }
        return {"service": "survey", "tables": tables, "keys": keys}


def _addresses(customer: Customer) -> list[dict[str, str]]:
    return [
        {"channel": channel, "address": address}
        for channel, address in (
            ("email", customer.email),
            ("sms", customer.phone),
            ("whatsapp", customer.phone),
        )
        if address
    ]


def _rows(session: Any, model: Any, condition: Any) -> list[dict[str, Any]]:
    return [row_data(row) for row in session.scalars(select(model).where(condition))]
