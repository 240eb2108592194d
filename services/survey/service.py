"""The survey service's use cases; each owns its transaction."""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.channels import Channel, normal_address
from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.errors import ConflictError, DomainError, NotFoundError
from shared.locales import DEFAULT_LOCALE
from shared.logs import current_request_id, request_id_scope
from shared.metrics import count_decision
from shared.nps import NpsSummary, nps_summary
from shared.settings import DEFAULT_SOURCE, EventSource
from shared.sms import sms_count
from shared.unit_of_work import Conflict

from . import answers, domain, wording
from .models import (
    EVENT_DECIDED,
    EVENT_RECEIVED,
    AnswerMessage,
    BrandRow,
    ChannelOptOut,
    CrmEvent,
    Customer,
    EventSourceRow,
    FollowUpSurvey,
    Invitation,
    MessageTemplateRow,
    Response,
    ScoreClick,
    TriggerRuleRow,
)
from .runtime import SurveyRuntime
from .unit_of_work import SurveyUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventReceipt:
    """What the intake answers at once: the stored event's id, and whether it was stored before."""

    event_id: str
    duplicate: bool


def accept_crm_event(
    runtime: SurveyRuntime, event: dict[str, Any], source: str = "default", body_digest: bytes | None = None
) -> EventReceipt:
    """Store a validated CRM event for its decision, in one statement; a repeat of an event id from the same
    source stores nothing and says so. ``body_digest``: see ``repeated_crm_event``.

    The decision (customer, trigger rule, invitation) follows in ``decide_received_events``: the clock runs it
    at once, woken by this commit (in this process) or by the NOTIFY this process sends after it (PostgreSQL).
    """
    event_id, stored = runtime.unit_of_work().receive_crm_event(intake_values(event, source), body_digest)
    return EventReceipt(event_id, duplicate=not stored)


def intake_values(event: dict[str, Any], source: str) -> dict[str, Any]:
    """A validated CRM event's new row, its columns (INTAKE_COLUMNS) under a new id: not an ORM object, as
    the intake's hot path skips the session."""
    return {
        "id": str(uuid.uuid4()),
        "source": source,
        "external_id": event["id"],
        "type": event["type"],
        "occurred_at": event["occurred_at"],
        "received_at": utcnow(),
        "status": EVENT_RECEIVED,
        "customer_fields": event["customer"],
        "properties": event.get("properties") or {},
        "request_id": current_request_id(),
    }


def repeated_crm_event(
    runtime: SurveyRuntime, source: str, external_id: str, body_digest: bytes
) -> EventReceipt | None:
    """The receipt of a CRM's retry whose body has the very bytes (``body_digest``) of an event stored a
    moment ago, without validating them again (issue 19): they were valid then, and validation of an event
    of a known type depends on its bytes alone; None when the retry must be taken as any event is."""
    event_id = runtime.unit_of_work().repeated_crm_event(source, external_id, body_digest)
    return EventReceipt(event_id, duplicate=True) if event_id is not None else None


# On PostgreSQL this many deciders run at once, each on its own share of the customers: a decision waits
# mostly for the database's answers, and those waits overlap (one clock decides several times faster).
DECIDERS = 4
_deciders: ThreadPoolExecutor | None = None
_deciders_lock = threading.Lock()


# The events a clock's run decides at most; a run that decided this many is followed by another at once.
DECISION_BATCH = 100


