"""Customers on the in-memory unit of work: opt-outs dispatch reports, consent, the staff API's use cases,
and the intake's normalisation and tolerance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from marshmallow import ValidationError

from services.survey import service
from services.survey.customer_schemas import CustomerPutSchema
from services.survey.runtime import SurveyRuntime
from services.survey.schemas import CrmEventSchema, TriggerRuleSchema, VendorEventSchema
from shared.clock import utcnow
from shared.events import new_event
from tests.conftest import crm_event
from tests.survey_intake import DecidedEvent, accept_and_decide

from .fakes import FakeSurveyUnitOfWork, fake_runtime

PHONE = "+15555550100"


@pytest.fixture
def uow() -> FakeSurveyUnitOfWork:
    return FakeSurveyUnitOfWork()


@pytest.fixture
def survey(uow: FakeSurveyUnitOfWork) -> SurveyRuntime:
    return fake_runtime(uow)


def accept(survey: SurveyRuntime, event_id: str, **customer: Any) -> DecidedEvent:
    return accept_and_decide(survey, CrmEventSchema().load(crm_event(event_id, **customer)))


def opted(survey: SurveyRuntime, channel: str, address: str, out: bool = True, at=None, reason="sms_stop"):
    event_type = "customer.opted_out" if out else "customer.opted_in"
    envelope = new_event(event_type, {"channel": channel, "address": address, "reason": reason}, at)
    (service.record_opt_out if out else service.record_opt_in)(survey, envelope)


# --- Opt-outs reach survey -----------------------------------------------------------------------------


def test_customer_opted_out_of_every_channel_is_skipped_with_that_reason(survey):
    opted(survey, "email", "Jane@Example.com", reason="unsubscribe_link")
    opted(survey, "sms", PHONE)

    outcome = accept(survey, "order-1", phone=PHONE)

    assert (outcome.decision, outcome.reason_code, outcome.reason) == (
        "skipped",
        "opted_out",
        "opted out of every channel",
    )
    assert outcome.invitation_id is None
    recorded = service.event_decision(survey, outcome.event_id)
    assert (recorded.decision, recorded.reason_code, recorded.reason) == (
        "skipped",
        "opted_out",
        "opted out of every channel",
    )
    assert recorded.explanation == "opted out of every channel it could be reached on (email, sms)"


def test_an_email_only_customer_who_unsubscribed_is_skipped(survey, uow):
    opted(survey, "email", "jane@example.com", reason="unsubscribe_link")
    outcome = accept(survey, "order-1")
    assert (outcome.decision, outcome.reason_code) == ("skipped", "opted_out")
    assert uow.emitted("invitation.requested") == []


def test_a_customer_with_one_channel_left_is_invited(survey, uow):
    opted(survey, "email", "jane@example.com", reason="unsubscribe_link")
    outcome = accept(survey, "order-1", phone=PHONE)
    assert (outcome.decision, outcome.reason_code) == ("invited", "invited")
    assert len(uow.emitted("invitation.requested")) == 1


def test_opting_back_in_makes_the_customer_surveyable_again(survey):
    opted(survey, "sms", PHONE)
    assert accept(survey, "order-1", email=None, phone=PHONE).reason_code == "opted_out"

    opted(survey, "sms", PHONE, out=False, reason="sms_start")

    assert accept(survey, "order-2", email=None, phone=PHONE).decision == "invited"


def test_an_opt_in_older_than_the_opt_out_does_not_undo_it(survey):
    now = utcnow()
    opted(survey, "sms", PHONE, at=now)
    opted(survey, "sms", PHONE, out=False, at=now - timedelta(minutes=1), reason="sms_start")

    assert accept(survey, "order-1", email=None, phone=PHONE).reason_code == "opted_out"
    assert service.get_customer(survey, "crm-42").opted_out_channels == ["sms"]


def test_a_delayed_survey_of_a_customer_who_opted_out_meanwhile_is_skipped_when_due(survey):
    service.put_trigger_rule(
        survey,
        "purchase.completed",
        TriggerRuleSchema().load({"touchpoint": "purchase", "delay_hours": 48}),
    )
    delayed = accept(survey, "order-1")
    assert delayed.decision == "delayed"
    opted(survey, "email", "jane@example.com", reason="unsubscribed")

    assert service.invite_due_surveys(survey, now=utcnow() + timedelta(days=3)) == 0

    recorded = service.event_decision(survey, delayed.event_id)
    assert (recorded.decision, recorded.reason_code, recorded.reason) == (
        "skipped",
        "opted_out",
        "opted out of every channel",
    )


def test_withdrawn_consent_is_skipped_with_its_reason(survey):
    service.put_customer(survey, "crm-42", put_fields(email="jane@example.com", consent=False))
    outcome = accept(survey, "order-1")
    recorded = service.event_decision(survey, outcome.event_id)
    assert (recorded.decision, recorded.reason_code, recorded.reason) == (
        "skipped",
        "no_consent",
        "customer has not consented to surveys",
    )


def test_a_crm_event_withdrawing_consent_is_skipped_and_one_leaving_it_out_keeps_it(survey):
    assert accept(survey, "order-1", consent=False).reason_code == "no_consent"
    assert accept(survey, "order-2").reason_code == "no_consent"
    assert service.get_customer(survey, "crm-42").consent is False


def test_a_vendor_event_for_a_customer_without_any_address_is_skipped_with_its_reason(survey):
    event = VendorEventSchema().load(crm_event("ticket-1", external_id="helpdesk:77", email=None))
    outcome = accept_and_decide(survey, event, "helpdesk")
    recorded = service.event_decision(survey, outcome.event_id)
    assert (recorded.decision, recorded.reason_code, recorded.reason) == (
        "skipped",
        "no_contact",
        "no email or phone number for this customer",
    )


def test_a_vendor_event_reaches_a_customer_staff_created(survey):
    service.put_customer(survey, "helpdesk:77", put_fields(email="jo@example.com"))
    event = VendorEventSchema().load(crm_event("ticket-1", external_id="helpdesk:77", email=None))
    assert accept_and_decide(survey, event, "helpdesk").decision == "invited"
    assert service.get_customer(survey, "helpdesk:77").email == "jo@example.com"


# --- The staff API's use cases ------------------------------------------------------------------------


def put_fields(**fields: Any) -> dict[str, Any]:
    return CustomerPutSchema().load(fields)


def test_put_creates_then_replaces_a_customer(survey):
    created, is_new = service.put_customer(
        survey,
        "crm-7",
        put_fields(
            name="Ayşe Yılmaz",
            email=" ayse@example.com ",
            phone="+90 532 123 45 67",
            preferred_channel="sms",
            locale="tr",
            timezone="Europe/Istanbul",
            consent=True,
            attributes={"plan": "pro", "region": "emea"},
        ),
    )
    assert is_new and created.phone == "+905321234567" and created.email == "ayse@example.com"
    assert created.attributes == {"plan": "pro", "region": "emea"}

    replaced, is_new = service.put_customer(survey, "crm-7", put_fields(email="ayse@example.com"))

    assert not is_new and replaced.phone is None and replaced.attributes == {}
    assert replaced.preferred_channel == "email" and replaced.created_at == created.created_at


def test_customers_are_found_by_text_and_attribute_a_page_at_a_time(survey):
    for number, plan in ((1, "pro"), (2, "free"), (3, "pro")):
        service.put_customer(
            survey, f"crm-{number}", put_fields(name=f"Customer {number}", attributes={"plan": plan})
        )

    pros = service.list_customers(survey, attributes={"plan": "pro"}, page=1, page_size=1)
    assert pros.total == 2 and [c.external_id for c in pros.items] == ["crm-1"]
    assert [c.external_id for c in service.list_customers(survey, text="TOMER 2").items] == ["crm-2"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"phone": "0532 123 45 67"}, "phone"),
        ({"phone": "+90 5"}, "phone"),
        ({"email": "not an email"}, "email"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"preferred_channel": "fax"}, "preferred_channel"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_customer_field_is_named_never_dropped(fields, named):
    with pytest.raises(ValidationError) as refused:
        CustomerPutSchema().load(fields)
    assert set(refused.value.messages) == {named}


# --- Tolerant intake -------------------------------------------------------------------------------------


def test_fields_a_crm_adds_are_kept_in_the_events_properties():
    event = crm_event("order-1", first_name="Jane")
    event["channel_partner"] = "acme"

    loaded = CrmEventSchema().load(event)

    assert loaded["properties"] == {"order_id": "A-1001", "first_name": "Jane", "channel_partner": "acme"}
    assert "first_name" not in loaded["customer"] and "channel_partner" not in loaded


def test_the_events_own_properties_win_over_an_unknown_field_of_the_same_name():
    event = {**crm_event("order-1"), "order_id": "other"}
    assert CrmEventSchema().load(event)["properties"]["order_id"] == "A-1001"


def test_missing_or_wrong_known_fields_are_still_refused():
    event = crm_event("order-1", phone="12", first_name="Jane")
    del event["occurred_at"]
    with pytest.raises(ValidationError) as refused:
        CrmEventSchema().load(event)
    assert refused.value.messages == {
        "occurred_at": ["Missing data for required field."],
        "customer": {"phone": ["Not a phone number in international form, such as +14155550123."]},
    }


def test_the_intake_normalises_phone_numbers_as_the_customers_api_does():
    loaded = CrmEventSchema().load(crm_event("order-1", phone="+1 (555) 555-0100"))
    assert loaded["customer"]["phone"] == PHONE
