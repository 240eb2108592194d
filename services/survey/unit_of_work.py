"""The survey service's repositories and its unit of work.

``SurveyUnitOfWork`` names the repositories the use cases read and change state through; the protocols
below say what each offers. ``SqlSurveyUnitOfWork`` implements them on one SQLAlchemy session: every query,
row lock and PostgreSQL-specific choice of the service lives here, so the use cases run as well on the
in-memory fake of the unit tests.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import math
import mmap
import os
import re
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Collection
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    and_,
    bindparam,
    cast,
    false,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased

from shared import driver
from shared.db import Database
from shared.scheduling import COMMITTED_EVENTS
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models
from .analytics.sentiments import ResponseSentiments, SqlResponseSentiments
from .delighted.unit_of_work import SqlDelightedRecords
from .domain import Decision, FollowUpStatus
from .models import (
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
    SettingsVersion,
    TriggerRuleRow,
)

log = logging.getLogger(__name__)


class Customers(Protocol):
    def get(self, customer_id: str) -> Customer: ...

    def get_for_update(self, external_id: str) -> Customer | None:
        """The customer a CRM knows as ``external_id``, locked until the transaction ends."""
        ...

    def lock_all(self, external_ids: Collection[str]) -> dict[str, Customer]:
        """The customers of ``external_ids`` that exist, by external id, each locked until the transaction
        ends (in one statement, in a fixed order); ``get_for_update`` of many at once."""
        ...

    def by_external_id(self, external_id: str) -> Customer | None: ...

    def search(
        self, text: str | None, attributes: dict[str, str], offset: int, limit: int
    ) -> tuple[list[Customer], int]:
        """Customers whose name, email, phone or external id contains ``text`` (any case) and whose
        attributes have the given values; a page of them by external id, and how many match in all."""
        ...

    def add(self, customer: Customer, flush: bool = True) -> None:
        """``flush=False``: written with the transaction's next flush, before the events and invitations
        naming it (their relationship() orders the flush), as a batch's decisions do: a unique key another
        transaction took meanwhile then fails at that flush or the commit, as ``Conflict`` all the same."""
        ...


class ChannelOptOuts(Protocol):
    def get(self, channel: str, address: str) -> ChannelOptOut | None: ...

    def opted_out(self, addresses: dict[str, str]) -> set[str]:
        """Of ``{channel: address}``, the channels whose address is opted out."""
        ...

    def opted_out_among(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of ``(channel, address)`` pairs, those opted out: ``opted_out`` of many customers at once."""
        ...

    def add(self, opt_out: ChannelOptOut) -> None: ...


class CrmEvents(Protocol):
    def get(self, crm_event_id: str) -> CrmEvent | None: ...

    def find(self, source: str, external_id: str) -> CrmEvent | None: ...

    def for_customer(self, customer_id: str, limit: int) -> list[CrmEvent]:
        """The customer's events with their decisions, newest first."""
        ...

    def delayed_for_customer(self, customer_id: str) -> list[CrmEvent]:
        """The customer's events whose survey waits for its due time."""
        ...

    def due(self, now: datetime, limit: int) -> list[str]:
        """The ids of up to ``limit`` delayed events due by ``now``, earliest first."""
        ...

    def receive(self, crm_event: CrmEvent) -> tuple[str, bool]:
        """Store an event unless its (source, external id) is stored already: the stored event's id, and
        True when it is this one."""
        ...

    def claim_received(
        self, limit: int, event_id: str | None = None, share: tuple[int, int] | None = None
    ) -> list[CrmEvent]:
        """Up to ``limit`` events waiting for their decision (or only ``event_id``), first received first,
        locked until the transaction ends; those another decider holds are skipped. ``share`` ``(i, n)``:
        only the events of customers in the i-th of n shares (by their external id; PostgreSQL)."""
        ...

    def add(self, crm_event: CrmEvent) -> None: ...


class Invitations(Protocol):
    def get(self, invitation_id: str) -> Invitation | None: ...

    def by_token(self, token: str) -> Invitation | None: ...

    def last_invited_at(self, customer_id: str) -> datetime | None: ...

    def follow_up_scores(self) -> list[tuple[int, int | None]]:
        """Per follow-up invitation: the score of the response it follows up, and of its own (None)."""
        ...

    def add(self, invitation: Invitation, flush: bool = True) -> None:
        """``flush=False``: written with the transaction's next flush, as a batch's decisions do (all at
        commit, or at a query's autoflush); for a caller that adds no row referring to it meanwhile (a flush
        orders classes by relationship(), not by foreign key: none refers to invitations)."""
        ...


class ScoreClicks(Protocol):
    def for_invitation(self, invitation_id: str) -> list[ScoreClick]: ...

    def add(self, click: ScoreClick) -> None: ...


class AnswerMessages(Protocol):
    def for_invitation(self, invitation_id: str) -> list[AnswerMessage]:
        """What the customer wrote about an invitation, oldest first."""
        ...

    def add(self, message: AnswerMessage) -> None: ...


