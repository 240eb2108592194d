"""What a survey says: shipped wordings, staff's templates, the fallback, variables and the SMS budget."""

from __future__ import annotations

from typing import Any

import pytest

from services.survey import service, wording
from services.survey.domain import SURVEYED_TOUCHPOINTS
from services.survey.schemas import CrmEventSchema
from services.survey.wording import Brand, MessageTemplate, Variables, render, template_for
from shared.http import DomainError, NotFoundError
from shared.sms import sms_segments
from tests.conftest import crm_event
from tests.survey_intake import accept_and_decide

from .fakes import FakeSurveyUnitOfWork, fake_runtime

BRAND = Brand("Acme", "#aa3300")


@pytest.fixture
def uow() -> FakeSurveyUnitOfWork:
    return FakeSurveyUnitOfWork()


@pytest.fixture
def survey(uow):
    return fake_runtime(uow)


def fields(**changes: str) -> dict[str, str]:
    base = {
        "nps_question": "Hi {first_name|there}, would you recommend {brand}?",
        "follow_up_question": "Why?",
        "sms_text": "Order {order_id}: would you recommend {brand}? Reply 0-10. STOP to opt out.",
        "email_subject": "{brand} wants to know",
    }
    return {**base, **changes}


# --- the domain ---------------------------------------------------------------------------------------


def test_english_and_turkish_are_shipped_for_every_touchpoint():
    for touchpoint in SURVEYED_TOUCHPOINTS:
        for locale in ("en", "tr"):
            assert template_for(touchpoint, locale, {}).locale == locale


@pytest.mark.parametrize("locale", ["de", "de-DE", None, "", "xx_YY"])
def test_a_language_without_a_wording_falls_back_to_english(locale):
    assert template_for("purchase", locale, {}) == wording.SHIPPED_TEMPLATES[("purchase", "en")]


def test_staff_wording_wins_and_a_language_staff_added_is_used():
    german = MessageTemplate("purchase", "de", "Wie wahrscheinlich...?", "Warum?", "SMS", "Betreff")
    stored = {("purchase", "de"): german}
    assert template_for("purchase", "de-AT", stored) == german
    assert template_for("support_call", "de", stored).locale == "en"
    assert wording.survey_language("de-AT", {"de"}) == "de"
    assert wording.survey_language("de-AT", set()) == "en"
    assert wording.survey_language("tr_TR", set()) == "tr"


def test_variables_are_filled_in_and_an_empty_one_takes_its_fallback_or_nothing():
    text = "Hello {first_name}, thanks for order {order_id} at {brand}! Hi {first_name|there}."
    full = Variables("Ayşe", "Acme", "A-1")
    assert render(text, full) == "Hello Ayşe, thanks for order A-1 at Acme! Hi Ayşe."
    assert render(text, Variables(None, "Acme", None)) == "Hello, thanks for order at Acme! Hi there."


def test_variables_come_from_the_customers_first_name_and_the_invitations_order_id():
    assert wording.variables_for("Ayşe Demir", BRAND, {"order_id": 1042}) == Variables("Ayşe", "Acme", "1042")
    assert wording.variables_for(None, BRAND, {"order_id": {"x": 1}}) == Variables(None, "Acme", None)


def test_an_unknown_variable_is_refused_naming_the_field():
    problems = wording.template_problems(fields(email_subject="{brnad} asks"), BRAND, "en", 3)
    assert list(problems) == ["email_subject"] and "{brnad}" in problems["email_subject"][0]


def test_an_sms_over_the_segment_budget_is_refused_naming_the_field():
    long_sms = "Would you recommend {brand}? " * 8
    assert wording.template_problems(fields(sms_text=long_sms), BRAND, "en", 1)["sms_text"]
    assert wording.template_problems(fields(sms_text=long_sms), BRAND, "en", 2) == {}
    # One Turkish letter makes it UCS-2: the same length then needs more segments.
    turkish = "Tavsiye eder misiniz? Yanıtlayın. " * 4
    assert sms_segments(turkish) == 3
    assert "3 segments" in wording.template_problems(fields(sms_text=turkish), BRAND, "tr", 2)["sms_text"][0]


