"""The survey service's repositories and its unit of work.

``SurveyUnitOfWork`` names the repositories the use cases read and change state through; the protocols
below say what each offers. ``SqlSurveyUnitOfWork`` implements them on one SQLAlchemy session: every query,
row lock and PostgreSQL-specific choice of the service lives here, so the use cases run as well on the
in-memory fake of the unit tests.
"""

from __future__ import annotations

import functools
import json
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
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased

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
    TriggerRuleRow,
)


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

    def add(self, customer: Customer) -> None: ...


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
        """``flush=False``: written with the transaction's next flush, as a batch's decisions do (one flush
        for an event's invitation and the next one's customer, or all at commit); for a caller that adds no
        row referring to it meanwhile (a flush orders classes by name, not by foreign key, where no
        relationship() says otherwise)."""
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

    def receive_crm_event(self, values: dict[str, Any]) -> tuple[str, bool]:
        """The intake's whole transaction, called outside ``with``: store a new CRM event (its column values)
        unless its (source, external id) is stored already, as ``crm_events.receive`` does, and wake the
        clock when stored. The stored event's id, and True when it is this one."""
        with self:
            event_id, stored = self.crm_events.receive(CrmEvent(**values))
            if stored:
                self.wake_clock()
        return event_id, stored


# --- On the database -----------------------------------------------------------------------------------
# Each ``add`` flushes: a unique key a concurrent transaction took meanwhile fails there, as ``Conflict``,
# before anything is built on the row, and the rows that refer to it are inserted after it.


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

    def add(self, customer: Customer) -> None:
        self.session.add(customer)
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
            # The intake's transaction is this one statement: run on its own (autocommit), it is durable
            # when PostgreSQL answers, one round trip instead of BEGIN, INSERT and COMMIT. It answers the
            # stored event's id either way: the new one, or the one stored before (a duplicate).
            connection = self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            row = connection.execute(_RECEIVE_OR_FIND, values).first()
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


def _json_text(value: Any) -> str | None:
    # What SQLAlchemy's JSON type binds (json.dumps); the statement casts the text to json.
    return None if value is None else json.dumps(value)


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


class SqlSurveyUnitOfWork(SurveyUnitOfWork, SqlUnitOfWork):
    def __init__(self, database: Database) -> None:
        super().__init__(models.SERVICE, database, models.outbox, models.consumed_events)

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

    def receive_crm_event(self, values: dict[str, Any]) -> tuple[str, bool]:
        engine = self.database.engine
        if engine.dialect.driver != "psycopg":
            return super().receive_crm_event(values)
        # The intake's hot path (issue 19): one statement on a pooled connection in autocommit, without a
        # session or the ORM, which cost more CPU than the statement itself. Durable when PostgreSQL answers.
        recent = _recently_received(self.database)
        known = recent.get(values["source"], values["external_id"])
        if known is not None:
            return known, False  # a repeat of an event this process stored or saw a moment ago
        sql = _receive_sql(engine.dialect)
        parameters = {
            key: _json_text(value) if key in _JSON_COLUMNS else value for key, value in values.items()
        }
        pooled = engine.raw_connection()
        connection = pooled.dbapi_connection
        try:
            connection.autocommit = True  # a client-side setting while idle: no round trip
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql, parameters)
                    row = cursor.fetchone()
            finally:
                connection.autocommit = False
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, connection, None):
                pooled.invalidate(error)  # as SQLAlchemy would: this connection is not handed out again
            raise
        finally:
            pooled.close()
        if row is None:
            # Only when a concurrent request's insert committed while this statement waited for it (the
            # statement's snapshot predates that row): the session's path reads it afresh.
            return super().receive_crm_event(values)
        event_id, stored = row
        recent.put(values["source"], values["external_id"], event_id)  # committed: PostgreSQL has answered
        if stored:
            COMMITTED_EVENTS.set()  # wake_clock, for a transaction that had no unit of work around it
        return event_id, stored


class RecentlyReceived:
    """The CRM events this process stored, or found stored, in the last ``max_age`` seconds (at most ``size``
    of them): (source, external id) -> the stored event's id. A CRM's retry of one of them is answered as a
    duplicate without asking the database (issue 19).

    Filled only once the row is committed. An event erased meanwhile (its customer's erasure deletes it)
    stays known here until it ages out: a repeat of it within ``max_age`` is answered as a duplicate, with
    the id of an event that is gone, where otherwise it would be stored anew.
    """

    # About 400 bytes an event: 4096 of them are under 2 MiB a process.
    def __init__(self, size: int = 4096, max_age: float = 120.0) -> None:
        self.size = size
        self.max_age = max_age
        # Insertion order is expiry order (one max_age for all): the oldest entry is always the first.
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, source: str, external_id: str) -> str | None:
        entry = self._entries.get((source, external_id))
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def put(self, source: str, external_id: str, event_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            entries = self._entries
            entries.pop((source, external_id), None)
            entries[(source, external_id)] = (event_id, now + self.max_age)
            while entries:
                oldest = next(iter(entries))
                if len(entries) <= self.size and entries[oldest][1] > now:
                    break
                del entries[oldest]


# One per database (not per process): tests, and embedded mode's services, each have their own.
_RECENT: weakref.WeakKeyDictionary[Database, RecentlyReceived] = weakref.WeakKeyDictionary()


def _recently_received(database: Database) -> RecentlyReceived:
    recent = _RECENT.get(database)
    if recent is None:
        recent = _RECENT.setdefault(database, RecentlyReceived())
    return recent