def decide_received_events(runtime: SurveyRuntime, limit: int = DECISION_BATCH) -> int:
    """Clock job: decide the events the intake stored, first received first; returns how many were decided.

    A batch is decided in one transaction, each event after the one before (so two events of one customer
    see each other's invitation). Should the batch fail (a customer created by another decider meanwhile, a
    deadlock between deciders, an event that cannot be decided), each event is decided alone; one that still
    fails stays received, is logged, and is tried again at the next run.

    On PostgreSQL a backlog is decided by ``DECIDERS`` batches at once, each of the events of its own
    customers (a customer's events stay in one batch, in order), ``limit`` in all. A first batch of the
    oldest events comes before them, alone: at the loop's usual pace it holds every event waiting (the clock
    is woken by each few), and the deciders would each open a transaction to find nothing (issue 19).
    """
    if runtime.database is None or not runtime.database.is_postgresql:
        return _decide_batch(runtime, limit)
    deciders = max(1, min(DECIDERS, limit))
    first_batch = limit // deciders
    decided = _decide_batch(runtime, first_batch)
    rest = limit - decided
    if decided < first_batch or rest < deciders:
        return decided
    shares = [(number, deciders) for number in range(deciders)]
    return decided + sum(
        _decider_pool().map(lambda share: _decide_batch(runtime, rest // deciders, share), shares)
    )


def _decider_pool() -> ThreadPoolExecutor:
    global _deciders
    with _deciders_lock:
        if _deciders is None:
            _deciders = ThreadPoolExecutor(DECIDERS, thread_name_prefix="decider")
        return _deciders


def _decide_batch(runtime: SurveyRuntime, limit: int, share: tuple[int, int] | None = None) -> int:
    claimed: list[str] = []
    try:
        with runtime.unit_of_work() as uow:
            # A decision reads no outbox row: the batch's invitations are queued with one INSERT.
            uow.emit_at_commit()
            received = uow.crm_events.claim_received(limit, share=share)
            claimed = [crm_event.id for crm_event in received]
            batch = _BatchLookups.of(runtime, uow, received)
            for crm_event in received:
                with request_id_scope(crm_event.request_id):
                    _decide(runtime, uow, crm_event, utcnow(), batch)
        return len(claimed)
    except Exception:
        if not claimed:
            raise
        log.warning("deciding %d CRM events at once failed; deciding each alone", len(claimed), exc_info=True)
    return sum(_decide_alone(runtime, crm_event_id) for crm_event_id in claimed)


def _decide_alone(runtime: SurveyRuntime, crm_event_id: str) -> bool:
    for attempt in (1, 2):
        try:
            with runtime.unit_of_work() as uow:
                claimed = uow.crm_events.claim_received(1, crm_event_id)
                if not claimed:
                    return False  # decided by another decider meanwhile
                with request_id_scope(claimed[0].request_id):
                    _decide(runtime, uow, claimed[0], utcnow())
            return True
        except Conflict:
            # A customer another decider created meanwhile: found, and locked, on the second try.
            if attempt == 2:
                log.warning("CRM event %s: its customer changed under it twice; tried later", crm_event_id)
        except Exception:
            log.exception("CRM event %s could not be decided; it stays received, tried later", crm_event_id)
            break
    return False


# The channels an email address or a phone number may be opted out on (WhatsApp: its number).
_EMAIL_CHANNELS = (Channel.EMAIL.value,)
_PHONE_CHANNELS = (Channel.SMS.value, Channel.WHATSAPP.value)


@dataclass
class _BatchLookups:
    """What a batch of decisions looks up once instead of once per event: its customers, locked, by external
    id (one its events create is added); and of every address they may have once their events are applied
    (``(channel, address)``, as opt-outs are kept), those opted out. A decision changes no opt-out. And
    staff's settings, as this process read them last unless they changed since (``decision_settings``)."""

    customers: dict[str, Customer]
    addresses: set[tuple[str, str]]
    opted_out: set[tuple[str, str]]
    settings: DecisionSettings

    @classmethod
    def of(cls, runtime: SurveyRuntime, uow: SurveyUnitOfWork, received: list[CrmEvent]) -> _BatchLookups:
        fields = [crm_event.customer_fields or {} for crm_event in received]
        external_ids = {value for f in fields if isinstance(value := f.get("external_id"), str)}
        customers = uow.customers.lock_all(external_ids)
        emails, phones = set(), set()
        for f in fields:
            known = customers.get(f.get("external_id") or "")
            emails |= {f.get("email"), known.email if known else None}
            phones |= {f.get("phone"), known.phone if known else None}
        addresses = {
            (channel, normal_address(channel, address))
            for channels, values in ((_EMAIL_CHANNELS, emails), (_PHONE_CHANNELS, phones))
            for address in values
            if isinstance(address, str)
            for channel in channels
        }
        opted_out = uow.opt_outs.opted_out_among(addresses)
        return cls(customers, addresses, opted_out, decision_settings(runtime, uow))


@dataclass(frozen=True)
class DecisionSettings:
    """What a decision reads of staff's settings: the stored trigger rules, the templates and the brand."""

    rules: dict[str, domain.TriggerRule]
    templates: dict[tuple[str, str], wording.MessageTemplate]
    brand: wording.Brand

    def rule(self, event_type: str) -> domain.TriggerRule | None:
        """As ``trigger_rule``: the stored one, else the built-in default; None: not surveyed."""
        return self.rules[event_type] if event_type in self.rules else domain.DEFAULT_RULES.get(event_type)


# The settings each database's deciders read last, with the version they were read at.
_read_settings: weakref.WeakKeyDictionary[Any, tuple[int, DecisionSettings]] = weakref.WeakKeyDictionary()


def decision_settings(runtime: SurveyRuntime, uow: SurveyUnitOfWork) -> DecisionSettings:
    """Staff's settings for this unit of work's decisions: as read before unless their version moved since.

    Read for every batch, they were a large share of a small batch's cost (issue 19). The version is read
    first, the settings after it: a change committed between the two is kept under the older version, and
    read again the next time. A decision thus never uses settings older than those committed when its own
    transaction read the version.
    """
    version = uow.settings_version()
    database = runtime.database if version is not None else None  # None: nothing kept, nothing reused
    cached = _read_settings.get(database) if database is not None else None
    if cached is not None and cached[0] == version:
        return cached[1]
    settings = DecisionSettings(_stored_rules(uow), _stored_templates(uow), brand(runtime, uow))
    if database is not None:
        _read_settings[database] = (version, settings)
    return settings


def _decide(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    crm_event: CrmEvent,
    now: datetime,
    batch: _BatchLookups | None = None,
) -> None:
    """Upsert the event's customer, decide whether to survey, and request the invitation.

    ``batch``: what the event's batch looked up at once; None: looked up here."""
    customers = batch.customers if batch is not None else None
    customer, new = _upsert_customer(uow, crm_event.customer_fields or {}, now, customers)
    settings = batch.settings if batch is not None else decision_settings(runtime, uow)
    rule = settings.rule(crm_event.type)
    # A customer created just now was never invited, never answered, has no survey waiting: not looked up.
    decision = domain.decide_survey(
        crm_event.type,
        crm_event.occurred_at,
        now,
        None if new else uow.invitations.last_invited_at(customer.id),
        rule=rule,
        last_answered_at=None if new else uow.responses.last_answered_at(customer.id),
        properties=crm_event.properties,
        # The CRM's ids, not ours: a retried event samples the same way.
        customer_key=customer.external_id,
        event_key=crm_event.external_id,
        reach=_reachability(uow, customer, batch),
    )
    if rule is not None and decision.outcome != domain.Decision.SKIPPED and not new:
        decision = _settle_with_pending(uow, rule, decision, customer.id, now)
    crm_event.customer_id = customer.id
    # Kept in the customer's row from now on.
    crm_event.customer_fields = None
    crm_event.status = EVENT_DECIDED
    _record_decision(crm_event, decision, now)
    uow.after_commit(functools.partial(count_decision, decision.outcome.value, decision.code.value))
    if decision.invite:
        _invite_for_event(runtime, uow, crm_event, customer, rule, now, settings)
    _report_referral(uow, crm_event)


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
    settings: DecisionSettings,
) -> None:
    properties = {**customer.properties, **crm_event.properties}
    # Noted on the event before the invitation is added: the flush that inserts it updates the event's row
    # once, with its decision and the invitation together (the column is no foreign key).
    crm_event.invitation_id = str(uuid.uuid4())
    _request_invitation(
        runtime,
        uow,
        customer,
        rule.touchpoint,
        properties,
        now,
        crm_event_id=crm_event.id,
        expires_at=domain.invitation_expires_at(rule, now, runtime.settings.survey_invitation_expiry_days),
        invitation_id=crm_event.invitation_id,
        # Nothing refers to it by a foreign key (the event's invitation_id is none): inserted with the next
        # flush, one flush fewer per decision.
        flush=False,
        settings=settings,
    )


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
        settings = decision_settings(runtime, uow)
        rule = settings.rule(crm_event.type)
        decision = domain.decide_when_due(
            rule,
            crm_event.type,
            now,
            uow.invitations.last_invited_at(customer.id),
            uow.responses.last_answered_at(customer.id),
            _reachability(uow, customer),
        )
        _record_decision(crm_event, decision, now)
        if decision.invite:
            _invite_for_event(runtime, uow, crm_event, customer, rule, now, settings)
        return decision.invite


# --- Trigger rules and the decisions they took ------------------------------------------------------------


def trigger_rule(uow: SurveyUnitOfWork, event_type: str) -> domain.TriggerRule | None:
    """The rule an event type follows: the stored one, else the built-in default; None: not surveyed."""
    row = uow.trigger_rules.get(event_type)
    return _rule_from_row(row) if row is not None else domain.DEFAULT_RULES.get(event_type)


def _stored_rules(uow: SurveyUnitOfWork) -> dict[str, domain.TriggerRule]:
    return {row.event_type: _rule_from_row(row) for row in uow.trigger_rules.all()}


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
        stored = _stored_rules(uow)
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
    """What was decided about one CRM event, and why; the decision's fields are None while it is received."""

    event_id: str
    source: str
    external_id: str
    type: str
    status: str
    occurred_at: datetime
    received_at: datetime
    decided_at: datetime | None
    decision: str | None
    reason_code: str | None
    reason: str | None
    explanation: str | None
    due_at: datetime | None
    invitation_id: str | None
    customer_external_id: str


def _decision_record(crm_event: CrmEvent, customer: Customer | None) -> DecisionRecord:
    return DecisionRecord(
        event_id=crm_event.id,
        source=crm_event.source,
        external_id=crm_event.external_id,
        type=crm_event.type,
        status=crm_event.status,
        occurred_at=crm_event.occurred_at,
        received_at=crm_event.received_at,
        decided_at=crm_event.decided_at,
        decision=crm_event.decision,
        reason_code=crm_event.reason_code,
        reason=crm_event.reason,
        explanation=crm_event.explanation,
        due_at=crm_event.due_at,
        invitation_id=crm_event.invitation_id,
        customer_external_id=(
            customer.external_id if customer is not None else (crm_event.customer_fields or {})["external_id"]
        ),
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
        customer = uow.customers.get(crm_event.customer_id) if crm_event.customer_id else None
        return _decision_record(crm_event, customer)


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


def _upsert_customer(
    uow: SurveyUnitOfWork, fields: dict[str, Any], now: datetime, locked: dict[str, Customer] | None = None
) -> tuple[Customer, bool]:
    """The event's customer, updated with what the CRM sent, and whether it was created now.

    ``locked``: the customers locked in this transaction, by external id; one created here is added."""
    # Locked until commit, so two events for one customer cannot both pass the quarantine check.
    external_id = fields["external_id"]
    customer = uow.customers.get_for_update(external_id) if locked is None else locked.get(external_id)
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
            consent=None,
            properties={},
            created_at=now,
        )
    # The CRM's latest word on a contact wins; a field it leaves out keeps what we knew.
    for name in ("email", "phone", "name", "locale", "timezone", "preferred_channel", "consent"):
        if fields.get(name) is not None:
            setattr(customer, name, fields[name])
    if fields.get("attributes"):
        customer.properties = {**customer.properties, **fields["attributes"]}
    customer.updated_at = now
    if not known:
        # A batch's customers are inserted with its next flush, at the latest its commit (issue 19).
        uow.customers.add(customer, flush=locked is None)
        if locked is not None:
            locked[external_id] = customer
    return customer, not known


# --- CRM event sources: from the settings (CLOSELOOP_SOURCES) and from staff (PUT /v1/sources/{name}) ------


class SourceConflict(ConflictError):
    pass


@dataclass(frozen=True)
class SourceView:
    """A source as staff see it: never its secret."""

    name: str
    format: str
    path: str
    # settings (CLOSELOOP_SOURCES, changed only there), api (PUT /v1/sources/{name}), or default.
    configured_in: str


def find_source(runtime: SurveyRuntime, name: str) -> EventSource | None:
    """The source of this name with its secret: the settings' first, then those staff added."""
    if name in runtime.settings.sources:
        return runtime.settings.sources[name]
    with runtime.unit_of_work() as uow:
        row = uow.sources.get(name)
        return EventSource(row.name, row.format, row.secret) if row is not None else None


def _source_view(name: str, source_format: str, configured_in: str) -> SourceView:
    if name == DEFAULT_SOURCE:
        return SourceView(name, source_format, "/v1/events", configured_in)
    suffix = "events" if source_format == "standard" else source_format
    return SourceView(name, source_format, f"/v1/sources/{name}/{suffix}", configured_in)


def list_sources(runtime: SurveyRuntime) -> list[SourceView]:
    views = [_source_view(DEFAULT_SOURCE, "standard", "default")]
    views += [_source_view(s.name, s.format, "settings") for s in runtime.settings.sources.values()]
    with runtime.unit_of_work() as uow:
        views += [
            _source_view(row.name, row.format, "api")
            for row in uow.sources.all()
            if row.name not in runtime.settings.sources
        ]
    return sorted(views, key=lambda view: (view.name != DEFAULT_SOURCE, view.name))


def put_source(runtime: SurveyRuntime, name: str, source_format: str, secret: str) -> tuple[SourceView, bool]:
    """Add a source or change its format and secret (a secret rotation); True when added."""
    if name == DEFAULT_SOURCE or name in runtime.settings.sources:
        raise SourceConflict(
            f"The source {name} is configured in the settings; change it there.",
            {"name": ["Configured in CLOSELOOP_SOURCES (or the default source)."]},
        )
    now = utcnow()
    with runtime.unit_of_work() as uow:
        row = uow.sources.get(name)
        added = row is None
        if row is None:
            row = EventSourceRow(name=name, created_at=now)
        row.format, row.secret, row.updated_at = source_format, secret, now
        if added:
            uow.sources.add(row)
    log.info("CRM event source %s %s (%s)", name, "added" if added else "changed", source_format)
    return _source_view(name, source_format, "api"), added


def delete_source(runtime: SurveyRuntime, name: str) -> None:
    """Remove a source staff added: its events stay, new ones are refused."""
    if name == DEFAULT_SOURCE or name in runtime.settings.sources:
        raise SourceConflict(f"The source {name} is configured in the settings; remove it there.")
    with runtime.unit_of_work() as uow:
        row = uow.sources.get(name)
        if row is None:
            raise NotFoundError(f"No source {name}.")
        uow.sources.remove(row)
    log.info("CRM event source %s removed", name)


# --- Customers: staff's API, and the opt-outs dispatch reports --------------------------------------


def _addresses(customer: Customer) -> dict[str, str]:
    """The customer's address on each channel they have one on, as opt-outs are kept."""
    return {
        channel: normal_address(channel, address)
        for channel, address in domain.channel_addresses(
            customer.email, customer.phone, customer.preferred_channel
        ).items()
        if address
    }


def _reachability(
    uow: SurveyUnitOfWork, customer: Customer, batch: _BatchLookups | None = None
) -> domain.Reachability:
    addresses = _addresses(customer)
    if batch is not None and batch.addresses.issuperset(addresses.items()):
        opted_out = {
            channel for channel, address in addresses.items() if (channel, address) in batch.opted_out
        }
    else:
        opted_out = uow.opt_outs.opted_out(addresses)
    return domain.reachability(
        customer.email, customer.phone, opted_out, customer.consent, customer.preferred_channel
    )


@consumes("customer.opted_out")
def record_opt_out(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """An address opted out of a channel (unsubscribe link, STOP, a provider's report)."""
    _record_channel_choice(uow, event, opted_out=True)


@consumes("customer.opted_in")
def record_opt_in(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """An address takes our messages on a channel again (START)."""
    _record_channel_choice(uow, event, opted_out=False)


def _record_channel_choice(uow: SurveyUnitOfWork, event: ReceivedEvent, opted_out: bool) -> None:
    data = event.data
    channel, address = data["channel"], normal_address(data["channel"], data["address"])
    row = uow.opt_outs.get(channel, address)
    if row is None:
        uow.opt_outs.add(
            ChannelOptOut(
                channel=channel,
                address=address,
                opted_out=opted_out,
                reason=data["reason"],
                changed_at=event.occurred_at,
            )
        )
    elif event.occurred_at >= row.changed_at:
        row.opted_out, row.reason, row.changed_at = opted_out, data["reason"], event.occurred_at
    else:
        # Events may arrive out of order: a STOP then START delivered the other way round ends opted in.
        log.info("%s for a %s address older than its last change, ignored", event.type, channel)


@dataclass(frozen=True)
class CustomerView:
    """A customer as the staff API shows them."""

    external_id: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str
    timezone: str | None
    preferred_channel: str
    consent: bool | None
    attributes: dict[str, Any]
    opted_out_channels: list[str]
    created_at: datetime
    updated_at: datetime


def _customer_view(uow: SurveyUnitOfWork, customer: Customer) -> CustomerView:
    return CustomerView(
        external_id=customer.external_id,
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        locale=customer.locale,
        timezone=customer.timezone,
        preferred_channel=customer.preferred_channel,
        consent=customer.consent,
        attributes=dict(customer.properties),
        opted_out_channels=sorted(uow.opt_outs.opted_out(_addresses(customer))),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def put_customer(
    runtime: SurveyRuntime, external_id: str, fields: dict[str, Any]
) -> tuple[CustomerView, bool]:
    """Create or replace a customer's details (``fields`` as CustomerPutSchema loads them); True if created.

    A field left out becomes unknown, attributes are replaced; the customer's events and answers stay.
    """
    now = utcnow()
    try:
        return _put_customer_once(runtime, external_id, fields, now)
    except Conflict:
        # A CRM event created this customer meanwhile: the second try updates it.
        return _put_customer_once(runtime, external_id, fields, now)


def _put_customer_once(
    runtime: SurveyRuntime, external_id: str, fields: dict[str, Any], now: datetime
) -> tuple[CustomerView, bool]:
    with runtime.unit_of_work() as uow:
        customer = uow.customers.get_for_update(external_id)
        created = customer is None
        customer = customer or Customer(id=str(uuid.uuid4()), external_id=external_id, created_at=now)
        customer.name, customer.email, customer.phone = fields["name"], fields["email"], fields["phone"]
        customer.locale = fields["locale"] or DEFAULT_LOCALE
        customer.timezone = fields["timezone"]
        customer.preferred_channel = fields["preferred_channel"] or Channel.EMAIL.value
        customer.consent = fields["consent"]
        customer.properties = dict(fields["attributes"])
        customer.updated_at = now
        if created:
            uow.customers.add(customer)
        view = _customer_view(uow, customer)
    log.info("customer %s %s by staff", customer.id, "created" if created else "updated")
    return view, created


def get_customer(runtime: SurveyRuntime, external_id: str) -> CustomerView:
    with runtime.unit_of_work() as uow:
        customer = uow.customers.by_external_id(external_id)
        if customer is None:
            raise NotFoundError(f"No customer {external_id}.")
        return _customer_view(uow, customer)


@dataclass(frozen=True)
class CustomerPage:
    items: list[CustomerView]
    total: int


def list_customers(
    runtime: SurveyRuntime,
    text: str | None = None,
    attributes: dict[str, str] | None = None,
    page: int = 1,
    page_size: int = 50,
) -> CustomerPage:
    """Customers matching a text and attribute values, a page at a time, by external id."""
    with runtime.unit_of_work() as uow:
        found, total = uow.customers.search(text, attributes or {}, (page - 1) * page_size, page_size)
        return CustomerPage([_customer_view(uow, customer) for customer in found], total)


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
    invitation_id: str | None = None,
    flush: bool = True,
    settings: DecisionSettings | None = None,
) -> Invitation:
    """``settings``: the templates and brand the caller read; None: read here (``decision_settings``)."""
    if settings is None:
        settings = decision_settings(runtime, uow)
    stored = settings.templates
    locale = wording.survey_language(customer.locale, {language for _, language in stored})
    invitation = Invitation(
        id=invitation_id or str(uuid.uuid4()),
        token=secrets.token_urlsafe(24),
        customer_id=customer.id,
        crm_event_id=crm_event_id,
        follows_up_response_id=follows_up_response_id,
        touchpoint=touchpoint,
        locale=locale,
        properties=properties,
        created_at=now,
        expires_at=expires_at
        or domain.invitation_expires_at(None, now, runtime.settings.survey_invitation_expiry_days),
    )
    uow.invitations.add(invitation, flush=flush)
    template = _wording(invitation, customer, stored, settings.brand)
    labels = domain.survey_labels(locale, customer.name)
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
                "subject": template.email_subject,
                "greeting": labels.greeting,
                "question": template.nps_question,
                "low_label": labels.low_label,
                "high_label": labels.high_label,
                "sms_body": template.sms_text,
                "answer_url": runtime.answer_base_url + invitation.token,
            },
            "expires_at": invitation.expires_at,
        },
    )
    return invitation