def test_the_shipped_sms_fit_the_default_budget():
    for template in wording.SHIPPED_TEMPLATES.values():
        assert (
            wording.template_problems(template.fields(), Brand("Closeloop", "#000"), template.locale, 3) == {}
        )


# --- the use cases ------------------------------------------------------------------------------------


def invite(survey, uow, **customer: Any) -> dict[str, Any]:
    event = crm_event(**customer)
    event["properties"] = {"order_id": "A-1042"}
    outcome = accept_and_decide(survey, CrmEventSchema().load(event))
    [requested] = [
        d for d in uow.emitted("invitation.requested") if d["invitation_id"] == outcome.invitation_id
    ]
    return requested


def test_a_saved_template_words_the_next_invitation_with_its_variables(survey, uow):
    service.put_template(survey, "purchase", "en", fields())

    message = invite(survey, uow, name="Jane Doe")["message"]

    assert message["question"] == "Hi Jane, would you recommend Closeloop?"
    assert message["sms_body"] == "Order A-1042: would you recommend Closeloop? Reply 0-10. STOP to opt out."
    assert message["subject"] == "Closeloop wants to know"


def test_the_brand_from_the_admin_page_replaces_the_settings_one(survey, uow):
    assert service.get_brand(survey) == {"name": "Closeloop", "color": "#1f6f5c", "is_default": True}
    service.put_brand(survey, "Acme", "#aa3300")

    requested = invite(survey, uow)
    page = service.answer_page(survey, requested["message"]["answer_url"].rsplit("/", 1)[1])

    assert "recommend Acme" in requested["message"]["question"]
    assert page.brand == Brand("Acme", "#aa3300")
    service.put_brand(survey, None, None)
    assert service.get_brand(survey)["name"] == "Closeloop"


def test_a_customer_in_a_language_staff_worded_is_asked_in_it_and_the_rest_in_english(survey, uow):
    service.put_template(survey, "purchase", "de", fields(nps_question="Würden Sie {brand} empfehlen?"))

    requested = invite(survey, uow, locale="de-DE")

    assert (
        requested["locale"] == "de" and requested["message"]["question"] == "Würden Sie Closeloop empfehlen?"
    )
    assert requested["message"]["greeting"].startswith("Hello")  # labels fall back to English


def test_template_over_budget_is_a_422_naming_sms_text_and_nothing_is_saved(survey, uow):
    with pytest.raises(DomainError) as refused:
        service.put_template(survey, "purchase", "en", fields(sms_text="x" * 500))
    assert refused.value.status == 422 and list(refused.value.errors) == ["sms_text"]
    assert uow.templates.rows == {}


def test_list_shows_shipped_and_staff_wordings_with_a_preview_and_the_segment_count(survey):
    service.put_template(survey, "purchase", "de", fields())

    listed = {(t["touchpoint"], t["locale"]): t for t in service.list_templates(survey)}

    assert len(listed) == len(SURVEYED_TOUCHPOINTS) * 2 + 1
    german = listed[("purchase", "de")]
    assert german["is_default"] is False and german["preview"]["nps_question"] == (
        "Hi Alexandra, would you recommend Closeloop?"
    )
    turkish = listed[("purchase", "tr")]
    assert (turkish["sms_encoding"], turkish["sms_segments"], turkish["sms_segments_turkish_shift"]) == (
        "UCS-2",
        3,
        2,
    )


def test_reset_returns_to_the_shipped_wording(survey):
    service.put_template(survey, "purchase", "en", fields())
    service.reset_template(survey, "purchase", "en")
    assert service.get_template(survey, "purchase", "en")["is_default"] is True
    with pytest.raises(NotFoundError):
        service.reset_template(survey, "purchase", "en")


def test_a_language_not_worded_yet_shows_englishs_wording_to_start_from(survey):
    shown = service.get_template(survey, "site_visit", "fr")
    assert shown["locale"] == "fr" and shown["is_default"] is True
    assert shown["nps_question"] == wording.SHIPPED_TEMPLATES[("site_visit", "en")].nps_question
