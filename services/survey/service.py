"""The survey service's use cases; each owns its transaction."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.channels import Channel
from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.http import NotFoundError
from shared.locales import DEFAULT_LOCALE, resolve_locale
from shared.metrics import counts_decisions
from shared.nps import NpsSummary, nps_summary
from shared.unit_of_work import Conflict

from . import domain
from .models import CrmEvent, Customer, FollowUpSurvey, Invitation, Response, ScoreClick, TriggerRuleRow
from .runtime import SurveyRuntime
from .unit_of_work import SurveyUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    duplicate: bool
    decision: str
    reason: str
    invitation_id: str | None
    # The machine-readable reason (domain.ReasonCode), and when a delayed survey is due: details of the
    # decision above, so left out of equality (an outcome is the same when its event and decision are).
    reason_code: str | None = field(default=None, compare=False)
    due_at: datetime | None = field(default=None, compare=False)


@counts_decisions
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
        existing = uow.crm_events.find(source, event["id"])
        if existing:
            return _outcome(existing, duplicate=True)
        return _outcome(_record_crm_event(runtime, uow, event, source), duplicate=False)


def _outcome(crm_event: CrmEvent, duplicate: bool) -> EventOutcome:
    return EventOutcome(
        crm_event.id,
        duplicate,
        crm_event.decision,
        crm_event.reason,
        crm_event.invitation_id,
        crm_event.reason_code,
        crm_event.due_at,
    )


def _record_crm_event(
    runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: dict[str, Any], source: str
) -> CrmEvent:
    now = utcnow()
    customer = _upsert_customer(uow, event["customer"], now)
    properties = event.get("properties") or {}
    rule = trigger_rule(uow, event["type"])
    decision = domain.decide_survey(
        event["type"],
        event["occurred_at"],
        now,
        uow.invitations.last_invited_at(customer.id),
        rule=rule,
        last_answered_at=uow.responses.last_answered_at(customer.id),
        properties=properties,
        # The CRM's ids, not ours: a retried event samples the same way.
        customer_key=customer.external_id,
        event_key=event["id"],
    )
    if rule is not None and decision.outcome != domain.Decision.SKIPPED:
        decision = _settle_with_pending(uow, rule, decision, customer.id, now)
    crm_event = CrmEvent(
        id=str(uuid.uuid4()),
        source=source,
        external_id=event["id"],
        type=event["type"],
        occurred_at=event["occurred_at"],
        received_at=now,
        customer_id=customer.id,
        properties=properties,
        invitation_id=None,
    )
    _record_decision(crm_event, decision, now)
    uow.crm_events.add(crm_event)
    if decision.invite:
        _invite_for_event(runtime, uow, crm_event, customer, rule, now)
    _report_referral(uow, crm_event)
    return crm_event


def _settle_with_pending(
    uow: SurveyUnitOfWork,
    rule: domain.TriggerRule,
    decision: domain.SurveyDecision,
    customer_id: str,
    now: datetime,
) -> domain.SurveyDecision:
    """One survey waits per customer: a higher priority replaces the waiting one, anything else gives way."""
    pending = [
        (row, trigger_rule(uow, row.type) or rule) for row in uow.crm_events.delayed_for_customer(customer_id)
    ]
    # Decided over all of them before any is changed, should more than one ever wait.
    for row, pending_rule in pending:
        if not domain.replaces_pending(rule, pending_rule):
            return domain.survey_pending(pending_rule.touchpoint, row.due_at or now)
    for row, _ in pending:
        _record_decision(row, domain.superseded(rule.event_type, rule.touchpoint), now)
    return decision


def _record_decision(crm_event: CrmEvent, decision: domain.SurveyDecision, now: datetime) -> None:
    crm_event.decision = decision.outcome.value
    crm_event.reason_code = decision.code.value
    # A condition quotes a staff-written value: cut to the columns rather than fail the event.
    crm_event.reason = decision.reason[:200]
    crm_event.explanation = decision.explanation[:400]
    crm_event.due_at = decision.due_at
    crm_event.decided_at = now


def _invite_for_event(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    crm_event: CrmEvent,
    customer: Customer,
    rule: domain.TriggerRule,
    now: datetime,
) -> None:
    properties = {**customer.properties, **crm_event.properties}
    invitation = _request_invitation(
        runtime,
        uow,
        customer,
        rule.touchpoint,
        properties,
        now,
        crm_event_id=crm_event.id,
        expires_at=domain.invitation_expires_at(rule, now),
    )
    crm_event.invitation_id = invitation.id


def invite_due_surveys(runtime: SurveyRuntime, now: datetime | None = None, limit: int = 50) -> int:
    """Scheduler job: decide every delayed survey whose due time has come; returns how many were invited.

    Safe in several clocks at once: each event is decided in its own transaction under its customer's row
    lock, the lock an incoming event takes too, and only while it is still delayed.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        due = uow.crm_events.due(now, limit)
    return sum(_release_delayed(runtime, crm_event_id, now) for crm_event_id in due)