# --- Answers ---------------------------------------------------------------------------------------
# A GET of a score link records nothing: email scanners fetch every link. The answer page's script posts
# the clicked score once the page has rendered (record_click), which scanners that only fetch never do, and
# confirms it two seconds later (confirm_click), when a script-running scanner's burst of every link would
# show; Send saves the comment, and without script Send alone saves the answer.


@dataclass(frozen=True)
class AnswerPage:
    """What the answer page shows for an invitation."""

    token: str
    locale: str
    question: str
    follow_up_question: str
    low_label: str
    high_label: str
    chosen_score: int | None
    comment: str | None
    answered: bool
    brand: wording.Brand
    # Past its expiry the page says the survey is closed and takes no answer.
    expired: bool = False


def answer_page(runtime: SurveyRuntime, token: str, shown_score: int | None = None) -> AnswerPage:
    """The page of a score link, with ``shown_score`` chosen; showing it records nothing."""
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow, token)
        response = uow.responses.for_invitation(invitation.id)
        return _answer_page(runtime, uow, invitation, customer, response, shown_score)


class ClickTooEarly(DomainError):
    """A click is confirmed once a scanner's burst around it would have arrived; the page's script waits."""

    status = 425
    title = "Too Early"


@dataclass(frozen=True)
class ClickOutcome:
    """What became of a score click: recorded (to confirm), counted as the answer, or taken as a scanner's."""

    click_id: int | None
    counted: bool
    page: AnswerPage


