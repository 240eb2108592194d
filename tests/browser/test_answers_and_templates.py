"""The customer's answer page and the staff's templates page in a real browser.

A score link's page counts the click through its own script within a second (a scanner's fetch runs no
script); unknown links get a styled page in the visitor's language; managers preview and save wordings.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from services.survey.schemas import CrmEventSchema
from tests.conftest import crm_event
from tests.survey_intake import accept_and_decide

from .conftest import LAPTOP, MAYA, PASSWORD, Site

pytestmark = pytest.mark.browser


def invitation_token(site: Site, event_id: str, **customer) -> str:
    survey = site.survey
    outcome = accept_and_decide(survey, CrmEventSchema().load(crm_event(event_id, **customer)))
    with survey.unit_of_work() as uow:
        return uow.invitations.get(outcome.invitation_id).token


def answer(site: Site, token: str) -> tuple[int, str | None] | None:
    with site.survey.unit_of_work() as uow:
        invitation = uow.invitations.by_token(token)
        response = uow.responses.for_invitation(invitation.id)
        return (response.score, response.comment) if response else None


def test_a_person_clicking_a_score_link_is_counted_at_once_and_send_adds_the_comment(page, site, camera):
    shoot = camera(page, "answer")
    token = invitation_token(site, "browser-answer-1", external_id="browser-answer-1", name="Jane Doe")

    page.goto(f"/s/{token}?score=9")

    expect(page.locator("#save-status")).to_have_text(re.compile(r"Your score of 9 is saved"))
    assert answer(site, token) == (9, None)
    shoot("clicked")
    page.get_by_label(re.compile("main reason")).fill("Friendly and quick")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    assert answer(site, token) == (9, "Friendly and quick")
    shoot("thanks")


def test_a_comment_typed_without_a_score_stays_on_the_page(page, site, camera):
    shoot = camera(page, "answer-error")
    token = invitation_token(site, "browser-answer-2", external_id="browser-answer-2")

    page.goto(f"/s/{token}")
    expect(page.locator("#save-status")).to_have_text("Your score is saved when you press Send.")
    page.get_by_label(re.compile("main reason")).fill("Too slow")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("alert")).to_contain_text("0 to 10")
    expect(page.get_by_label(re.compile("main reason"))).to_have_value("Too slow")
    assert answer(site, token) is None
    shoot("missing-score")


def test_a_turkish_visitor_of_an_unknown_link_gets_a_turkish_page(browser: Browser, site, screenshots):
    context = browser.new_context(base_url=site.url, viewport=LAPTOP, locale="tr-TR")
    try:
        turkish: Page = context.new_page()
        turkish.goto("/s/no-such-token")
        expect(turkish.get_by_role("heading", name="Bağlantı bulunamadı")).to_be_visible()
        turkish.screenshot(path=screenshots / "answer-unknown-link-tr.png", full_page=True)
    finally:
        context.close()


def test_a_manager_previews_and_saves_a_turkish_wording(page, site, camera):
    shoot = camera(page, "templates")
    page.goto("/admin/templates?edit=purchase/tr")
    page.get_by_label("Email").fill(MAYA.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin/templates?edit=purchase/tr#edit")

    expect(page.get_by_role("heading", name="Survey templates")).to_be_visible()
    expect(page.get_by_label("Preview in tr")).to_contain_text("3 segments, UCS-2")
    shoot("edit")
    page.get_by_label(re.compile("^SMS text")).fill(
        "{brand}: bizi tavsiye eder misiniz? 0-10 yanitlayin. STOP"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_label("Preview in tr")).to_contain_text("1 segment, GSM-7")
    shoot("preview")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("The template purchase/tr is saved")
    shoot("saved")