class MessageTemplates(Protocol):
    def get(self, touchpoint: str, locale: str) -> MessageTemplateRow | None: ...

    def all(self) -> list[MessageTemplateRow]: ...

    def add(self, template: MessageTemplateRow) -> None: ...

    def delete(self, template: MessageTemplateRow) -> None: ...


class Brands(Protocol):
    def get(self) -> BrandRow | None:
        """The brand set on the admin page, if any."""
        ...

    def add(self, brand: BrandRow) -> None: ...


class Responses(Protocol):
    def get(self, response_id: str) -> Response | None: ...

    def get_held(self, response_id: str) -> Response | None:
        """The response, its row held until the unit of work ends (an erasure holding it first is waited
        for), taken before any row that points at it is written: erasure locks in the same order."""
        ...

    def for_invitation(self, invitation_id: str) -> Response | None: ...

    def scores(self, touchpoint: str | None = None) -> list[int]:
        """The score of every response, or of the responses to one touchpoint's invitations."""
        ...

    def last_answered_at(self, customer_id: str) -> datetime | None: ...

    def add(self, response: Response) -> None: ...


class FollowUpSurveys(Protocol):
    def for_response(self, response_id: str) -> FollowUpSurvey | None: ...

    def claim_due(self, now: datetime, limit: int) -> list[FollowUpSurvey]:
        """Up to ``limit`` scheduled follow-ups due by ``now``, earliest first, locked until the transaction
        ends; those another clock holds are skipped."""
        ...

    def count_scheduled(self) -> int: ...

    def add(self, follow_up: FollowUpSurvey) -> None: ...


class TriggerRules(Protocol):
    def get(self, event_type: str) -> TriggerRuleRow | None: ...

    def all(self) -> list[TriggerRuleRow]: ...

    def add(self, rule: TriggerRuleRow) -> None: ...


class EventSources(Protocol):
    def get(self, name: str) -> EventSourceRow | None: ...

    def all(self) -> list[EventSourceRow]: ...

    def add(self, source: EventSourceRow) -> None: ...

    def remove(self, source: EventSourceRow) -> None: ...


class SurveyUnitOfWork(UnitOfWork):
    """One transaction of the survey service: its repositories, and ``emit`` as in every unit of work."""

    customers: Customers
    crm_events: CrmEvents
    invitations: Invitations
    score_clicks: ScoreClicks
    responses: Responses
    follow_ups: FollowUpSurveys
    trigger_rules: TriggerRules
    opt_outs: ChannelOptOuts
    sources: EventSources
    answer_messages: AnswerMessages
    templates: MessageTemplates
    brand: Brands
    sentiments: ResponseSentiments
    # The Delighted-compatible API's queries (services/survey/delighted); SQL only, not in the unit fakes.
    delighted: SqlDelightedRecords

    def receive_crm_event(self, values: dict[str, Any], body_digest: bytes | None = None) -> tuple[str, bool]:
        """The intake's whole transaction, called outside ``with``: store a new CRM event (its column values)
        unless its (source, external id) is stored already, as ``crm_events.receive`` does, and wake the
        clock when stored. The stored event's id, and True when it is this one.

        ``body_digest`` (``body_digest()`` of the request body the event was validated from, if that
        validation depends on the bytes alone) lets a memory of recent events answer ``repeated_crm_event``.
        """
        with self:
            event_id, stored = self.crm_events.receive(CrmEvent(**values))
            if stored:
                self.wake_clock()
        return event_id, stored

    def repeated_crm_event(self, source: str, external_id: str, body_digest: bytes) -> str | None:
        """The stored event's id when this process knows that a body with ``body_digest`` was received for
        (source, external id) and stored a moment ago (nothing else asked); None when it does not know."""
        return None

    def settings_version(self) -> int | None:
        """A number that moves whenever the trigger rules, templates or brand change (triggers move it, in the
        changing transaction), as committed now; None when unknown: whatever was read of them before may
        have changed."""
        return None


# --- On the database -----------------------------------------------------------------------------------
# Each ``add`` flushes (unless told not to, for a batch): a unique key a concurrent transaction took meanwhile
# fails there, as ``Conflict``, before anything is built on the row, and the rows that refer to it are
# inserted after it.