def record_click(runtime: SurveyRuntime, token: str, score: int, user_agent: str | None) -> ClickOutcome:
    """The answer page's script says its page was shown for ``score``: recorded, to be confirmed shortly."""
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow, token)
        response = uow.responses.for_invitation(invitation.id)
        if _expired(invitation):
            return ClickOutcome(None, False, _answer_page(runtime, uow, invitation, customer, response, None))
        click = ScoreClick(
            invitation_id=invitation.id,
            score=score,
            clicked_at=utcnow(),
            user_agent=(user_agent or "")[:200] or None,
        )
        uow.score_clicks.add(click)
        return ClickOutcome(
            click.id, False, _answer_page(runtime, uow, invitation, customer, response, score)
        )


def confirm_click(runtime: SurveyRuntime, token: str, click_id: int) -> ClickOutcome:
    """The page's script confirms its click: the answer now, unless it was part of a scanner's burst.

    Asked again, it answers the same. The comment already given stays; Send may add one or change the score.
    """
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow, token)
        response = uow.responses.for_invitation(invitation.id)
        if _expired(invitation):
            return ClickOutcome(
                click_id, False, _answer_page(runtime, uow, invitation, customer, response, None)
            )
        clicks = uow.score_clicks.for_invitation(invitation.id)
        click = next((row for row in clicks if row.id == click_id), None)
        if click is None:
            raise NotFoundError("No such click on this survey.")
        mine = domain.Click(click.score, click.clicked_at)
        if not domain.click_confirmable(mine, utcnow()):
            raise ClickTooEarly(f"Confirm after {domain.CLICK_BURST.total_seconds():g} seconds.")
        if not domain.click_counts(mine, [domain.Click(row.score, row.clicked_at) for row in clicks]):
            log.info("invitation %s: click taken as a link scanner's burst, not counted", invitation.id)
            return ClickOutcome(
                click_id, False, _answer_page(runtime, uow, invitation, customer, response, None)
            )
        comment = response.comment if response else None
        response = _save_response(uow, invitation, customer, click.score, comment, Channel.EMAIL)
        return ClickOutcome(click_id, True, _answer_page(runtime, uow, invitation, customer, response, None))


