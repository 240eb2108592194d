"""The success team's queue in a real browser: sign-in, the queues, a task's page and its forms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from services.followup import service

from .conftest import ANA, BEN, MAYA, PASSWORD, StaffLogin

pytestmark = pytest.mark.browser


def sign_in(page: Page, who: StaffLogin) -> None:
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def queue_row(page: Page, customer: str):
    return page.locator("table.queue tbody tr", has_text=customer)


def test_a_stranger_opening_the_queue_is_sent_to_sign_in(page, camera):
    shoot = camera(page, "stranger")

    page.goto("/tasks")

    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Ftasks$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot("sign-in")


def test_an_agent_claims_notes_and_resolves_a_task_then_signs_out(page, camera, site):
    shoot = camera(page, "agent")
    page.goto("/tasks")
    shoot("sign-in")

    sign_in(page, ANA)

    expect(page).to_have_url(re.compile(r"/tasks$"))
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    mine = queue_row(page, "Mehmet Yılmaz")
    expect(mine.locator(".badge.overdue")).to_have_text("3 h overdue")
    expect(mine).to_contain_text("Ana Lima")
    shoot("my-tasks")

    page.get_by_role("link", name="Team", exact=True).click()
    expect(page.get_by_role("heading", name="My team's tasks")).to_be_visible()
    expect(queue_row(page, "Grace Hopper")).to_contain_text("Ben Okafor")
    shoot("team")

    page.get_by_role("link", name="Unassigned").click()
    queue_row(page, "Zoë Ångström").get_by_role("link", name="Zoë Ångström").click()
    expect(page.get_by_role("heading", name="Zoë Ångström")).to_be_visible()
    expect(page.locator("blockquote.comment")).to_have_text(
        "The parcel arrived broken and nobody answered my emails."
    )
    expect(page.get_by_role("link", name="c3@example.com")).to_have_attribute("href", "mailto:c3@example.com")
    expect(page.get_by_role("link", name="+15555550142")).to_have_attribute("href", "tel:+15555550142")
    expect(page.locator(".details")).to_contain_text("A-1042")
    expect(page.locator(".phrases")).to_contain_text("parcel arrived broken")
    shoot("task")

    page.get_by_role("button", name="Claim").click()
    expect(page.get_by_role("status")).to_have_text("You took this task.")
    expect(page.locator(".summary")).to_contain_text("In progress")
    shoot("claimed")

    page.get_by_label("Add a note").fill("Called her: a new parcel goes out today.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".timeline")).to_contain_text("Called her: a new parcel goes out today.")
    shoot("noted")

    page.get_by_text("Resolve…").click()
    page.get_by_label("Resolution").select_option(label="Contacted, resolved")
    page.get_by_label("Note", exact=True).fill("Replacement delivered; she is happy with it.")
    page.get_by_role("button", name="Resolve task").click()
    expect(page.locator(".summary")).to_contain_text("Resolved")
    last = page.locator(".timeline li.entry").last
    expect(last).to_contain_text("In progress → Resolved. Resolution: Contacted, resolved.")
    expect(last).to_contain_text("Replacement delivered; she is happy with it.")
    expect(last).to_contain_text("Ana Lima")
    shoot("resolved")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    page.goto(f"/tasks/{site.tasks['Zoë Ångström']}")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    shoot("signed-out")


def test_a_manager_assigns_a_task_to_an_agent(page, camera, site):
    shoot = camera(page, "manager")
    page.goto("/")
    sign_in(page, MAYA)

    expect(page.get_by_role("heading", name="Closeloop is running")).to_be_visible()
    shoot("home")
    page.get_by_role("link", name="Open the follow-up queue").click()
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    page.get_by_role("link", name="Unassigned").click()
    shoot("unassigned")
    queue_row(page, "Ada Lovelace").get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    shoot("task")

    page.get_by_label("Assign to").select_option(label="Ben Okafor")
    page.get_by_role("button", name="Assign").click()

    expect(page.get_by_role("status")).to_have_text("Assigned to Ben Okafor.")
    expect(page.locator(".actions")).to_contain_text("Ben Okafor (not claimed yet)")
    expect(page.locator(".timeline li.entry").last).to_contain_text("Maya Şahin")
    expect(page.locator(".timeline li.entry").last).to_contain_text("Assigned the task to Ben Okafor.")
    shoot("assigned")

    page.get_by_role("link", name="Overdue").click()
    expect(queue_row(page, "Mehmet Yılmaz").locator(".badge.overdue")).to_have_text("3 h overdue")
    shoot("overdue")
    page.get_by_role("link", name="Team", exact=True).click()
    expect(page.get_by_role("heading", name="Team queue")).to_be_visible()
    expect(page.get_by_role("group", name="Team")).to_contain_text("All teams")
    shoot("team")


def test_a_claim_lost_to_a_colleague_is_shown_as_a_conflict_on_the_task_page(page, camera, site):
    shoot = camera(page, "conflict")
    task_id = site.tasks["Linus Pauling"]
    page.goto(f"/tasks/{task_id}")
    sign_in(page, ANA)
    expect(page.get_by_role("heading", name="Linus Pauling")).to_be_visible()

    # Ben claims it while the page is open in Ana's browser.
    service.claim_task(site.followup, site.staff[BEN], task_id)
    page.get_by_role("button", name="Claim").click()

    expect(page.get_by_role("alert")).to_have_text("Ben Okafor has this task already.")
    expect(page.locator(".actions")).to_contain_text("Ben Okafor has this task.")
    expect(page.get_by_role("button", name="Claim")).to_have_count(0)
    shoot("claim-refused")