class SqlCustomers:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, customer_id: str) -> Customer:
        return self.session.get_one(Customer, customer_id)

    def get_for_update(self, external_id: str) -> Customer | None:
        return self.session.scalars(
            select(Customer).where(Customer.external_id == external_id).with_for_update()
        ).first()

    def lock_all(self, external_ids: Collection[str]) -> dict[str, Customer]:
        if not external_ids:
            return {}
        # Locked in id order, as every decider locks them: two lockers of overlapping sets cannot deadlock.
        query = (
            select(Customer)
            .where(Customer.external_id.in_(sorted(set(external_ids))))
            .order_by(Customer.id)
            .with_for_update()
        )
        return {customer.external_id: customer for customer in self.session.scalars(query)}

    def by_external_id(self, external_id: str) -> Customer | None:
        return self.session.scalars(select(Customer).where(Customer.external_id == external_id)).first()

    def search(
        self, text: str | None, attributes: dict[str, str], offset: int, limit: int
    ) -> tuple[list[Customer], int]:
        conditions = []
        if text:
            pattern = "%" + _escape_like(text.lower()) + "%"
            conditions.append(
                or_(
                    *(
                        func.lower(column).like(pattern, escape="\\")
                        for column in (Customer.name, Customer.email, Customer.phone, Customer.external_id)
                    )
                )
            )
        for name, value in attributes.items():
            # JSON's ->> on PostgreSQL, json_extract on SQLite: attributes are compared as text.
            conditions.append(Customer.properties[name].as_string() == value)
        where = and_(*conditions) if conditions else None
        query, count = select(Customer), select(func.count()).select_from(Customer)
        if where is not None:
            query, count = query.where(where), count.where(where)
        page = self.session.scalars(query.order_by(Customer.external_id).offset(offset).limit(limit))
        return list(page), self.session.scalar(count) or 0

    def add(self, customer: Customer, flush: bool = True) -> None:
        self.session.add(customer)
        if flush:
            self.session.flush()