def submit_answer(runtime: SurveyRuntime, token: str, score: int, comment: str | None) -> AnswerPage:
    """A person sent a score (and maybe a comment) from the answer page; returns the page it leaves.

    The comment replaces the one before (kept in the response's history): the latest is the one scored.
    """
    comment = (comment or "").strip() or None
    with runtime.unit_of_work() as uow:
        invitation, customer = _invitation_by_token(uow, token)
        response = uow.responses.for_invitation(invitation.id)
        if _expired(invitation):
            return _answer_page(runtime, uow, invitation, customer, response, None)
        if comment is not None and comment != (response.comment if response else None):
            _keep_message(
                uow,
                invitation,
                Channel.EMAIL,
                comment,
                answers.ReadAnswer(answers.Reading.SCORE, score, comment),
            )
        response = _save_response(uow, invitation, customer, score, comment, Channel.EMAIL)
        return _answer_page(runtime, uow, invitation, customer, response, None)


def _answer_page(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    invitation: Invitation,
    customer: Customer,
    response: Response | None,
    shown_score: int | None,
) -> AnswerPage:
    template = _wording(invitation, customer, _stored_templates(uow), brand(runtime, uow))
    labels = domain.survey_labels(invitation.locale, customer.name)
    return AnswerPage(
        token=invitation.token,
        locale=invitation.locale,
        question=template.nps_question,
        follow_up_question=template.follow_up_question,
        low_label=labels.low_label,
        high_label=labels.high_label,
        chosen_score=shown_score if shown_score is not None else (response.score if response else None),
        comment=response.comment if response else None,
        answered=response is not None,
        brand=brand(runtime, uow),
        expired=_expired(invitation),
    )


