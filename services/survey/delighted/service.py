"""The Delighted API's use cases, on survey's customers, invitations and responses; each owns its transaction.

A Delighted person is a survey customer (found by email, then phone number), a survey request is an
invitation asked for through survey's normal path (``invitation.requested`` to dispatch), and a survey
response is a survey response that emits ``response.submitted`` like any other.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from shared.channels import Channel
from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.errors import DomainError, NotFoundError
from shared.locales import DEFAULT_LOCALE, resolve_locale

from .. import domain as survey_domain
from .. import privacy
from .. import service as survey
from ..models import Customer, DelightedSuppression, DelightedSurveyRequest, Invitation, Response
from ..runtime import SurveyRuntime
from ..unit_of_work import SurveyUnitOfWork
from . import domain
from .domain import RequestStatus, SuppressionKind, unix
from .unit_of_work import PeopleFilter, PersonActivity, ResponsesFilter

log = logging.getLogger(__name__)


class UnprocessableError(DomainError):
    status = 422
    title = "Unprocessable Entity"


# --- People ----------------------------------------------------------------------------------------


def person_json(customer: Customer, activity: PersonActivity | None = None) -> dict[str, Any]:
    activity = activity or PersonActivity(None, None, None)
    return {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "phone_number": customer.phone,
        "created_at": unix(customer.created_at),
        "last_sent_at": unix(activity.last_sent_at),
        "last_responded_at": unix(activity.last_responded_at),
        "next_survey_scheduled_at": unix(activity.next_survey_scheduled_at),
    }


def send_to_person(runtime: SurveyRuntime, fields: dict[str, Any]) -> dict[str, Any]:
    """``POST /people``: create or update a person by email or phone number and, unless ``send`` is false,
    ask for a survey now or ``delay`` seconds from now."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        customer = _upsert_person(uow, fields, now)
        properties = dict(fields.get("properties") or {})
        scheduled_at = None
        if fields["send"]:
            scheduled_at = _request_survey(
                runtime, uow, customer, fields.get("channel"), properties, fields["delay"], now
            )
        return {
            **person_json(customer),
            "survey_scheduled_at": unix(scheduled_at),
            "properties": properties,
        }


def _upsert_person(uow: SurveyUnitOfWork, fields: dict[str, Any], now: datetime) -> Customer:
    email, phone = fields.get("email"), fields.get("phone_number")
    customer = (uow.delighted.person_by_email(email) if email else None) or (
        uow.delighted.person_by_phone(phone) if phone else None
    )
    if customer is None:
        customer_id = str(uuid.uuid4())
        customer = Customer(
            id=customer_id,
            # Delighted knows people by email or phone; a CRM event names this one by this id from now on.
            external_id=f"delighted-{customer_id}",
            email=email,
            phone=phone,
            name=None,
            locale=DEFAULT_LOCALE,
            timezone=None,
            preferred_channel=Channel.EMAIL.value,
            properties={},
            created_at=now,
            updated_at=now,
        )
        uow.customers.add(customer)
    else:
        # A person found by email gets the phone number sent with it, and the other way round.
        customer.email = customer.email or email
        customer.phone = customer.phone or phone
    customer.email = fields.get("email_update") or customer.email
    customer.phone = fields.get("phone_number_update") or customer.phone
    if fields.get("name"):
        customer.name = fields["name"]
    properties = fields.get("properties") or {}
    if properties:
        customer.properties = {**customer.properties, **properties}
    # Delighted's special property: the survey's language.
    if isinstance(properties.get("locale"), str):
        customer.locale = properties["locale"][:16]
    if fields.get("channel"):
        customer.preferred_channel = fields["channel"]
    customer.updated_at = now
    return customer


def _rule(uow: SurveyUnitOfWork) -> survey_domain.TriggerRule:
    """A stored ``delighted.person`` trigger rule, else the default rule with Delighted's touchpoint."""
    return survey.trigger_rule(uow, domain.TRIGGER_EVENT_TYPE) or _default_rule()