def _release_delayed(runtime: SurveyRuntime, crm_event_id: str, now: datetime) -> bool:
    with runtime.unit_of_work() as uow:
        crm_event = uow.crm_events.get(crm_event_id)
        customer = uow.customers.get_for_update(uow.customers.get(crm_event.customer_id).external_id)
        if crm_event.decision != domain.Decision.DELAYED:
            return False  # another clock released it, or a higher-priority event superseded it meanwhile
        rule = trigger_rule(uow, crm_event.type)
        decision = domain.decide_when_due(
            rule,
            crm_event.type,
            now,
            uow.invitations.last_invited_at(customer.id),
            uow.responses.last_answered_at(customer.id),
        )
        _record_decision(crm_event, decision, now)
        if decision.invite:
            _invite_for_event(runtime, uow, crm_event, customer, rule, now)
        return decision.invite


# --- Trigger rules and the decisions they took ------------------------------------------------------------


def trigger_rule(uow: SurveyUnitOfWork, event_type: str) -> domain.TriggerRule | None:
    """The rule an event type follows: the stored one, else the built-in default; None: not surveyed."""
    row = uow.trigger_rules.get(event_type)
    return _rule_from_row(row) if row is not None else domain.DEFAULT_RULES.get(event_type)


def _rule_from_row(row: TriggerRuleRow) -> domain.TriggerRule:
    return domain.TriggerRule(
        event_type=row.event_type,
        touchpoint=row.touchpoint,
        enabled=row.enabled,
        delay=timedelta(hours=row.delay_hours),
        quarantine_after_invitation=timedelta(days=row.quarantine_after_invitation_days),
        quarantine_after_answer=timedelta(days=row.quarantine_after_answer_days),
        priority=row.priority,
        sampling_rate=row.sampling_rate,
        conditions=tuple(
            domain.Condition(c["property"], domain.ConditionOperator(c["operator"]), c["value"])
            for c in row.conditions
        ),
        max_event_age=timedelta(days=row.max_event_age_days),
        expires_after=timedelta(days=row.invitation_expiry_days) if row.invitation_expiry_days else None,
    )