def _expired(invitation: Invitation, now: datetime | None = None) -> bool:
    return invitation.expires_at is not None and (now or utcnow()) >= invitation.expires_at


def page_brand(runtime: SurveyRuntime) -> wording.Brand:
    """The brand a page shows when there is no invitation to show (an unknown link)."""
    with runtime.unit_of_work() as uow:
        return brand(runtime, uow)


@consumes("sms.received")
def record_sms_answer(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """An SMS reply to a survey, read as people write: a score, a comment, or both, or asked once again.

    Score and comment may come apart: a comment before any score waits (kept) for the score and is asked
    for; a comment after the score replaces the one before, which stays in the response's history.
    """
    data = event.data
    invitation = uow.invitations.get(data["invitation_id"])
    if invitation is None:
        log.warning("sms.received for unknown invitation %s", data["invitation_id"])
        return
    if _expired(invitation):
        log.info("SMS reply for invitation %s after it expired, not recorded", invitation.id)
        return
    customer = uow.customers.get(invitation.customer_id)
    answer = answers.read_answer(data["body"])
    earlier = uow.answer_messages.for_invitation(invitation.id)
    _keep_message(uow, invitation, Channel.SMS, data["body"], answer)
    response = uow.responses.for_invitation(invitation.id)
    if answer.reading == answers.Reading.SCORE:
        comment = answer.comment or (response.comment if response else _waiting_comment(earlier))
        _save_response(uow, invitation, customer, answer.score, comment, Channel.SMS)
    elif answer.reading == answers.Reading.COMMENT and response is not None:
        _save_response(uow, invitation, customer, response.score, answer.comment, Channel.SMS)
    elif answer.reading == answers.Reading.COMMENT or answer.needs_a_score:
        _reprompt(runtime, uow, invitation, customer, answer)


def _waiting_comment(messages: list[AnswerMessage]) -> str | None:
    """The latest comment written before any score: the one the score, when it comes, goes with."""
    comments = [m.comment for m in messages if m.reading == answers.Reading.COMMENT and m.comment]
    return comments[-1] if comments else None


def _keep_message(
    uow: SurveyUnitOfWork, invitation: Invitation, channel: Channel, body: str, answer: answers.ReadAnswer
) -> None:
    uow.answer_messages.add(
        AnswerMessage(
            id=str(uuid.uuid4()),
            invitation_id=invitation.id,
            channel=channel.value,
            body=body[:5000],
            reading=answer.reading.value,
            score=answer.score,
            comment=answer.comment,
            received_at=utcnow(),
        )
    )


def _reprompt(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    invitation: Invitation,
    customer: Customer,
    answer: answers.ReadAnswer,
) -> None:
    """Ask once, by SMS, for the score we could not read; a second unreadable reply is only kept."""
    if invitation.reprompted_at is not None or not customer.phone:
        log.info("unreadable SMS reply for invitation %s kept; asked once already", invitation.id)
        return
    invitation.reprompted_at = utcnow()
    uow.emit(
        "reprompt.requested",
        {
            "reprompt_id": str(uuid.uuid4()),
            "invitation_id": invitation.id,
            "customer": {
                "customer_id": customer.id,
                "name": customer.name,
                "email": None,
                "phone": customer.phone,
                "timezone": customer.timezone,
                "preferred_channel": Channel.SMS.value,
            },
            "locale": invitation.locale,
            "text": answers.reprompt_text(answer, invitation.locale, brand(runtime, uow).name),
        },
    )


def answer_history(runtime: SurveyRuntime, invitation_id: str) -> list[AnswerMessage]:
    """Everything the customer wrote about an invitation, oldest first, as written."""
    with runtime.unit_of_work() as uow:
        return uow.answer_messages.for_invitation(invitation_id)


def _save_response(
    uow: SurveyUnitOfWork,
    invitation: Invitation,
    customer: Customer,
    score: int,
    comment: str | None,
    channel: Channel | str,
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
            channel=str(channel),
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


# --- Wording: message templates and the brand ---------------------------------------------------------


class TemplateInvalid(DomainError):
    status = 422
    title = "Unprocessable Entity"


def brand(runtime: SurveyRuntime, uow: SurveyUnitOfWork) -> wording.Brand:
    """The brand set on the admin page, else BRAND_NAME and BRAND_COLOR."""
    row = uow.brand.get()
    return wording.Brand(
        name=(row.name if row and row.name else runtime.settings.brand_name),
        color=(row.color if row and row.color else runtime.settings.brand_color),
    )


def get_brand(runtime: SurveyRuntime) -> dict[str, Any]:
    with runtime.unit_of_work() as uow:
        row = uow.brand.get()
        current = brand(runtime, uow)
    return {"name": current.name, "color": current.color, "is_default": row is None}


def put_brand(runtime: SurveyRuntime, name: str | None, color: str | None) -> dict[str, Any]:
    """Set the brand customers see; a None keeps (or returns to) the setting's value."""
    with runtime.unit_of_work() as uow:
        row = uow.brand.get()
        if row is None:
            row = BrandRow(id=1, name=name, color=color, updated_at=utcnow())
            uow.brand.add(row)
        else:
            row.name, row.color, row.updated_at = name, color, utcnow()
    return get_brand(runtime)


def _stored_templates(uow: SurveyUnitOfWork) -> dict[tuple[str, str], wording.MessageTemplate]:
    return {(row.touchpoint, row.locale): _template_from_row(row) for row in uow.templates.all()}


def _template_from_row(row: MessageTemplateRow) -> wording.MessageTemplate:
    return wording.MessageTemplate(
        row.touchpoint, row.locale, **{name: getattr(row, name) for name in wording.TEMPLATE_FIELDS}
    )


def _wording(
    invitation: Invitation,
    customer: Customer,
    stored: dict[tuple[str, str], wording.MessageTemplate],
    current_brand: wording.Brand,
) -> wording.MessageTemplate:
    """An invitation's wording with its customer's variables filled in."""
    template = wording.template_for(invitation.touchpoint, invitation.locale, stored)
    variables = wording.variables_for(customer.name, current_brand, invitation.properties)
    return wording.rendered(template, variables)


def _template_view(
    template: wording.MessageTemplate, stored: bool, current_brand: wording.Brand
) -> dict[str, Any]:
    """A template as the API and the admin page show it, with its SMS rendered for a long sample customer."""
    sample = wording.rendered(template, wording.sample_variables(template.locale, current_brand))
    count = sms_count(sample.sms_text)
    return {
        "touchpoint": template.touchpoint,
        "locale": template.locale,
        **template.fields(),
        "is_default": not stored,
        "preview": sample.fields(),
        "sms_encoding": count.encoding,
        "sms_segments": count.segments,
        "sms_segments_turkish_shift": sms_count(sample.sms_text, turkish_shift=True).segments,
    }


def list_templates(runtime: SurveyRuntime) -> list[dict[str, Any]]:
    """Every touchpoint's wording in every shipped or staff-worded language."""
    with runtime.unit_of_work() as uow:
        stored = _stored_templates(uow)
        current_brand = brand(runtime, uow)
    keys = sorted(set(wording.SHIPPED_TEMPLATES) | set(stored))
    return [
        _template_view(stored.get(key) or wording.SHIPPED_TEMPLATES[key], key in stored, current_brand)
        for key in keys
    ]


def get_template(runtime: SurveyRuntime, touchpoint: str, locale: str) -> dict[str, Any]:
    """One touchpoint's wording in one language: staff's, the shipped one, or English's as the fallback."""
    with runtime.unit_of_work() as uow:
        stored = _stored_templates(uow)
        current_brand = brand(runtime, uow)
    template = stored.get((touchpoint, locale)) or wording.SHIPPED_TEMPLATES.get((touchpoint, locale))
    if template is None:
        # Not worded in this language yet: English's wording is what customers get, and where to start.
        template = replace(wording.template_for(touchpoint, locale, stored), locale=locale)
    return _template_view(template, (touchpoint, locale) in stored, current_brand)


def put_template(
    runtime: SurveyRuntime, touchpoint: str, locale: str, fields: dict[str, str]
) -> dict[str, Any]:
    """Reword a touchpoint's survey in a language; refused, naming the field, over the SMS segment budget."""
    with runtime.unit_of_work() as uow:
        current_brand = brand(runtime, uow)
        problems = wording.template_problems(
            fields, current_brand, locale, runtime.settings.survey_sms_max_segments
        )
        if problems:
            raise TemplateInvalid("The template was not saved.", problems)
        row = uow.templates.get(touchpoint, locale)
        known = row is not None
        row = row or MessageTemplateRow(touchpoint=touchpoint, locale=locale)
        for name in wording.TEMPLATE_FIELDS:
            setattr(row, name, fields[name])
        row.updated_at = utcnow()
        if not known:
            uow.templates.add(row)
        template = _template_from_row(row)
    log.info("template %s/%s %s", touchpoint, locale, "changed" if known else "created")
    return _template_view(template, True, current_brand)


def preview_template(
    runtime: SurveyRuntime, touchpoint: str, locale: str, fields: dict[str, str]
) -> dict[str, Any]:
    """A wording as it would read, unsaved: the admin page's preview."""
    with runtime.unit_of_work() as uow:
        current_brand = brand(runtime, uow)
        stored = (touchpoint, locale) in _stored_templates(uow)
    template = wording.MessageTemplate(
        touchpoint, locale, **{name: fields[name] for name in wording.TEMPLATE_FIELDS}
    )
    return _template_view(template, stored, current_brand)


def reset_template(runtime: SurveyRuntime, touchpoint: str, locale: str) -> None:
    """Back to the shipped wording (or English's, for a language not shipped)."""
    with runtime.unit_of_work() as uow:
        row = uow.templates.get(touchpoint, locale)
        if row is None:
            raise NotFoundError(f"No stored template for {touchpoint} in {locale}.")
        uow.templates.delete(row)
