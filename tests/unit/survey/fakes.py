"""The survey service on an in-memory unit of work: every use case runs in milliseconds, without a database.

Rows are the service's own ORM classes used as plain objects. A failed block drops the rows it added, as a
rollback would; changes it made to rows that were already there stay, so tests check outcomes, not that.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from services.survey import models
from services.survey.domain import Decision, FollowUpStatus
from services.survey.models import (
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
    ResponseSentiment,
    ScoreClick,
    TriggerRuleRow,
)
from services.survey.runtime import SurveyRuntime
from services.survey.unit_of_work import SurveyUnitOfWork
from shared.unit_of_work import Conflict, InMemoryUnitOfWork
from tests.conftest import make_settings
from tests.fakes import FakeIdentityStore


class FakeCustomers:
    def __init__(self) -> None:
        self.rows: dict[str, Customer] = {}

    def get(self, customer_id: str) -> Customer:
        return self.rows[customer_id]

    def get_for_update(self, external_id: str) -> Customer | None:
        return next((row for row in self.rows.values() if row.external_id == external_id), None)

    def lock_all(self, external_ids: Collection[str]) -> dict[str, Customer]:
        return {row.external_id: row for row in self.rows.values() if row.external_id in external_ids}

    def by_external_id(self, external_id: str) -> Customer | None:
        return self.get_for_update(external_id)

    def search(
        self, text: str | None, attributes: dict[str, str], offset: int, limit: int
    ) -> tuple[list[Customer], int]:
        def matches(row: Customer) -> bool:
            fields = (row.name, row.email, row.phone, row.external_id)
            if text and not any(text.lower() in (field or "").lower() for field in fields):
                return False
            return all(str(row.properties.get(name)) == value for name, value in attributes.items())

        found = sorted((row for row in self.rows.values() if matches(row)), key=lambda row: row.external_id)
        return found[offset : offset + limit], len(found)

    def add(self, customer: Customer, flush: bool = True) -> None:
        self.rows[customer.id] = customer


class FakeCrmEvents:
    def __init__(self) -> None:
        self.rows: dict[str, CrmEvent] = {}

    def get(self, crm_event_id: str) -> CrmEvent | None:
        return self.rows.get(crm_event_id)

    def find(self, source: str, external_id: str) -> CrmEvent | None:
        return next(
            (row for row in self.rows.values() if (row.source, row.external_id) == (source, external_id)),
            None,
        )

    def for_customer(self, customer_id: str, limit: int) -> list[CrmEvent]:
        # Insertion order breaks ties of received_at, as the fake's clock may not move between events.
        rows = [row for row in self.rows.values() if row.customer_id == customer_id]
        return sorted(reversed(rows), key=lambda row: row.received_at, reverse=True)[:limit]

    def delayed_for_customer(self, customer_id: str) -> list[CrmEvent]:
        return [
            row
            for row in self.rows.values()
            if row.customer_id == customer_id and row.decision == Decision.DELAYED
        ]

    def due(self, now: datetime, limit: int) -> list[str]:
        due = [row for row in self.rows.values() if row.decision == Decision.DELAYED and row.due_at <= now]
        return [row.id for row in sorted(due, key=lambda row: row.due_at)[:limit]]

    def receive(self, crm_event: CrmEvent) -> tuple[str, bool]:
        existing = self.find(crm_event.source, crm_event.external_id)
        if existing is not None:
            return existing.id, False
        self.rows[crm_event.id] = crm_event
        return crm_event.id, True

    def claim_received(
        self, limit: int, event_id: str | None = None, share: tuple[int, int] | None = None
    ) -> list[CrmEvent]:
        # ``share`` splits the events among deciders running at once; the fake has one decider.
        received = [
            row for row in self.rows.values() if row.status == EVENT_RECEIVED and event_id in (None, row.id)
        ]
        # A stable sort: events received at the same instant stay in the order they came.
        return sorted(received, key=lambda row: row.received_at)[:limit]

    def add(self, crm_event: CrmEvent) -> None:
        self.rows[crm_event.id] = crm_event


class FakeInvitations:
    def __init__(self) -> None:
        self.rows: dict[str, Invitation] = {}
        # Set by the unit of work: follow_up_scores reads the responses, as the SQL join does.
        self.responses: FakeResponses

    def get(self, invitation_id: str) -> Invitation | None:
        return self.rows.get(invitation_id)

    def by_token(self, token: str) -> Invitation | None:
        return next((row for row in self.rows.values() if row.token == token), None)

    def last_invited_at(self, customer_id: str) -> datetime | None:
        return max(
            (row.created_at for row in self.rows.values() if row.customer_id == customer_id), default=None
        )

    def follow_up_scores(self) -> list[tuple[int, int | None]]:
        scores: list[tuple[int, int | None]] = []
        for invitation in self.rows.values():
            if invitation.follows_up_response_id is None:
                continue
            earlier = self.responses.get(invitation.follows_up_response_id)
            if earlier is None:
                continue
            later = self.responses.for_invitation(invitation.id)
            scores.append((earlier.score, later.score if later else None))
        return scores

    def add(self, invitation: Invitation, flush: bool = True) -> None:
        self.rows[invitation.id] = invitation


class FakeResponses:
    def __init__(self, invitations: FakeInvitations) -> None:
        self.rows: dict[str, Response] = {}
        self._invitations = invitations

    def get(self, response_id: str) -> Response | None:
        return self.rows.get(response_id)

    get_held = get  # one unit of work at a time here: nothing to wait for

    def for_invitation(self, invitation_id: str) -> Response | None:
        return next((row for row in self.rows.values() if row.invitation_id == invitation_id), None)

    def scores(self, touchpoint: str | None = None) -> list[int]:
        return [
            row.score
            for row in self.rows.values()
            if touchpoint is None or self._invitations.rows[row.invitation_id].touchpoint == touchpoint
        ]

    def last_answered_at(self, customer_id: str) -> datetime | None:
        return max(
            (row.submitted_at for row in self.rows.values() if row.customer_id == customer_id), default=None
        )

    def add(self, response: Response) -> None:
        self.rows[response.id] = response


class FakeTriggerRules:
    def __init__(self) -> None:
        self.rows: dict[str, TriggerRuleRow] = {}

    def get(self, event_type: str) -> TriggerRuleRow | None:
        return self.rows.get(event_type)

    def all(self) -> list[TriggerRuleRow]:
        return [self.rows[event_type] for event_type in sorted(self.rows)]

    def add(self, rule: TriggerRuleRow) -> None:
        self.rows[rule.event_type] = rule


class FakeChannelOptOuts:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], ChannelOptOut] = {}

    def get(self, channel: str, address: str) -> ChannelOptOut | None:
        return self.rows.get((channel, address))

    def opted_out(self, addresses: dict[str, str]) -> set[str]:
        return {
            channel
            for channel, address in addresses.items()
            if (row := self.rows.get((channel, address))) is not None and row.opted_out
        }

    def opted_out_among(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        return {pair for pair in pairs if (row := self.rows.get(pair)) is not None and row.opted_out}

    def add(self, opt_out: ChannelOptOut) -> None:
        self.rows[(opt_out.channel, opt_out.address)] = opt_out


class FakeEventSources:
    def __init__(self) -> None:
        self.rows: dict[str, EventSourceRow] = {}

    def get(self, name: str) -> EventSourceRow | None:
        return self.rows.get(name)

    def all(self) -> list[EventSourceRow]:
        return [self.rows[name] for name in sorted(self.rows)]

    def add(self, source: EventSourceRow) -> None:
        if source.name in self.rows:
            raise Conflict("survey_sources.name")
        self.rows[source.name] = source

    def remove(self, source: EventSourceRow) -> None:
        del self.rows[source.name]


class FakeScoreClicks:
    def __init__(self) -> None:
        self.rows: list[ScoreClick] = []

    def for_invitation(self, invitation_id: str) -> list[ScoreClick]:
        return [row for row in self.rows if row.invitation_id == invitation_id]

    def add(self, click: ScoreClick) -> None:
        click.id = max((row.id for row in self.rows), default=0) + 1  # the database's autoincrement
        self.rows.append(click)


class FakeAnswerMessages:
    def __init__(self) -> None:
        self.rows: list[AnswerMessage] = []

    def for_invitation(self, invitation_id: str) -> list[AnswerMessage]:
        return [row for row in self.rows if row.invitation_id == invitation_id]

    def add(self, message: AnswerMessage) -> None:
        self.rows.append(message)


class FakeMessageTemplates:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], MessageTemplateRow] = {}

    def get(self, touchpoint: str, locale: str) -> MessageTemplateRow | None:
        return self.rows.get((touchpoint, locale))

    def all(self) -> list[MessageTemplateRow]:
        return [self.rows[key] for key in sorted(self.rows)]

    def add(self, template: MessageTemplateRow) -> None:
        self.rows[(template.touchpoint, template.locale)] = template

    def delete(self, template: MessageTemplateRow) -> None:
        del self.rows[(template.touchpoint, template.locale)]


class FakeBrands:
    def __init__(self) -> None:
        self.rows: dict[int, BrandRow] = {}

    def get(self) -> BrandRow | None:
        return self.rows.get(1)

    def add(self, brand: BrandRow) -> None:
        self.rows[brand.id] = brand


class FakeFollowUpSurveys:
    def __init__(self) -> None:
        self.rows: dict[str, FollowUpSurvey] = {}
        # Follow-ups a concurrent clock has locked: claim_due skips them, as SKIP LOCKED does.
        self.held_by_another_clock: set[str] = set()

    def for_response(self, response_id: str) -> FollowUpSurvey | None:
        return next((row for row in self.rows.values() if row.response_id == response_id), None)

    def claim_due(self, now: datetime, limit: int) -> list[FollowUpSurvey]:
        due = [
            row
            for row in self.rows.values()
            if row.status == FollowUpStatus.SCHEDULED
            and row.due_at <= now
            and row.id not in self.held_by_another_clock
        ]
        return sorted(due, key=lambda row: row.due_at)[:limit]

    def count_scheduled(self) -> int:
        return sum(row.status == FollowUpStatus.SCHEDULED for row in self.rows.values())

    def add(self, follow_up: FollowUpSurvey) -> None:
        if self.for_response(follow_up.response_id) is not None:
            raise Conflict("survey_follow_up_surveys.response_id")
        self.rows[follow_up.id] = follow_up


class FakeResponseSentiments:
    def __init__(self) -> None:
        self.rows: dict[str, ResponseSentiment] = {}
        self.key_phrases: dict[str, list[str]] = {}

    def get(self, response_id: str) -> ResponseSentiment | None:
        return self.rows.get(response_id)

    def add(self, sentiment: ResponseSentiment) -> None:
        self.rows[sentiment.response_id] = sentiment

    def set_key_phrases(self, response_id: str, phrases: list[str]) -> None:
        self.key_phrases[response_id] = list(phrases)


class FakeSurveyUnitOfWork(InMemoryUnitOfWork, SurveyUnitOfWork):
    def __init__(self) -> None:
        super().__init__(models.SERVICE)
        self.customers = FakeCustomers()
        self.crm_events = FakeCrmEvents()
        self.invitations = FakeInvitations()
        self.responses = FakeResponses(self.invitations)
        self.score_clicks = FakeScoreClicks()
        self.answer_messages = FakeAnswerMessages()
        self.templates = FakeMessageTemplates()
        self.brand = FakeBrands()
        self.follow_ups = FakeFollowUpSurveys()
        self.trigger_rules = FakeTriggerRules()
        self.opt_outs = FakeChannelOptOuts()
        self.sources = FakeEventSources()
        self.sentiments = FakeResponseSentiments()
        self.invitations.responses = self.responses
        self.repositories = [
            self.customers,
            self.crm_events,
            self.invitations,
            self.responses,
            self.score_clicks,
            self.follow_ups,
            self.trigger_rules,
            self.opt_outs,
            self.sources,
            self.answer_messages,
            self.templates,
            self.brand,
            self.sentiments,
        ]

    # CRM events are rows the decider changes in place: a failed block gives them their columns back, as a
    # rollback would, so a decision that did not commit leaves its event received.
    def _begin(self) -> None:
        super()._begin()
        self._crm_event_columns = {id_: _columns(row) for id_, row in self.crm_events.rows.items()}

    def _commit(self) -> None:
        super()._commit()
        self._crm_event_columns = None

    def _rollback(self) -> None:
        super()._rollback()
        saved, self._crm_event_columns = getattr(self, "_crm_event_columns", None), None
        for id_, columns in (saved or {}).items():
            row = self.crm_events.rows.get(id_)
            for name, value in columns.items() if row is not None else ():
                setattr(row, name, value)


def _columns(row: CrmEvent) -> dict[str, object]:
    return {column.key: getattr(row, column.key) for column in CrmEvent.__table__.columns}


def fake_runtime(uow: FakeSurveyUnitOfWork) -> SurveyRuntime:
    """A survey runtime whose every unit of work is ``uow``; answer links start http://testserver/s/."""
    return SurveyRuntime(make_settings("sqlite://"), lambda: uow, identity=FakeIdentityStore())