def _default_rule() -> survey_domain.TriggerRule:
    return survey_domain.TriggerRule(domain.TRIGGER_EVENT_TYPE, domain.DEFAULT_TOUCHPOINT)


def _throttled(
    uow: SurveyUnitOfWork, rule: survey_domain.TriggerRule, customer: Customer, now: datetime
) -> bool:
    if not rule.enabled:
        return True
    skip = survey_domain.quarantined(
        rule, now, uow.invitations.last_invited_at(customer.id), uow.responses.last_answered_at(customer.id)
    )
    if skip is not None:
        log.info("Delighted survey for %s not sent: %s", customer.id, skip.reason)
    return skip is not None


def _request_survey(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    customer: Customer,
    channel: str | None,
    properties: dict[str, Any],
    delay: int,
    now: datetime,
) -> datetime | None:
    """The time the survey is scheduled for; None when the rule's throttling (quarantine) skips it."""
    channel = channel or customer.preferred_channel
    if channel == Channel.SMS and not customer.phone:
        raise UnprocessableError("Cannot survey by SMS.", {"phone_number": ["Required when channel is sms."]})
    if channel == Channel.EMAIL and not customer.email:
        raise UnprocessableError("Cannot survey by email.", {"email": ["Required when channel is email."]})
    rule = _rule(uow)
    if _throttled(uow, rule, customer, now):
        return None
    request = DelightedSurveyRequest(
        id=str(uuid.uuid4()),
        customer_id=customer.id,
        channel=channel,
        properties=properties,
        status=RequestStatus.PENDING,
        scheduled_at=now + timedelta(seconds=delay),
        invitation_id=None,
        created_at=now,
    )
    uow.delighted.add_request(request)
    if delay <= 0:
        _invite(runtime, uow, request, customer, rule, now)
    return request.scheduled_at


def _invite(
    runtime: SurveyRuntime,
    uow: SurveyUnitOfWork,
    request: DelightedSurveyRequest,
    customer: Customer,
    rule: survey_domain.TriggerRule,
    now: datetime,
) -> None:
    invitation = survey._request_invitation(
        runtime,
        uow,
        customer,
        rule.touchpoint,
        {**customer.properties, **request.properties},
        now,
        expires_at=survey_domain.invitation_expires_at(
            rule, now, runtime.settings.survey_invitation_expiry_days
        ),
    )
    request.status, request.invitation_id = RequestStatus.SENT, invitation.id


def send_due_survey_requests(runtime: SurveyRuntime, now: datetime | None = None, limit: int = 50) -> int:
    """Scheduler job: ask for the invitation of each delayed Delighted survey come due; how many were sent.

    Safe in several clocks at once: each request is taken under a row lock and only while still pending.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        due = uow.delighted.due_requests(now, limit)
    return sum(_release(runtime, request_id, now) for request_id in due)


def _release(runtime: SurveyRuntime, request_id: str, now: datetime) -> bool:
    with runtime.unit_of_work() as uow:
        request = uow.delighted.lock_request(request_id)
        if request is None or request.status != RequestStatus.PENDING:
            return False
        customer = uow.customers.get(request.customer_id)
        rule = _rule(uow)
        if _throttled(uow, rule, customer, now):
            request.status = RequestStatus.SKIPPED
            return False
        _invite(runtime, uow, request, customer, rule, now)
        return True


def list_people(
    runtime: SurveyRuntime, where: PeopleFilter, cursor: str | None, per_page: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of people in creation order, and the cursor of the next page (None on the last)."""
    after = None
    if cursor:
        after = domain.decode_cursor(cursor)
        if after is None:
            raise UnprocessableError("Invalid page_info.", {"page_info": ["Not a cursor this API gave."]})
    with runtime.unit_of_work() as uow:
        people = uow.delighted.people_page(where, after, per_page + 1)
        more, people = len(people) > per_page, people[:per_page]
        activity = uow.delighted.activity([person.id for person in people])
        page = [person_json(person, activity[person.id]) for person in people]
        last = people[-1] if people else None
        next_cursor = domain.encode_cursor(last.created_at, last.id) if more and last else None
    return page, next_cursor


