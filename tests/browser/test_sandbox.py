"""The sandbox outbox in a real browser: a message sent while the page is open appears without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from services.dispatch.providers import OutgoingSms
from services.dispatch.sandbox import SandboxTransport

from .conftest import ANA
from .test_followup_queue import sign_in

pytestmark = pytest.mark.browser


def test_a_new_message_appears_on_the_open_sandbox_page_by_itself(page, site):
    page.goto("/sandbox")
    sign_in(page, ANA)
    page.goto("/sandbox")
    expect(page.get_by_role("heading", name="Sandbox outbox")).to_be_visible()

    # Sent while the page is open, as dispatch's sandbox transport does (every service shares the database).
    text = "Reply 0-10: how likely are you to recommend us?"
    sandbox = SandboxTransport(site.followup.database)
    sandbox.send_sms(OutgoingSms(to="+15555550199", body=text, reference="d-1"))

    expect(page.get_by_text(text)).to_be_visible(timeout=10_000)
