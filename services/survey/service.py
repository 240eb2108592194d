"""The survey service's use cases; each owns its transaction."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.http import NotFoundError
from shared.unit_of_work import Conflict, UnitOfWork

from . import domain
from .models import CrmEvent, Customer, Invitation, Response, ScoreClick
from .runtime import SurveyRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    duplicate: bool
    decision: str
    reason: str
    invitation_id: str | None


def accept_crm_event(runtime: SurveyRuntime, event: dict[str, Any], source: str = "default") -> EventOutcome:
    """Store a validated CRM event and its customer, decide whether to survey, and request the invitation.

    A repeat of an event id from the same source changes nothing and says so.
    """
    try:
        return _accept_once(runtime, event, source)
    except Conflict:
        # A concurrent request inserted this event, or this new customer, first and has committed: this
        # second try finds the event (a duplicate) or the customer (locked, then updated).
        return _accept_once(runtime, event, source)


def _accept_once(runtime: SurveyRuntime, event: dict[str, Any], source: str) -> EventOutcome:
    with runtime.unit_of_work() as uow:
        existing = _find_crm_event(uow.session, source, event["id"])
        if existing:
            return _outcome(existing, duplicate=True)
        return _outcome(_record_crm_event(runtime, uow, event, source), duplicate=False)


def _find_crm_event(session: Session, source: str, external_id: str) -> CrmEvent | None:
    return session.scalars(
        select(CrmEvent).where(CrmEvent.source == source, CrmEvent.external_id == external_id)
    ).first()


def _outcome(crm_event: CrmEvent, duplicate: bool) -> EventOutcome:
    return EventOutcome(
        crm_event.id, duplicate, crm_event.decision, crm_event.reason, crm_event.invitation_id
    )


def _record_crm_event(
    runtime: SurveyRuntime, uow: UnitOfWork, event: dict[str, Any], source: str
) -> CrmEvent:
    session = uow.session
    now = utcnow()
    customer = _upsert_customer(session, event["customer"], now)
    last_invited_at = session.scalar(
        select(func.max(Invitation.created_at)).where(Invitation.customer_id == customer.id)
    )
    decision = domain.decide_survey(event["type"], event["occurred_at"], now, last_invited_at)
    crm_event = CrmEvent(
        id=str(uuid.uuid4()),
        source=source,
        external_id=event["id"],
        type=event["type"],
        occurred_at=event["occurred_at"],
        received_at=now,
        customer_id=customer.id,
        properties=event.get("properties") or {},
        decision="invited" if decision.invite else "skipped",
        reason=decision.reason,
    )
    session.add(crm_event)
    session.flush()
    if decision.invite:
        crm_event.invitation_id = _request_invitation(runtime, uow, customer, crm_event, now).id
    return crm_event


def _upsert_customer(session: Session, fields: dict[str, Any], now: datetime) -> Customer:
    # Locked until commit, so two events for one customer cannot both pass the quarantine check.
    customer = session.scalars(
        select(Customer).where(Customer.external_id == fields["external_id"]).with_for_update()
    ).first()
    if customer is None:
        customer = Customer(
            id=str(uuid.uuid4()),
            external_id=fields["external_id"],
            locale="en",
            preferred_channel="email",
            properties={},
            created_at=now,
        )
        session.add(customer)
    # The CRM's latest word on a contact wins; a field it leaves out keeps what we knew.
    for name in ("email", "phone", "name", "locale", "timezone", "preferred_channel"):
        if fields.get(name) is not None:
            setattr(customer, name, fields[name])
    if fields.get("attributes"):
        customer.properties = {**customer.properties, **fields["attributes"]}
    customer.updated_at = now
    session.flush()
    return customer


def _request_invitation(
    runtime: SurveyRuntime, uow: UnitOfWork, customer: Customer, crm_event: CrmEvent, now: datetime
) -> Invitation:
    touchpoint = domain.TOUCHPOINTS[crm_event.type]
    locale = domain.resolve_locale(customer.locale)
    invitation = Invitation(
        id=str(uuid.uuid4()),
        token=secrets.token_urlsafe(24),
        customer_id=customer.id,
        crm_event_id=crm_event.id,
        touchpoint=touchpoint,
        locale=locale,
        properties={**customer.properties, **crm_event.properties},
        created_at=now,
    )
    uow.session.add(invitation)
    message = domain.survey_message(locale, touchpoint, customer.name)
    uow.emit(
        "invitation.requested",
        {
            "invitation_id": invitation.id,
            "touchpoint": touchpoint,
            "locale": locale,
            "preferred_channel": customer.preferred_channel,
            "contact": {
                "customer_id": customer.id,
                "name": customer.name,
                "email": customer.email,
                "phone": customer.phone,
                "timezone": customer.timezone,
            },
            "message": {
                "subject": message.subject,
                "greeting": message.greeting,
                "question": message.question,
                "low_label": message.low_label,
                "high_label": message.high_label,
                "sms_body": message.sms_body,
                "answer_url": runtime.answer_base_url + invitation.token,
            },
        },
    )
    return invitation


# --- Answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerPage:
    """What the answer page shows for an invitation."""

    token: str
    locale: str
    question: str
    low_label: str
    high_label: str
    chosen_score: int | None
    comment: str | None
    answered: bool


def answer_page(
    runtime: SurveyRuntime, token: str, clicked_score: int | None, user_agent: str | None
) -> AnswerPage:
    """Show the page for a score link; a click is recorded provisionally, never as the answer itself."""
    with runtime.unit_of_work() as uow:
        session = uow.session
        invitation, customer = _invitation_by_token(session, token)
        if clicked_score is not None:
            session.add(
                ScoreClick(
                    invitation_id=invitation.id,
                    score=clicked_score,
                    clicked_at=utcnow(),
                    user_agent=(user_agent or "")[:200] or None,
                )
            )
        return _answer_page(invitation, customer, _response_for(session, invitation.id), clicked_score)


def submit_answer(runtime: SurveyRuntime, token: str, score: int, comment: str | None) -> AnswerPage:
    """A person confirmed a score (and maybe a comment) on the answer page; returns the page it leaves."""
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow.session, token)
        response = _save_response(uow, invitation, customer, score, (comment or "").strip() or None, "email")
        return _answer_page(invitation, customer, response, None)


def _answer_page(
    invitation: Invitation, customer: Customer, response: Response | None, clicked_score: int | None
) -> AnswerPage:
    message = domain.survey_message(invitation.locale, invitation.touchpoint, customer.name)
    return AnswerPage(
        token=invitation.token,
        locale=invitation.locale,
        question=message.question,
        low_label=message.low_label,
        high_label=message.high_label,
        chosen_score=clicked_score if clicked_score is not None else (response.score if response else None),
        comment=response.comment if response else None,
        answered=response is not None,
    )


def settle_clicked_answers(runtime: SurveyRuntime, now: datetime | None = None) -> int:
    """Turn settled, person-made link clicks into answers for invitations nobody confirmed on the page.

    Safe in several clocks at once: each invitation is settled in its own transaction under a row lock.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        candidates = uow.session.scalars(
            select(ScoreClick.invitation_id)
            .outerjoin(Response, Response.invitation_id == ScoreClick.invitation_id)
            .where(Response.id.is_(None))
            .group_by(ScoreClick.invitation_id)
            .having(func.max(ScoreClick.clicked_at) <= now - domain.SETTLE_AFTER)
        ).all()
    return sum(_settle_invitation(runtime, invitation_id, now) for invitation_id in candidates)