def _find_people(uow: SurveyUnitOfWork, identifier: domain.PersonIdentifier) -> list[Customer]:
    """Everyone an identifier names: by email or phone, every customer record holding it (a CRM may have
    sent the same person under two external ids); by id, that one."""
    if not domain.storable(identifier.value) or not 0 < len(identifier.value) <= 320:
        return []
    if identifier.kind == "email":
        return uow.delighted.people_with_email(identifier.value)
    if identifier.kind == "phone_number":
        return uow.delighted.people_with_phone(identifier.value)
    customer = uow.delighted.customer(identifier.value)
    return [customer] if customer else []


def delete_person(runtime: SurveyRuntime, identifier_text: str) -> None:
    """``DELETE /people/{id|email:...|phone_number:...}``: erase the person everywhere (see ``privacy``)."""
    identifier = domain.person_identifier(identifier_text)
    with runtime.unit_of_work() as uow:
        customer_ids = [customer.id for customer in _find_people(uow, identifier)]
    if not customer_ids:
        raise NotFoundError("Person not found.")
    for customer_id in customer_ids:
        privacy.erase_customer(runtime, customer_id)


def delete_pending_survey_requests(runtime: SurveyRuntime, email: str) -> int:
    """Cancel the Delighted surveys still waiting for their delay; how many there were."""
    if not domain.storable(email) or len(email) > 320:
        raise NotFoundError("Person not found.")
    with runtime.unit_of_work() as uow:
        people = uow.delighted.people_with_email(email)
        if not people:
            raise NotFoundError("Person not found.")
        pending = uow.delighted.pending_requests([person.id for person in people])
        for request in pending:
            request.status = RequestStatus.CANCELLED
        return len(pending)


# --- Survey responses ------------------------------------------------------------------------------


def response_json(
    response: Response,
    invitation: Invitation,
    customer: Customer,
    permalink: str,
    expanded_person: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": response.id,
        "person": expanded_person if expanded_person is not None else customer.id,
        "survey_type": domain.SURVEY_TYPE,
        "score": response.score,
        "comment": response.comment,
        "permalink": permalink,
        "created_at": unix(response.submitted_at),
        "updated_at": unix(response.updated_at),
        "person_properties": invitation.properties or None,
        "notes": [],
        "tags": [],
        "additional_answers": [],
    }


