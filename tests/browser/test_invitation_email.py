"""The invitation email in Chromium at a phone's width: every score button a thumb can hit, on screen."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.dispatch import service
from shared.events import new_event
from tests.unit.dispatch.fakes import FakeDispatchUnitOfWork, fake_runtime

pytestmark = pytest.mark.browser

PHONES = {"small phone": {"width": 320, "height": 640}, "phone": {"width": 390, "height": 844}}


def invitation_email_html(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(service, "utcnow", lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    runtime = fake_runtime(FakeDispatchUnitOfWork(), brand_name="Acme Boutique", brand_color="#7b2d8e")
    invitation = new_event(
        "invitation.requested",
        {
            "invitation_id": "inv-1",
            "touchpoint": "purchase",
            "locale": "tr",
            "preferred_channel": "email",
            "contact": {"customer_id": "c-1", "name": "Ayşe", "email": "ayse@example.com"},
            "message": {
                "subject": "Nasıldık?",
                "greeting": "Merhaba Ayşe,",
                "question": "Bizi bir arkadaşınıza tavsiye etme olasılığınız nedir?",
                "low_label": "Hiç olası değil",
                "high_label": "Çok olası",
                "sms_body": "0-10",
                "answer_url": "http://survey.test/s/token",
            },
        },
    )
    service.schedule_invitation(runtime, invitation)
    [email] = runtime.email.messages
    return email.html


@pytest.mark.parametrize("device", sorted(PHONES))
def test_every_score_button_is_at_least_40_px_and_on_screen_on_a_phone(browser, monkeypatch, device):
    html = invitation_email_html(monkeypatch)
    context = browser.new_context(viewport=PHONES[device])
    try:
        page = context.new_page()
        page.set_content(html)
        boxes = [link.bounding_box() for link in page.locator("a.score").all()]
        width = PHONES[device]["width"]
        overflow = page.evaluate("document.documentElement.scrollWidth")
    finally:
        context.close()

    assert len(boxes) == 11
    assert all(box["width"] >= 40 and box["height"] >= 40 for box in boxes), boxes
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= width for box in boxes), boxes
    assert overflow <= width  # no sideways scrolling