def _settle_invitation(runtime: SurveyRuntime, invitation_id: str, now: datetime) -> bool:
    with runtime.unit_of_work() as uow:
        session = uow.session
        query = select(Invitation).where(Invitation.id == invitation_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        invitation = session.scalars(query).first()
        if invitation is None or _response_for(session, invitation_id) is not None:
            return False  # another clock holds it, or a person answered meanwhile
        clicks = session.scalars(select(ScoreClick).where(ScoreClick.invitation_id == invitation_id)).all()
        score = domain.settled_score([domain.Click(c.score, c.clicked_at) for c in clicks], now)
        if score is None:
            # Every click was a scanner's: forget them so the invitation is not looked at again.
            for click in clicks:
                session.delete(click)
            return False
        _save_response(uow, invitation, session.get(Customer, invitation.customer_id), score, None, "email")
        return True


@consumes("sms.received")
def record_sms_answer(runtime: SurveyRuntime, uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A score, a comment, or both, for the invitation an SMS reply answers."""
    data, session = event.data, uow.session
    invitation = session.get(Invitation, data["invitation_id"])
    if invitation is None:
        log.warning("sms.received for unknown invitation %s", data["invitation_id"])
        return
    customer = session.get(Customer, invitation.customer_id)
    answer = domain.parse_sms_answer(data["body"])
    response = _response_for(session, invitation.id)
    if answer.score is None and response is None:
        log.info("SMS reply without a score for invitation %s, nothing to record", invitation.id)
        return
    score = answer.score if answer.score is not None else response.score
    comment = domain.merge_comment(response.comment if response else None, answer.comment)
    _save_response(uow, invitation, customer, score, comment, "sms")


def _save_response(
    uow: UnitOfWork,
    invitation: Invitation,
    customer: Customer,
    score: int,
    comment: str | None,
    channel: str,
) -> Response:
    session = uow.session
    now = utcnow()
    response = _response_for(session, invitation.id)
    if response is None:
        response = Response(
            id=str(uuid.uuid4()),
            invitation_id=invitation.id,
            customer_id=customer.id,
            score=score,
            comment=comment,
            channel=channel,
            revision=1,
            submitted_at=now,
            updated_at=now,
        )
        session.add(response)
    else:
        if (response.score, response.comment) == (score, comment):
            return response
        response.score, response.comment = score, comment
        response.revision += 1
        response.updated_at = now
    session.flush()
    uow.emit(
        "response.submitted",
        {
            "response_id": response.id,
            "invitation_id": invitation.id,
            "revision": response.revision,
            "score": response.score,
            "comment": response.comment,
            "locale": invitation.locale,
            "touchpoint": invitation.touchpoint,
            "channel": response.channel,
            "customer": {
                "customer_id": customer.id,
                "external_id": customer.external_id,
                "name": customer.name,
            },
            "submitted_at": response.updated_at.isoformat(),
        },
    )
    return response


def _invitation_by_token(session: Session, token: str) -> tuple[Invitation, Customer]:
    invitation = session.scalars(select(Invitation).where(Invitation.token == token)).first()
    if invitation is None:
        raise NotFoundError("This survey link is not valid.")
    return invitation, session.get(Customer, invitation.customer_id)


def _response_for(session: Session, invitation_id: str) -> Response | None:
    return session.scalars(select(Response).where(Response.invitation_id == invitation_id)).first()


# --- Analytics ---------------------------------------------------------------------------------------


def nps(runtime: SurveyRuntime, touchpoint: str | None = None) -> domain.NpsSummary:
    with runtime.unit_of_work() as uow:
        session = uow.session
        query = select(Response.score)
        if touchpoint:
            query = query.join(Invitation, Invitation.id == Response.invitation_id).where(
                Invitation.touchpoint == touchpoint
            )
        return domain.nps_summary(session.scalars(query).all())