def add_response(runtime: SurveyRuntime, fields: dict[str, Any]) -> tuple[Response, Invitation, Customer]:
    """``POST /survey_responses``: a response of a known person, as a response given through the API."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        customer = uow.delighted.customer(str(fields["person"]))
        if customer is None:
            raise UnprocessableError("Person not found.", {"person": ["No person has this id."]})
        created_at = fields.get("created_at") or now
        invitation = Invitation(
            id=str(uuid.uuid4()),
            token=secrets.token_urlsafe(24),
            customer_id=customer.id,
            crm_event_id=None,
            follows_up_response_id=None,
            touchpoint=_rule(uow).touchpoint,
            locale=resolve_locale(customer.locale),
            properties=dict(fields.get("person_properties") or {}),
            created_at=created_at,
            expires_at=None,
        )
        uow.invitations.add(invitation)
        response = survey._save_response(
            uow, invitation, customer, fields["score"], fields.get("comment") or None, domain.API_CHANNEL
        )
        response.submitted_at = created_at
        return response, invitation, customer


def _checked_response_id(response_id: str) -> str:
    if not domain.storable(response_id) or len(response_id) > 36:
        raise NotFoundError("Survey response not found.")
    return response_id


def update_response(
    runtime: SurveyRuntime, response_id: str, fields: dict[str, Any]
) -> tuple[Response, Invitation, Customer]:
    """``PUT /survey_responses/{id}``: the clients send the whole object back; score, comment and
    person_properties are what changes (a new revision, announced like any other)."""
    response_id = _checked_response_id(response_id)
    with runtime.unit_of_work() as uow:
        found = uow.delighted.response(response_id)
        if found is None:
            raise NotFoundError("Survey response not found.")
        response, invitation, customer = found
        if "person_properties" in fields:
            invitation.properties = dict(fields["person_properties"] or {})
        score = fields.get("score", response.score)
        comment = fields.get("comment", response.comment)
        survey._save_response(uow, invitation, customer, score, comment or None, response.channel)
        return response, invitation, customer


def get_response(runtime: SurveyRuntime, response_id: str) -> tuple[Response, Invitation, Customer, dict]:
    response_id = _checked_response_id(response_id)
    with runtime.unit_of_work() as uow:
        found = uow.delighted.response(response_id)
        if found is None:
            raise NotFoundError("Survey response not found.")
        response, invitation, customer = found
        person = person_json(customer, uow.delighted.activity([customer.id])[customer.id])
        return response, invitation, customer, person


def list_responses(
    runtime: SurveyRuntime, where: ResponsesFilter, order: str, page: int, per_page: int
) -> list[tuple[Response, Invitation, Customer, dict]]:
    with runtime.unit_of_work() as uow:
        rows = uow.delighted.responses_page(where, order, (page - 1) * per_page, per_page)
        activity = uow.delighted.activity(sorted({customer.id for _, _, customer in rows}))
        return [
            (response, invitation, customer, person_json(customer, activity[customer.id]))
            for response, invitation, customer in rows
        ]


def metrics(runtime: SurveyRuntime, since: datetime | None, until: datetime | None) -> dict[str, int]:
    with runtime.unit_of_work() as uow:
        counts = uow.delighted.score_counts(since, until)
    return asdict(domain.metrics(domain.summary_of_counts(counts)))


# --- Unsubscribes and bounces ----------------------------------------------------------------------


def unsubscribe(runtime: SurveyRuntime, email: str, at: datetime | None = None) -> None:
    """``POST /unsubscribes``: no more surveys to this email; dispatch records the opt-out."""
    with runtime.unit_of_work() as uow:
        record_suppression(uow, SuppressionKind.UNSUBSCRIBE, email, at or utcnow())


def record_suppression(uow: SurveyUnitOfWork, kind: SuppressionKind, email: str, at: datetime) -> bool:
    """Record an unsubscribe or a bounce once; an unsubscribe also reaches dispatch. False: known already."""
    email = email.lower()
    if uow.delighted.suppression(kind, email) is not None:
        return False
    person = uow.delighted.person_by_email(email)
    uow.delighted.add_suppression(
        DelightedSuppression(
            kind=kind, email=email, customer_id=person.id if person else None, occurred_at=at
        )
    )
    if kind == SuppressionKind.UNSUBSCRIBE:
        uow.emit(
            "unsubscribe.requested", {"channel": Channel.EMAIL.value, "address": email, "source": "delighted"}
        )
    return True


@consumes("delivery.bounced")
def record_bounce(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """An email survey (or any message) bounced: Delighted's GET /bounces lists the address."""
    data = event.data
    if data["channel"] == Channel.EMAIL:
        record_suppression(uow, SuppressionKind.BOUNCE, data["address"], data["bounced_at"])


def list_suppressions(
    runtime: SurveyRuntime,
    kind: SuppressionKind,
    since: datetime | None,
    until: datetime | None,
    page: int,
    per_page: int,
) -> list[dict[str, Any]]:
    moment = "unsubscribed_at" if kind == SuppressionKind.UNSUBSCRIBE else "bounced_at"
    with runtime.unit_of_work() as uow:
        rows = uow.delighted.suppressions_page(kind, since, until, (page - 1) * per_page, per_page)
        return [
            {
                "person_id": customer.id if customer else None,
                "email": row.email,
                "name": customer.name if customer else None,
                moment: unix(row.occurred_at),
            }
            for row, customer in rows
        ]
