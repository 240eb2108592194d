"""The NPS dashboard in a real browser: twelve weeks of answers at a glance, charts drawn by the server."""

from __future__ import annotations

import random
import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from services.survey.analytics import service as analytics
from services.survey.analytics.domain import nps_margin_of_error
from services.survey.models import Customer, Invitation, Response, ResponseKeyPhrase, ResponseSentiment
from shared.clock import utcnow
from shared.nps import nps_summary

from .conftest import MAYA, PASSWORD

pytestmark = pytest.mark.browser

TOUCHPOINTS = ("purchase", "support_call", "site_visit")
PLANS = ("free", "pro", "team")
DETRACTOR_PHRASES = ("late delivery", "long wait", "rude agent", "broken parcel", "no reply", "hidden fees")


def seed_answers(survey, days: int = 84, invitations: int = 420) -> list[int]:
    """Answers over the last ``days`` days (one in three invitations unanswered); returns the scores."""
    rng = random.Random(15)
    now = utcnow()
    scores = []
    with survey.database.transaction() as session:
        customer = Customer(
            id=str(uuid.uuid4()),
            external_id="crm-dashboard",
            email=None,
            phone=None,
            name="Dashboard",
            locale="en",
            timezone=None,
            preferred_channel="email",
            properties={},
            created_at=now,
            updated_at=now,
        )
        session.add(customer)
        session.flush()
        for number in range(invitations):
            # A day or more ago, so that the answer 20 minutes later is before today: the page shows up to
            # yesterday, leaving out what other tests on the same site answer today.
            sent = now - timedelta(days=1 + rng.randrange(days - 1), hours=1 + rng.randrange(2))
            touchpoint = rng.choice(TOUCHPOINTS)
            plan = rng.choice(PLANS)
            invitation = Invitation(
                id=str(uuid.uuid4()),
                token=uuid.uuid4().hex,
                customer_id=customer.id,
                crm_event_id=None,
                follows_up_response_id=None,
                touchpoint=touchpoint,
                locale="en",
                properties={"plan": plan, "region": rng.choice(("eu", "us"))},
                created_at=sent,
                expires_at=None,
            )
            session.add(invitation)
            session.flush()
            if number % 3 == 0:
                continue
            # Support calls do worse than purchases; the team plan best: something to see in the charts.
            base = {"purchase": 8.4, "support_call": 6.2, "site_visit": 7.4}[touchpoint] + (plan == "team")
            score = max(0, min(10, round(rng.gauss(base, 2.4))))
            scores.append(score)
            commented = rng.random() < 0.7
            response = Response(
                id=str(uuid.uuid4()),
                invitation_id=invitation.id,
                customer_id=customer.id,
                score=score,
                comment="A comment." if commented else None,
                channel="sms" if rng.random() < 0.35 else "email",
                revision=1,
                submitted_at=sent + timedelta(minutes=20),
                updated_at=sent + timedelta(minutes=20),
            )
            session.add(response)
            session.flush()
            if not commented:
                continue
            label = (
                "negative"
                if score <= 5
                else "positive"
                if score >= 9
                else rng.choice(("neutral", "positive"))
            )
            session.add(
                ResponseSentiment(
                    response_id=response.id,
                    revision=1,
                    label=label,
                    polarity=0.0,
                    language="en",
                    scored_at=now,
                )
            )
            if score <= 6:
                phrases = {rng.choice(DETRACTOR_PHRASES[: 2 + rng.randrange(5)]) for _ in range(2)}
                session.add_all(ResponseKeyPhrase(response_id=response.id, phrase=p) for p in phrases)
    return scores


def sign_in(page: Page) -> None:
    page.get_by_label("Email").fill(MAYA.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_manager_reads_nps_over_time_by_touchpoint_channel_and_plan(page, camera, site):
    scores = seed_answers(site.survey)
    # Written with past times, as an import of old answers would be: counted by a rebuild, not a refresh.
    analytics.rebuild_rollup(site.survey)
    summary = nps_summary(scores)
    margin = nps_margin_of_error(summary.promoters, summary.detractors, summary.responses)
    shoot = camera(page, "nps")

    today = utcnow().date()
    dashboard = f"/admin/nps?from={today - timedelta(days=90)}&to={today - timedelta(days=1)}"
    page.goto(dashboard)
    sign_in(page)
    page.goto(dashboard)

    expect(page).to_have_url(re.compile(r"/admin/nps\?"))
    expect(page.get_by_role("heading", name="Net Promoter Score")).to_be_visible()
    # The figures the page shows are those of the answers put in, computed apart from the database.
    expect(page.locator("#nps-figure")).to_have_text(f"{summary.nps:+.1f} ±{margin:.1f}")
    expect(page.locator("#responses-figure")).to_have_text(str(summary.responses))
    expect(page.locator("#rate-figure")).to_have_text(f"{100 * summary.responses / 420:.1f}%")
    for title in (
        "NPS by week",
        "NPS by touchpoint",
        "NPS by channel",
        "NPS by plan",
        "Top key phrases of detractors",
        "Sentiment of the comments",
        "Response rate by touchpoint",
    ):
        expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(9)
    expect(page.locator(".card", has_text="Top key phrases of detractors")).to_contain_text("late delivery")
    expect(page.locator(".card", has_text="NPS by touchpoint")).to_contain_text("Support call")
    shoot("dashboard")

    page.get_by_label("Period").select_option("month")
    page.get_by_label("Segment").select_option("region")
    page.get_by_role("button", name="Show").click()

    expect(page.get_by_role("heading", name="NPS by month")).to_be_visible()
    expect(page.get_by_role("heading", name="NPS by region")).to_be_visible()
    shoot("by-month-and-region")