def _rule_fields(rule: domain.TriggerRule, stored: bool) -> dict[str, Any]:
    """A rule as the API shows and takes it: whole hours and days, conditions as plain dicts."""
    return {
        "event_type": rule.event_type,
        "enabled": rule.enabled,
        "touchpoint": rule.touchpoint,
        "delay_hours": int(rule.delay.total_seconds() // 3600),
        "quarantine_after_invitation_days": rule.quarantine_after_invitation.days,
        "quarantine_after_answer_days": rule.quarantine_after_answer.days,
        "priority": rule.priority,
        "sampling_rate": rule.sampling_rate,
        "conditions": [
            {"property": c.property, "operator": c.operator.value, "value": c.value} for c in rule.conditions
        ],
        "max_event_age_days": rule.max_event_age.days,
        "invitation_expiry_days": rule.expires_after.days if rule.expires_after is not None else None,
        "is_default": not stored,
    }


def list_trigger_rules(runtime: SurveyRuntime) -> list[dict[str, Any]]:
    """Every rule in force: the stored ones and the defaults of the known event types not yet changed."""
    with runtime.unit_of_work() as uow:
        stored = {row.event_type: _rule_from_row(row) for row in uow.trigger_rules.all()}
    rules = [_rule_fields(rule, True) for rule in stored.values()]
    rules += [
        _rule_fields(rule, False)
        for event_type, rule in domain.DEFAULT_RULES.items()
        if event_type not in stored
    ]
    return sorted(rules, key=lambda rule: rule["event_type"])


def get_trigger_rule(runtime: SurveyRuntime, event_type: str) -> dict[str, Any]:
    with runtime.unit_of_work() as uow:
        row = uow.trigger_rules.get(event_type)
        rule = _rule_from_row(row) if row is not None else domain.DEFAULT_RULES.get(event_type)
    if rule is None:
        raise NotFoundError(f"No trigger rule for {event_type}.")
    return _rule_fields(rule, row is not None)


def put_trigger_rule(runtime: SurveyRuntime, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create or replace the rule of an event type, known or custom; ``fields`` as TriggerRuleSchema loads."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        row = uow.trigger_rules.get(event_type)
        known = row is not None
        row = row or TriggerRuleRow(event_type=event_type)
        for name in _RULE_COLUMNS:
            setattr(row, name, fields[name])
        row.conditions = [dict(condition) for condition in fields["conditions"]]
        row.updated_at = now
        if not known:
            uow.trigger_rules.add(row)
        rule = _rule_from_row(row)
    log.info("trigger rule for %s %s", event_type, "changed" if known else "created")
    return _rule_fields(rule, True)


_RULE_COLUMNS = (
    "enabled",
    "touchpoint",
    "delay_hours",
    "quarantine_after_invitation_days",
    "quarantine_after_answer_days",
    "priority",
    "sampling_rate",
    "max_event_age_days",
    "invitation_expiry_days",
)


def is_surveyable_event_type(runtime: SurveyRuntime, event_type: str) -> bool:
    """A CRM may send the known types and those a rule was stored for; anything else is refused."""
    if event_type in domain.DEFAULT_RULES:
        return True
    with runtime.unit_of_work() as uow:
        return uow.trigger_rules.get(event_type) is not None


@dataclass(frozen=True)
class DecisionRecord:
    """What was decided about one CRM event, and why."""

    event_id: str
    source: str
    external_id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    decided_at: datetime
    decision: str
    reason_code: str
    reason: str
    explanation: str
    due_at: datetime | None
    invitation_id: str | None
    customer_external_id: str


def _decision_record(crm_event: CrmEvent, customer: Customer) -> DecisionRecord:
    return DecisionRecord(
        event_id=crm_event.id,
        source=crm_event.source,
        external_id=crm_event.external_id,
        type=crm_event.type,
        occurred_at=crm_event.occurred_at,
        received_at=crm_event.received_at,
        decided_at=crm_event.decided_at,
        decision=crm_event.decision,
        reason_code=crm_event.reason_code,
        reason=crm_event.reason,
        explanation=crm_event.explanation,
        due_at=crm_event.due_at,
        invitation_id=crm_event.invitation_id,
        customer_external_id=customer.external_id,
    )


def customer_decisions(runtime: SurveyRuntime, external_id: str, limit: int = 100) -> list[DecisionRecord]:
    """Every decision about a customer's CRM events, newest first."""
    with runtime.unit_of_work() as uow:
        customer = uow.customers.by_external_id(external_id)
        if customer is None:
            raise NotFoundError(f"No customer {external_id}.")
        return [_decision_record(row, customer) for row in uow.crm_events.for_customer(customer.id, limit)]


def event_decision(runtime: SurveyRuntime, crm_event_id: str) -> DecisionRecord:
    with runtime.unit_of_work() as uow:
        crm_event = uow.crm_events.get(crm_event_id)
        if crm_event is None:
            raise NotFoundError(f"No CRM event {crm_event_id}.")
        return _decision_record(crm_event, uow.customers.get(crm_event.customer_id))


def _report_referral(uow: SurveyUnitOfWork, crm_event: CrmEvent) -> None:
    """Tell followup that someone came through a referral link, whatever we decided about surveying them."""
    code = domain.referral_code(crm_event.properties)
    if code is None:
        if domain.REFERRAL_CODE_PROPERTY in crm_event.properties:
            log.info("CRM event %s: its referral_code is not a short text, ignored", crm_event.id)
        return
    uow.emit(
        "referral.code_used",
        {
            "referral_code": code,
            "event_id": crm_event.id,
            "event_type": crm_event.type,
            "customer_id": crm_event.customer_id,
            "occurred_at": crm_event.occurred_at.isoformat(),
        },
    )


def _upsert_customer(uow: SurveyUnitOfWork, fields: dict[str, Any], now: datetime) -> Customer:
    # Locked until commit, so two events for one customer cannot both pass the quarantine check.
    customer = uow.customers.get_for_update(fields["external_id"])
    known = customer is not None
    if customer is None:
        customer = Customer(
            id=str(uuid.uuid4()),
            external_id=fields["external_id"],
            email=None,
            phone=None,
            name=None,
            locale=DEFAULT_LOCALE,
            timezone=None,
            preferred_channel=Channel.EMAIL.value,
            properties={},
            created_at=now,
        )
    # The CRM's latest word on a contact wins; a field it leaves out keeps what we knew.
    for name in ("email", "phone", "name", "locale", "timezone", "preferred_channel"):
        if fields.get(name) is not None:
            setattr(customer, name, fields[name])
    if fields.get("attributes"):
        customer.properties = {**customer.properties, **fields["attributes"]}
    customer.updated_at = now
    if not known:
        uow.customers.add(customer)
    return customer


def _request_invitation(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    customer: Customer,
    touchpoint: str,
    properties: dict[str, Any],
    now: datetime,
    crm_event_id: str | None = None,
    follows_up_response_id: str | None = None,
    expires_at: datetime | None = None,
) -> Invitation:
    locale = resolve_locale(customer.locale)
    invitation = Invitation(
        id=str(uuid.uuid4()),
        token=secrets.token_urlsafe(24),
        customer_id=customer.id,
        crm_event_id=crm_event_id,
        follows_up_response_id=follows_up_response_id,
        touchpoint=touchpoint,
        locale=locale,
        properties=properties,
        created_at=now,
        expires_at=expires_at,
    )
    uow.invitations.add(invitation)
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
            "expires_at": invitation.expires_at,
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
    # Past the rule's invitation expiry: the page says the survey is closed and takes no answer.
    expired: bool = False


def answer_page(
    runtime: SurveyRuntime, token: str, clicked_score: int | None, user_agent: str | None
) -> AnswerPage:
    """Show the page for a score link; a click is recorded provisionally, never as the answer itself."""
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow, token)
        if _expired(invitation):
            return _answer_page(invitation, customer, uow.responses.for_invitation(invitation.id), None)
        if clicked_score is not None:
            uow.score_clicks.add(
                ScoreClick(
                    invitation_id=invitation.id,
                    score=clicked_score,
                    clicked_at=utcnow(),
                    user_agent=(user_agent or "")[:200] or None,
                )
            )
        response = uow.responses.for_invitation(invitation.id)
        return _answer_page(invitation, customer, response, clicked_score)


def submit_answer(runtime: SurveyRuntime, token: str, score: int, comment: str | None) -> AnswerPage:
    """A person confirmed a score (and maybe a comment) on the answer page; returns the page it leaves."""
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow, token)
        if _expired(invitation):
            return _answer_page(invitation, customer, uow.responses.for_invitation(invitation.id), None)
        response = _save_response(
            uow, invitation, customer, score, (comment or "").strip() or None, Channel.EMAIL
        )
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
        expired=_expired(invitation),
    )


