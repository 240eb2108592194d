"""The Delighted API's queries on survey's tables: people by email or phone, pages of people and responses,
its survey requests and its unsubscribes and bounces. Opened by ``SqlSurveyUnitOfWork`` as ``uow.delighted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from ..models import (
    Customer,
    DelightedImport,
    DelightedSuppression,
    DelightedSurveyRequest,
    Invitation,
    Response,
)
from .domain import RequestStatus


@dataclass(frozen=True)
class PeopleFilter:
    email: str | None = None
    phone: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class ResponsesFilter:
    since: datetime | None = None
    until: datetime | None = None
    updated_since: datetime | None = None
    updated_until: datetime | None = None
    person_id: str | None = None
    person_email: str | None = None


@dataclass(frozen=True)
class PersonActivity:
    last_sent_at: datetime | None
    last_responded_at: datetime | None
    next_survey_scheduled_at: datetime | None


def _email_forms(email: str) -> list[str]:
    # Delighted's emails are lower case; a CRM may have sent the same address with capitals.
    return sorted({email, email.lower()})


class SqlDelightedRecords:
    def __init__(self, session: Session) -> None:
        self.session = session

    # People

    def customer(self, customer_id: str) -> Customer | None:
        return self.session.get(Customer, customer_id) if customer_id else None

    def person_by_email(self, email: str) -> Customer | None:
        """The first customer known by this email (several CRM records may share one)."""
        query = (
            select(Customer)
            .where(Customer.email.in_(_email_forms(email)))
            .order_by(Customer.created_at, Customer.id)
            .limit(1)
        )
        return self.session.scalars(query).first()

    def person_by_phone(self, phone: str) -> Customer | None:
        query = select(Customer).where(Customer.phone == phone).order_by(Customer.created_at, Customer.id)
        return self.session.scalars(query.limit(1)).first()

    def people_with_phone(self, phone: str) -> list[Customer]:
        return list(self.session.scalars(select(Customer).where(Customer.phone == phone)))

    def people_with_email(self, email: str) -> list[Customer]:
        return list(self.session.scalars(select(Customer).where(Customer.email.in_(_email_forms(email)))))

    def people_page(
        self, where: PeopleFilter, after: tuple[datetime, str] | None, limit: int
    ) -> list[Customer]:
        """People in creation order after the cursor position ``after``."""
        query = select(Customer)
        if where.email:
            query = query.where(Customer.email.in_(_email_forms(where.email)))
        if where.phone:
            query = query.where(Customer.phone == where.phone)
        if where.since:
            query = query.where(Customer.created_at >= where.since)
        if where.until:
            query = query.where(Customer.created_at <= where.until)
        if after is not None:
            query = query.where(tuple_(Customer.created_at, Customer.id) > tuple_(*after))
        return list(self.session.scalars(query.order_by(Customer.created_at, Customer.id).limit(limit)))

    def activity(self, customer_ids: list[str]) -> dict[str, PersonActivity]:
        """Each person's last invitation, last answer and next pending Delighted survey, in three queries."""
        if not customer_ids:
            return {}
        sent = dict(
            self.session.execute(
                select(Invitation.customer_id, func.max(Invitation.created_at))
                .where(Invitation.customer_id.in_(customer_ids))
                .group_by(Invitation.customer_id)
            ).all()
        )
        answered = dict(
            self.session.execute(
                select(Response.customer_id, func.max(Response.submitted_at))
                .where(Response.customer_id.in_(customer_ids))
                .group_by(Response.customer_id)
            ).all()
        )
        scheduled = dict(
            self.session.execute(
                select(DelightedSurveyRequest.customer_id, func.min(DelightedSurveyRequest.scheduled_at))
                .where(
                    DelightedSurveyRequest.customer_id.in_(customer_ids),
                    DelightedSurveyRequest.status == RequestStatus.PENDING,
                )
                .group_by(DelightedSurveyRequest.customer_id)
            ).all()
        )
        return {
            customer_id: PersonActivity(
                sent.get(customer_id), answered.get(customer_id), scheduled.get(customer_id)
            )
            for customer_id in customer_ids
        }

    # Survey requests

    def add_request(self, request: DelightedSurveyRequest) -> None:
        self.session.add(request)
        self.session.flush()

    def request(self, request_id: str) -> DelightedSurveyRequest | None:
        return self.session.get(DelightedSurveyRequest, request_id)

    def due_requests(self, now: datetime, limit: int) -> list[str]:
        query = (
            select(DelightedSurveyRequest.id)
            .where(
                DelightedSurveyRequest.status == RequestStatus.PENDING,
                DelightedSurveyRequest.scheduled_at <= now,
            )
            .order_by(DelightedSurveyRequest.scheduled_at)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def lock_request(self, request_id: str) -> DelightedSurveyRequest | None:
        """The request, locked until the transaction ends; None when another clock holds it."""
        query = select(DelightedSurveyRequest).where(DelightedSurveyRequest.id == request_id)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return self.session.scalars(query).first()

    def pending_requests(self, customer_ids: list[str]) -> list[DelightedSurveyRequest]:
        query = select(DelightedSurveyRequest).where(
            DelightedSurveyRequest.customer_id.in_(customer_ids),
            DelightedSurveyRequest.status == RequestStatus.PENDING,
        )
        return list(self.session.scalars(query))

    # Responses

    def response(self, response_id: str) -> tuple[Response, Invitation, Customer] | None:
        query = (
            select(Response, Invitation, Customer)
            .join(Invitation, Invitation.id == Response.invitation_id)
            .join(Customer, Customer.id == Response.customer_id)
            .where(Response.id == response_id)
        )
        row = self.session.execute(query).first()
        return (row[0], row[1], row[2]) if row else None

    def responses_page(
        self, where: ResponsesFilter, order: str, offset: int, limit: int
    ) -> list[tuple[Response, Invitation, Customer]]:
        """``order``: asc or desc by creation, asc:updated_at or desc:updated_at."""
        query = (
            select(Response, Invitation, Customer)
            .join(Invitation, Invitation.id == Response.invitation_id)
            .join(Customer, Customer.id == Response.customer_id)
            .where(*self._response_conditions(where))
        )
        direction, _, field = order.partition(":")
        column = Response.updated_at if field == "updated_at" else Response.submitted_at
        ordering = (column.desc(), Response.id.desc()) if direction == "desc" else (column, Response.id)
        rows = self.session.execute(query.order_by(*ordering).offset(offset).limit(limit)).all()
        return [(row[0], row[1], row[2]) for row in rows]

    def score_counts(self, since: datetime | None, until: datetime | None) -> dict[int, int]:
        """How many responses gave each score: counted by the database, not row by row here."""
        query = (
            select(Response.score, func.count())
            .where(*self._response_conditions(ResponsesFilter(since, until)))
            .group_by(Response.score)
        )
        return {score: count for score, count in self.session.execute(query).all()}

    def _response_conditions(self, where: ResponsesFilter) -> list:
        conditions = []
        if where.since:
            conditions.append(Response.submitted_at >= where.since)
        if where.until:
            conditions.append(Response.submitted_at <= where.until)
        if where.updated_since:
            conditions.append(Response.updated_at >= where.updated_since)
        if where.updated_until:
            conditions.append(Response.updated_at <= where.updated_until)
        if where.person_id:
            conditions.append(Response.customer_id == where.person_id)
        if where.person_email:
            emails = _email_forms(where.person_email)
            conditions.append(Response.customer_id.in_(select(Customer.id).where(Customer.email.in_(emails))))
        return conditions

    # Unsubscribes and bounces

    def suppression(self, kind: str, email: str) -> DelightedSuppression | None:
        query = select(DelightedSuppression).where(
            DelightedSuppression.kind == kind, DelightedSuppression.email == email.lower()
        )
        return self.session.scalars(query).first()

    def add_suppression(self, suppression: DelightedSuppression) -> None:
        self.session.add(suppression)
        self.session.flush()

    def suppressions_page(
        self, kind: str, since: datetime | None, until: datetime | None, offset: int, limit: int
    ) -> list[tuple[DelightedSuppression, Customer | None]]:
        conditions = []
        if since:
            conditions.append(DelightedSuppression.occurred_at >= since)
        if until:
            conditions.append(DelightedSuppression.occurred_at <= until)
        query = (
            select(DelightedSuppression, Customer)
            .outerjoin(Customer, Customer.id == DelightedSuppression.customer_id)
            .where(DelightedSuppression.kind == kind, *conditions)
            .order_by(DelightedSuppression.occurred_at, DelightedSuppression.id)
            .offset(offset)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in self.session.execute(query).all()]

    # Imports

    def imported(self, kind: str, source_id: str) -> DelightedImport | None:
        return self.session.get(DelightedImport, (kind, source_id))

    def add_import(self, record: DelightedImport) -> None:
        self.session.add(record)
        self.session.flush()