def _escape_like(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\': a % or _ typed in a search is no wildcard."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@functools.lru_cache(maxsize=8)
def _opted_out_statement(addresses: int) -> Any:
    table = ChannelOptOut.__table__
    return select(table.c.channel).where(
        table.c.opted_out.is_(True),
        or_(
            *(
                and_(
                    table.c.channel == bindparam(f"channel_{number}"),
                    table.c.address == bindparam(f"address_{number}"),
                )
                for number in range(addresses)
            )
        ),
    )


class SqlChannelOptOuts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, channel: str, address: str) -> ChannelOptOut | None:
        return self.session.get(ChannelOptOut, (channel, address))

    def opted_out(self, addresses: dict[str, str]) -> set[str]:
        if not addresses:
            return set()
        # Asked for every event decided: a statement built once per number of addresses, run on the session's
        # connection, what this transaction changed written first (as autoflush would).
        self.session.flush()
        parameters: dict[str, str] = {}
        for number, (channel, address) in enumerate(addresses.items()):
            parameters[f"channel_{number}"], parameters[f"address_{number}"] = channel, address
        statement = _opted_out_statement(len(addresses))
        return set(self.session.connection().execute(statement, parameters).scalars())

    def opted_out_among(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        if not pairs:
            return set()
        self.session.flush()  # what this transaction changed first, as ``opted_out``
        table = ChannelOptOut.__table__
        query = select(table.c.channel, table.c.address).where(
            table.c.opted_out.is_(True), tuple_(table.c.channel, table.c.address).in_(sorted(pairs))
        )
        return {(channel, address) for channel, address in self.session.connection().execute(query)}

    def add(self, opt_out: ChannelOptOut) -> None:
        self.session.add(opt_out)
        self.session.flush()


class SqlCrmEvents:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, crm_event_id: str) -> CrmEvent | None:
        return self.session.get(CrmEvent, crm_event_id)

    def find(self, source: str, external_id: str) -> CrmEvent | None:
        return self.session.scalars(
            select(CrmEvent).where(CrmEvent.source == source, CrmEvent.external_id == external_id)
        ).first()

    def for_customer(self, customer_id: str, limit: int) -> list[CrmEvent]:
        query = (
            select(CrmEvent)
            .where(CrmEvent.customer_id == customer_id)
            .order_by(CrmEvent.received_at.desc(), CrmEvent.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def delayed_for_customer(self, customer_id: str) -> list[CrmEvent]:
        query = select(CrmEvent).where(
            CrmEvent.customer_id == customer_id, CrmEvent.decision == Decision.DELAYED
        )
        return list(self.session.scalars(query))

    def due(self, now: datetime, limit: int) -> list[str]:
        # No lock here: the release locks the customer first, as an incoming event does, so the two queue
        # behind each other per customer instead of deadlocking.
        query = (
            select(CrmEvent.id)
            .where(CrmEvent.decision == Decision.DELAYED, CrmEvent.due_at <= now)
            .order_by(CrmEvent.due_at)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def receive(self, crm_event: CrmEvent) -> tuple[str, bool]:
        # One statement: the unique key de-duplicates, so a repeat (even a concurrent one) inserts nothing.
        values = {key: getattr(crm_event, key) for key in INTAKE_COLUMNS}
        if self.session.get_bind().dialect.name == "postgresql":
            # It answers the stored event's id either way: the new one, or the one stored before (a
            # duplicate). In the unit's transaction: the hot path runs it on a kept connection in autocommit
            # (SqlSurveyUnitOfWork.receive_crm_event) and comes here only when a concurrent request stored the
            # event while the statement waited (so its snapshot predates that row).
            row = self.session.execute(_RECEIVE_OR_FIND, values).first()
            if row is not None:
                return row.id, row.stored
        else:
            stored = self.session.execute(_RECEIVE_SQLITE, values).scalar()
            if stored is not None:
                return stored, True
        # A duplicate (or, on PostgreSQL, one a concurrent request committed while this statement waited).
        return self.session.execute(_STORED_ID, values).scalar_one(), False

    def claim_received(
        self, limit: int, event_id: str | None = None, share: tuple[int, int] | None = None
    ) -> list[CrmEvent]:
        query = select(CrmEvent).where(CrmEvent.status == EVENT_RECEIVED)
        if event_id is not None:
            query = query.where(CrmEvent.id == event_id)
        if share is not None:
            number, shares = share
            customer = func.coalesce(CrmEvent.customer_fields["external_id"].as_string(), "")
            query = query.where(func.abs(cast(func.hashtext(customer), BigInteger)) % shares == number)
        query = query.order_by(CrmEvent.received_at).limit(limit)
        # Deciders in several clocks each take other events instead of waiting for one another.
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def add(self, crm_event: CrmEvent) -> None:
        self.session.add(crm_event)
        self.session.flush()


# The intake's columns (the others start null or at their defaults): what ``receive_crm_event`` is given.
INTAKE_COLUMNS = (
    "id",
    "source",
    "external_id",
    "type",
    "occurred_at",
    "received_at",
    "status",
    "customer_fields",
    "properties",
    "request_id",
)
# Built once, with a parameter per column: each execution only binds the event's values.
_CRM_EVENTS = CrmEvent.__table__
_STORED_ID = select(_CRM_EVENTS.c.id).where(
    _CRM_EVENTS.c.source == bindparam("source"), _CRM_EVENTS.c.external_id == bindparam("external_id")
)
_EVENT_VALUES = {key: bindparam(key, type_=_CRM_EVENTS.c[key].type) for key in INTAKE_COLUMNS}
_JSON_COLUMNS = frozenset(key for key in INTAKE_COLUMNS if isinstance(_CRM_EVENTS.c[key].type, JSON))
_RECEIVE_SQLITE = (
    sqlite_insert(_CRM_EVENTS)
    .values(_EVENT_VALUES)
    .on_conflict_do_nothing(index_elements=["source", "external_id"])
    .returning(_CRM_EVENTS.c.id)
)
# PostgreSQL: the insert and, for a duplicate, the id stored before, in one statement. The SELECT sees the
# table as it was when the statement began, so it finds the row only when the insert did nothing.
_INSERTED = (
    postgresql_insert(_CRM_EVENTS)
    .values(_EVENT_VALUES)
    .on_conflict_do_nothing(index_elements=["source", "external_id"])
    .returning(_CRM_EVENTS.c.id)
    .cte("inserted")
)
_RECEIVE_OR_FIND = union_all(
    select(_INSERTED.c.id, true().label("stored")),
    _STORED_ID.add_columns(false().label("stored")),
)
_RECEIVE_SQL: dict[tuple[str, str], str] = {}


def _receive_sql(dialect: Dialect) -> str:
    """``_RECEIVE_OR_FIND`` as the driver takes it (named parameters), for a connection outside SQLAlchemy;
    compiled once per driver, not per engine (tests make many)."""
    key = (dialect.driver, dialect.paramstyle)
    if key not in _RECEIVE_SQL:
        _RECEIVE_SQL[key] = str(_RECEIVE_OR_FIND.compile(dialect=dialect))
    return _RECEIVE_SQL[key]


@functools.lru_cache(maxsize=8)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` (named ``%(name)s`` parameters) with libpq's numbered ones (``$1``; a name used twice is one
    parameter), and the names in their order: how a kept connection runs it (issue 19)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    numbered = _NAMED_PARAMETER.sub(number, sql)
    return numbered, tuple(names)


_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _parameter_text(name: str, value: Any) -> str | None:
    """An intake column's value as PostgreSQL reads it in text (the statement casts each to its type)."""
    if value is None:
        return None
    if name in _JSON_COLUMNS:
        return json.dumps(value)  # what SQLAlchemy's JSON type binds
    if isinstance(value, datetime):
        return value.isoformat()  # aware, in UTC: its offset is written
    return value


class SqlInvitations:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, invitation_id: str) -> Invitation | None:
        return self.session.get(Invitation, invitation_id)

    def by_token(self, token: str) -> Invitation | None:
        return self.session.scalars(select(Invitation).where(Invitation.token == token)).first()

    def last_invited_at(self, customer_id: str) -> datetime | None:
        return self.session.scalar(
            select(func.max(Invitation.created_at)).where(Invitation.customer_id == customer_id)
        )

    def follow_up_scores(self) -> list[tuple[int, int | None]]:
        earlier, later = aliased(Response), aliased(Response)
        query = (
            select(earlier.score, later.score)
            .select_from(Invitation)
            .join(earlier, earlier.id == Invitation.follows_up_response_id)
            .outerjoin(later, later.invitation_id == Invitation.id)
        )
        return [(row[0], row[1]) for row in self.session.execute(query)]

    def add(self, invitation: Invitation, flush: bool = True) -> None:
        self.session.add(invitation)
        if flush:
            self.session.flush()


class SqlScoreClicks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_invitation(self, invitation_id: str) -> list[ScoreClick]:
        return list(self.session.scalars(select(ScoreClick).where(ScoreClick.invitation_id == invitation_id)))

    def add(self, click: ScoreClick) -> None:
        self.session.add(click)
        self.session.flush()


class SqlResponses:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, response_id: str) -> Response | None:
        return self.session.get(Response, response_id)

    def get_held(self, response_id: str) -> Response | None:
        # FOR KEY SHARE: what a foreign key's check takes, so writers of the response's own rows still pass.
        return self.session.get(Response, response_id, with_for_update={"key_share": True})

    def for_invitation(self, invitation_id: str) -> Response | None:
        return self.session.scalars(select(Response).where(Response.invitation_id == invitation_id)).first()

    def scores(self, touchpoint: str | None = None) -> list[int]:
        query = select(Response.score)
        if touchpoint:
            query = query.join(Invitation, Invitation.id == Response.invitation_id).where(
                Invitation.touchpoint == touchpoint
            )
        return list(self.session.scalars(query))

    def last_answered_at(self, customer_id: str) -> datetime | None:
        return self.session.scalar(
            select(func.max(Response.submitted_at)).where(Response.customer_id == customer_id)
        )

    def add(self, response: Response) -> None:
        self.session.add(response)
        self.session.flush()


class SqlFollowUpSurveys:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_response(self, response_id: str) -> FollowUpSurvey | None:
        return self.session.scalars(
            select(FollowUpSurvey).where(FollowUpSurvey.response_id == response_id)
        ).first()

    def claim_due(self, now: datetime, limit: int) -> list[FollowUpSurvey]:
        query = (
            select(FollowUpSurvey)
            .where(FollowUpSurvey.status == FollowUpStatus.SCHEDULED, FollowUpSurvey.due_at <= now)
            .order_by(FollowUpSurvey.due_at)
            .limit(limit)
        )
        # Clocks in several processes each take other rows instead of waiting to invite the same customer.
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def count_scheduled(self) -> int:
        query = select(func.count()).where(FollowUpSurvey.status == FollowUpStatus.SCHEDULED)
        return self.session.scalar(query) or 0

    def add(self, follow_up: FollowUpSurvey) -> None:
        self.session.add(follow_up)
        self.session.flush()


# Configuration read once per unit of work: a batch of decisions asks for the same trigger rule, templates and
# brand for every event. A row found stays in the session (``session.get`` answers without SQL); what was not
# found, and the list of templates, are remembered here until this unit of work adds or deletes one.


class SqlTriggerRules:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._missing: set[str] = set()

    def get(self, event_type: str) -> TriggerRuleRow | None:
        if event_type in self._missing:
            return None
        row = self.session.get(TriggerRuleRow, event_type)
        if row is None:
            self._missing.add(event_type)
        return row

    def all(self) -> list[TriggerRuleRow]:
        return list(self.session.scalars(select(TriggerRuleRow).order_by(TriggerRuleRow.event_type)))

    def add(self, rule: TriggerRuleRow) -> None:
        self._missing.clear()
        self.session.add(rule)
        self.session.flush()


class SqlEventSources:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, name: str) -> EventSourceRow | None:
        return self.session.get(EventSourceRow, name)

    def all(self) -> list[EventSourceRow]:
        return list(self.session.scalars(select(EventSourceRow).order_by(EventSourceRow.name)))

    def add(self, source: EventSourceRow) -> None:
        self.session.add(source)
        self.session.flush()

    def remove(self, source: EventSourceRow) -> None:
        self.session.delete(source)


class SqlAnswerMessages:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_invitation(self, invitation_id: str) -> list[AnswerMessage]:
        query = (
            select(AnswerMessage)
            .where(AnswerMessage.invitation_id == invitation_id)
            .order_by(AnswerMessage.received_at)
        )
        return list(self.session.scalars(query))

    def add(self, message: AnswerMessage) -> None:
        self.session.add(message)
        self.session.flush()


class SqlMessageTemplates:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._all: list[MessageTemplateRow] | None = None

    def get(self, touchpoint: str, locale: str) -> MessageTemplateRow | None:
        return self.session.get(MessageTemplateRow, (touchpoint, locale))

    def all(self) -> list[MessageTemplateRow]:
        if self._all is None:
            query = select(MessageTemplateRow).order_by(
                MessageTemplateRow.touchpoint, MessageTemplateRow.locale
            )
            self._all = list(self.session.scalars(query))
        return list(self._all)

    def add(self, template: MessageTemplateRow) -> None:
        self._all = None
        self.session.add(template)
        self.session.flush()

    def delete(self, template: MessageTemplateRow) -> None:
        self._all = None
        self.session.delete(template)
        self.session.flush()


class SqlBrands:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._missing = False

    def get(self) -> BrandRow | None:
        if self._missing:
            return None
        row = self.session.get(BrandRow, 1)
        self._missing = row is None
        return row

    def add(self, brand: BrandRow) -> None:
        self._missing = False
        self.session.add(brand)
        self.session.flush()


_SETTINGS_VERSION = select(SettingsVersion.version).where(SettingsVersion.id == 1)


class SqlSurveyUnitOfWork(SurveyUnitOfWork, SqlUnitOfWork):
    def __init__(self, database: Database) -> None:
        super().__init__(models.SERVICE, database, models.outbox, models.consumed_events)

    def settings_version(self) -> int | None:
        rows = driver.execute(self.session, _SETTINGS_VERSION).rows
        return rows[0][0] if rows else None

    def _open_repositories(self, session: Session) -> None:
        self.customers = SqlCustomers(session)
        self.crm_events = SqlCrmEvents(session)
        self.invitations = SqlInvitations(session)
        self.score_clicks = SqlScoreClicks(session)
        self.responses = SqlResponses(session)
        self.follow_ups = SqlFollowUpSurveys(session)
        self.trigger_rules = SqlTriggerRules(session)
        self.opt_outs = SqlChannelOptOuts(session)
        self.sources = SqlEventSources(session)
        self.answer_messages = SqlAnswerMessages(session)
        self.templates = SqlMessageTemplates(session)
        self.brand = SqlBrands(session)
        self.sentiments = SqlResponseSentiments(session)
        self.delighted = SqlDelightedRecords(session)

    def receive_crm_event(self, values: dict[str, Any], body_digest: bytes | None = None) -> tuple[str, bool]:
        event_id, stored = self._receive_crm_event(values, body_digest)
        if stored and self.database.is_postgresql:
            # The clocks of other processes, after the commit (the events table's trigger no longer
            # notifies inside the intake's transaction: see PostgresWaker).
            self.database.waker(models.EVENTS_RECEIVED_CHANNEL).wake()
        return event_id, stored

    def _receive_crm_event(self, values: dict[str, Any], body_digest: bytes | None) -> tuple[str, bool]:
        engine = self.database.engine
        if engine.dialect.driver != "psycopg":
            return super().receive_crm_event(values)
        # The intake's hot path (issue 19): one statement on this thread's kept connection in autocommit,
        # without a session or the ORM, which cost more CPU than the statement itself. Durable when PostgreSQL
        # answers. Run again on a new connection should the kept one be lost: it inserts nothing twice.
        recent = _recently_received(self.database)
        key = _key_digest(values["source"], values["external_id"])  # once, for the lookup and the put
        known = recent.get_by_key(key)
        if known is not None:
            return known, False  # a repeat of an event this server stored or saw a moment ago
        sql, names = _numbered(_receive_sql(engine.dialect))
        parameters = [_parameter_text(name, values[name]) for name in names]
        row = self.database.kept_connections.fetchone(sql, parameters)
        if row is None:
            # Only when a concurrent request's insert committed while this statement waited for it (the
            # statement's snapshot predates that row): the session's path reads it afresh.
            return super().receive_crm_event(values)
        event_id, stored_text = row
        # Our own row also when a first run committed but its answer was lost (the run again found it stored).
        stored = stored_text == "t" or event_id == values["id"]
        # Committed: PostgreSQL has answered.
        recent.put_by_key(key, event_id, body_digest)
        if stored:
            COMMITTED_EVENTS.set()  # wake_clock, for a transaction that had no unit of work around it
        return event_id, stored

    def repeated_crm_event(self, source: str, external_id: str, body_digest: bytes) -> str | None:
        if self.database.engine.dialect.driver != "psycopg":
            return None  # the memory is the lean statement's (SQLite: embedded mode and tests)
        return _recently_received(self.database).get_same_body(source, external_id, body_digest)


class RecentlyReceived:
    """The CRM events stored, or found stored, in the last ``max_age`` seconds (at most ``size`` of them):
    (source, external id) -> the stored event's id, and a digest of the body it came with. A CRM's retry of
    one of them is answered as a duplicate without asking the database; a retry with the very bytes of that
    body, without validating them again (issue 19).

    Filled only once the row is committed. An event erased meanwhile (its customer's erasure deletes it)
    stays known here until it ages out: a repeat of it within ``max_age`` is answered as a duplicate, with
    the id of an event that is gone, where otherwise it would be stored anew.

    A fixed table of ``size`` slots of 96 bytes (32,768 of them: 3 MiB) in a shared memory mapping: given a
    ``shared_name``, every process of the machine opening that name shares it (the workers of one gunicorn
    server on one database, see ``_recently_received``), so a retry is known whichever worker stored the
    event; without one, it is this process's own. A slot holds 128-bit BLAKE2b digests of the key and of the
    body, the expiry (``time.monotonic``, one clock for the whole machine), the event id, and a 64-bit
    digest of all of these: writers take no lock, and a slot two writers wrote at once, or read while being
    written, fails that check and is not an answer. A key is found in the ``WAYS`` slots of its bucket; a
    new one takes the bucket's empty, expired or oldest slot.
    A false answer needs two (source, id) pairs with one 128-bit digest (about 1e-34 for a new event among
    32,768 remembered), or a torn slot passing a 64-bit check (5e-20 a torn read).
    """

    WAYS = 4
    SLOT = struct.Struct("<16s16sdB47s8s")  # key, body (zeros: none known), expires, id length, id, check

    def __init__(self, size: int = 32_768, max_age: float = 120.0, shared_name: str | None = None) -> None:
        self.buckets = max(1, -(-size // self.WAYS))
        self.size = self.buckets * self.WAYS
        self.max_age = max_age
        self._bucket_bytes = self.WAYS * self.SLOT.size
        self.path: str | None = None  # the shared table's file, if shared
        opened = None
        if shared_name is not None:
            opened = _open_shared_table(f"{shared_name}-{self.size}", self.buckets * self._bucket_bytes)
        if opened is not None:
            table, descriptor, self.path = opened
            self._finalize = weakref.finalize(self, _release_shared_table, table, descriptor, self.path)
        else:
            table = mmap.mmap(-1, self.buckets * self._bucket_bytes)  # anonymous: zeros, this process's
            self._finalize = weakref.finalize(self, table.close)
        self._table = table

    def get(self, source: str, external_id: str) -> str | None:
        """The stored event's id, if this event was stored or found stored within ``max_age``."""
        return self.get_by_key(_key_digest(source, external_id))

    def get_by_key(self, key: bytes) -> str | None:
        """``get`` for the key digest of (source, external id), ``_key_digest``: computed once by a caller
        that also puts."""
        found = self._find(key)
        return found[3] if found is not None else None

    def get_same_body(self, source: str, external_id: str, body_digest: bytes) -> str | None:
        """The stored event's id, if it was remembered with a body of this digest (``body_digest``)."""
        found = self._find(_key_digest(source, external_id))
        if found is None or found[1] != body_digest or body_digest == _NO_BODY:
            return None
        return found[3]

    def put(self, source: str, external_id: str, event_id: str, body_digest: bytes | None = None) -> None:
        """Remember a committed event (and the digest of the body that was validated, if any)."""
        self.put_by_key(_key_digest(source, external_id), event_id, body_digest)

    def put_by_key(self, key: bytes, event_id: str, body_digest: bytes | None = None) -> None:
        """``put`` for the key digest of (source, external id), ``_key_digest``."""
        encoded = event_id.encode("utf-8", "surrogatepass")
        if len(encoded) > 47:
            return  # not an id this table holds (ours are 36 characters): asked the database again
        body = body_digest if body_digest is not None and len(body_digest) == 16 else _NO_BODY
        expires = time.monotonic() + self.max_age
        slot = self.SLOT.pack(key, body, expires, len(encoded), encoded, b"")
        slot = slot[:-8] + _check(slot[:-8])
        start = self._bucket_start(key)
        bucket = self._table[start : start + self._bucket_bytes]
        size = self.SLOT.size
        # The key's own slot if it has one; else the first empty or torn slot, else the oldest. The keys are
        # compared before any slot is checked, and an empty slot (all zeros) is taken without checking it.
        for way in range(self.WAYS):
            if bucket[way * size : way * size + 16] == key:
                chosen = way
                break
        else:
            chosen, chosen_expiry = 0, math.inf
            for way in range(self.WAYS):
                offset = way * size
                if bucket[offset : offset + size] == _EMPTY_SLOT:
                    expiry = -math.inf  # all zeros fails its check: as a torn slot, taken first
                else:
                    expiry = self._expiry(bucket, offset)
                if expiry < chosen_expiry:
                    chosen, chosen_expiry = way, expiry
                    if expiry == -math.inf:
                        break  # nothing goes before it
        offset = start + chosen * self.SLOT.size
        self._table[offset : offset + self.SLOT.size] = slot

    def __len__(self) -> int:
        """How many events are remembered (a full scan: for tests and benches)."""
        now = time.monotonic()
        table, step = self._table, self.SLOT.size
        return sum(
            1
            for offset in range(0, len(table), step)
            if (entry := self._valid(table, offset)) is not None and entry[2] > now
        )

    def close(self) -> None:
        """Unmap the table (a shared one's file is removed by its last user)."""
        self._finalize()

    def _bucket_start(self, key: bytes) -> int:
        return int.from_bytes(key[:8], "little") % self.buckets * self._bucket_bytes

    def _find(self, key: bytes) -> tuple[bytes, bytes, float, str] | None:
        start = self._bucket_start(key)
        bucket = self._table[start : start + self._bucket_bytes]
        for offset in range(0, self._bucket_bytes, self.SLOT.size):
            if bucket[offset : offset + 16] == key:
                entry = self._valid(bucket, offset)
                if entry is None or entry[0] != key or entry[2] <= time.monotonic():
                    return None
                return entry
        return None

    def _expiry(self, buffer: Any, offset: int) -> float:
        """The expiry of the slot at ``offset``, -inf if it fails its check (``_valid`` without the id)."""
        size = self.SLOT.size
        if buffer[offset + size - 8 : offset + size] != _check(buffer[offset : offset + size - 8]):
            return -math.inf
        if buffer[offset + 40] > 47:  # the id's length
            return -math.inf
        return _EXPIRES.unpack_from(buffer, offset + 32)[0]

    def _valid(self, buffer: Any, offset: int) -> tuple[bytes, bytes, float, str] | None:
        """The slot at ``offset`` if it passes its check: key, body digest, expiry, event id."""
        key, body, expires, length, encoded, check = self.SLOT.unpack_from(buffer, offset)
        if check != _check(buffer[offset : offset + self.SLOT.size - 8]) or length > 47:
            return None
        return key, body, expires, encoded[:length].decode("utf-8", "surrogatepass")


_NO_BODY = bytes(16)
_EMPTY_SLOT = bytes(RecentlyReceived.SLOT.size)
_EXPIRES = struct.Struct("<d")  # a slot's expiry, after its two 16-byte digests


def body_digest(body: bytes) -> bytes:
    """What ``RecentlyReceived`` keeps of an event's body: its 128-bit BLAKE2b digest."""
    return hashlib.blake2b(body, digest_size=16).digest()


def _key_digest(source: str, external_id: str) -> bytes:
    encoded_source = source.encode("utf-8", "surrogatepass")
    # The source's length first: no two (source, id) pairs give the same bytes.
    return hashlib.blake2b(
        len(encoded_source).to_bytes(4, "little")
        + encoded_source
        + external_id.encode("utf-8", "surrogatepass"),
        digest_size=16,
    ).digest()


def _check(slot: bytes) -> bytes:
    return hashlib.blake2b(slot, digest_size=8).digest()


# Shared tables are files in a memory file system, one per server and database (``_recently_received``).
_SHARED_DIRECTORY = "/dev/shm"
_SHARED_PREFIX = "closeloop-survey-recent-"


def _open_shared_table(name: str, size: int) -> tuple[mmap.mmap, int, str] | None:
    """The shared table ``name`` of ``size`` bytes, mapped, and where it lives; None if it cannot be had.

    Each user holds a shared lock on the file while it maps it; the last one to let go removes it
    (``_release_shared_table``), and files no one holds (their users were killed) are removed here.
    """
    directory = _SHARED_DIRECTORY if os.access(_SHARED_DIRECTORY, os.W_OK) else tempfile.gettempdir()
    path = os.path.join(directory, _SHARED_PREFIX + name)
    try:
        _remove_abandoned_tables(directory)
        for _attempt in range(5):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH)
                try:
                    current = os.stat(path).st_ino
                except FileNotFoundError:
                    current = None
                if current != os.fstat(descriptor).st_ino:  # removed by its last user meanwhile: anew
                    os.close(descriptor)
                    continue
                if os.fstat(descriptor).st_size < size:
                    os.ftruncate(descriptor, size)  # zeros: empty slots
                # Its pages taken now: a full memory file system refuses the table here (this process's own
                # is used then), where a write to a page it could not supply would kill the process.
                os.posix_fallocate(descriptor, 0, size)
                table = mmap.mmap(descriptor, size)
            except BaseException:
                os.close(descriptor)
                raise
            return table, descriptor, path
    except OSError as error:
        log.warning("the intake's memory of recent events is this process's own: %s", error)
    return None


def _release_shared_table(table: mmap.mmap, descriptor: int, path: str) -> None:
    table.close()
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # granted only to its last user
        if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
            os.unlink(path)
    except OSError:
        pass  # another process still uses it (or it is gone already)
    finally:
        os.close(descriptor)


def _remove_abandoned_tables(directory: str) -> None:
    for name in os.listdir(directory):
        if not name.startswith(_SHARED_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            descriptor = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                os.unlink(path)
        except OSError:
            pass  # in use
        finally:
            os.close(descriptor)


# The database, as it is now: a database dropped and created again under the same name has another oid, a
# restarted server another start time. Events remembered of one are never answers about the other.
_INCARNATION = text(
    "SELECT oid, pg_postmaster_start_time() FROM pg_database WHERE datname = current_database()"
)


def _server_table_name(database: Database) -> str | None:
    """The shared table's name for this process's server and database: the workers of one gunicorn server
    (one parent process) share it; processes of other servers, or on another database, do not."""
    engine = database.engine
    try:
        with engine.connect() as connection:
            oid, started = connection.execute(_INCARNATION).one()
    except Exception as error:  # the intake's own statement will say what is wrong
        log.warning("the intake's memory of recent events is this process's own: %s", error)
        return None
    url = engine.url
    identity = "\0".join(str(part) for part in (url.host, url.port, url.database, oid, started, os.getuid()))
    return f"{os.getppid()}-{hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()}"


# One per database (not per process): tests, and embedded mode's services, each have their own.
_RECENT: weakref.WeakKeyDictionary[Database, RecentlyReceived] = weakref.WeakKeyDictionary()
_RECENT_LOCK = threading.Lock()


def _recently_received(database: Database) -> RecentlyReceived:
    recent = _RECENT.get(database)
    if recent is None:
        with _RECENT_LOCK:
            recent = _RECENT.get(database)
            if recent is None:
                recent = _RECENT[database] = RecentlyReceived(shared_name=_server_table_name(database))
    return recent