def _expired(invitation: Invitation, now: datetime | None = None) -> bool:
    return invitation.expires_at is not None and (now or utcnow()) >= invitation.expires_at


def settle_clicked_answers(runtime: SurveyRuntime, now: datetime | None = None) -> int:
    """Turn settled, person-made link clicks into answers for invitations nobody confirmed on the page.

    Safe in several clocks at once: each invitation is settled in its own transaction under a row lock.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        candidates = uow.score_clicks.settle_candidates(now - domain.SETTLE_AFTER)
    return sum(_settle_invitation(runtime, invitation_id, now) for invitation_id in candidates)


def _settle_invitation(runtime: SurveyRuntime, invitation_id: str, now: datetime) -> bool:
    with runtime.unit_of_work() as uow:
        invitation = uow.invitations.lock_for_settling(invitation_id)
        if invitation is None or uow.responses.for_invitation(invitation_id) is not None:
            return False  # another clock holds it, or a person answered meanwhile
        clicks = uow.score_clicks.for_invitation(invitation_id)
        score = domain.settled_score([domain.Click(c.score, c.clicked_at) for c in clicks], now)
        if score is None:
            # Every click was a scanner's: forget them so the invitation is not looked at again.
            uow.score_clicks.forget(clicks)
            return False
        customer = uow.customers.get(invitation.customer_id)
        _save_response(uow, invitation, customer, score, None, Channel.EMAIL)
        return True


@consumes("sms.received")
def record_sms_answer(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """A score, a comment, or both, for the invitation an SMS reply answers."""
    data = event.data
    invitation = uow.invitations.get(data["invitation_id"])
    if invitation is None:
        log.warning("sms.received for unknown invitation %s", data["invitation_id"])
        return
    if _expired(invitation):
        log.info("SMS reply for invitation %s after it expired, not recorded", invitation.id)
        return
    customer = uow.customers.get(invitation.customer_id)
    answer = domain.parse_sms_answer(data["body"])
    response = uow.responses.for_invitation(invitation.id)
    if answer.score is None and response is None:
        log.info("SMS reply without a score for invitation %s, nothing to record", invitation.id)
        return
    score = answer.score if answer.score is not None else response.score
    comment = domain.merge_comment(response.comment if response else None, answer.comment)
    _save_response(uow, invitation, customer, score, comment, Channel.SMS)


def _save_response(
    uow: SurveyUnitOfWork,
    invitation: Invitation,
    customer: Customer,
    score: int,
    comment: str | None,
    channel: Channel,
) -> Response:
    now = utcnow()
    response = uow.responses.for_invitation(invitation.id)
    if response is None:
        response = Response(
            id=str(uuid.uuid4()),
            invitation_id=invitation.id,
            customer_id=customer.id,
            score=score,
            comment=comment,
            channel=channel.value,
            revision=1,
            submitted_at=now,
            updated_at=now,
        )
        uow.responses.add(response)
    else:
        if (response.score, response.comment) == (score, comment):
            return response
        response.score, response.comment = score, comment
        response.revision += 1
        response.updated_at = now
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
                "email": customer.email,
                "phone": customer.phone,
            },
            "submitted_at": response.updated_at.isoformat(),
            "properties": invitation.properties,
        },
    )
    return response


def _invitation_by_token(uow: SurveyUnitOfWork, token: str) -> tuple[Invitation, Customer]:
    invitation = uow.invitations.by_token(token)
    if invitation is None:
        raise NotFoundError("This survey link is not valid.")
    return invitation, uow.customers.get(invitation.customer_id)


# --- Follow-up surveys ---------------------------------------------------------------------------------


@consumes("followup.resolved")
def schedule_follow_up_survey(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """When the resolved task asks for it, survey the customer again that many days after the resolution.

    One follow-up per earlier response: a task resolved again before it was sent moves its due time.
    """
    data = event.data
    after_days = data.get("follow_up_survey_after_days")
    if not after_days:
        return
    earlier = uow.responses.get(data["response_id"])
    if earlier is None:
        log.warning("followup.resolved for unknown response %s: no follow-up survey", data["response_id"])
        return
    now = utcnow()
    due_at = domain.follow_up_due_at(event.occurred_at, after_days)
    follow_up = uow.follow_ups.for_response(earlier.id)
    if follow_up is None:
        uow.follow_ups.add(
            FollowUpSurvey(
                id=str(uuid.uuid4()),
                response_id=earlier.id,
                customer_id=earlier.customer_id,
                task_id=data["task_id"],
                status=domain.FollowUpStatus.SCHEDULED,
                due_at=due_at,
                invitation_id=None,
                created_at=now,
                updated_at=now,
            )
        )
    elif follow_up.status == domain.FollowUpStatus.SCHEDULED:
        follow_up.task_id, follow_up.due_at, follow_up.updated_at = data["task_id"], due_at, now
    else:
        log.info("response %s was followed up already; task %s asks nothing new", earlier.id, data["task_id"])


def invite_due_follow_ups(runtime: SurveyRuntime, now: datetime | None = None, limit: int = 50) -> int:
    """Scheduler job: request the invitation of every follow-up survey whose day has come.

    The quarantine does not apply: asking again after the team acted is the point. Safe in several clocks
    at once: each follow-up is taken under a row lock, and invited and marked in one transaction.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        due = uow.follow_ups.claim_due(now, limit)
        for follow_up in due:
            earlier = uow.responses.get(follow_up.response_id)
            earlier_invitation = uow.invitations.get(earlier.invitation_id)
            customer = uow.customers.get(follow_up.customer_id)
            # About the same experience: sliced like the answer it follows up, plus attributes known since.
            properties = {**customer.properties, **earlier_invitation.properties}
            invitation = _request_invitation(
                runtime,
                uow,
                customer,
                domain.FOLLOW_UP_TOUCHPOINT,
                properties,
                now,
                follows_up_response_id=earlier.id,
            )
            follow_up.status = domain.FollowUpStatus.INVITED
            follow_up.invitation_id, follow_up.updated_at = invitation.id, now
    return len(due)


# --- Analytics ---------------------------------------------------------------------------------------


def nps(runtime: SurveyRuntime, touchpoint: str | None = None) -> NpsSummary:
    with runtime.unit_of_work() as uow:
        return nps_summary(uow.responses.scores(touchpoint))


def follow_up_results(runtime: SurveyRuntime) -> domain.FollowUpSummary:
    """How many follow-up surveys are waiting, were sent and answered, and whether the score rose."""
    with runtime.unit_of_work() as uow:
        return domain.follow_up_summary(uow.follow_ups.count_scheduled(), uow.invitations.follow_up_scores())
