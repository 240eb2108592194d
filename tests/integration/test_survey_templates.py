"""Message templates and the brand on PostgreSQL: the staff API, the admin page, and what customers see."""

from __future__ import annotations

from sqlalchemy import select

from services.survey.app import create_app
from services.survey.models import outbox
from shared.principal import Role
from tests.conftest import crm_event, staff_client
from tests.survey_intake import post_and_decide

WORDING = {
    "nps_question": "{first_name|Hello}, would you recommend {brand} after order {order_id}?",
    "follow_up_question": "What made the difference?",
    "sms_text": "{brand}: would you recommend us? Reply 0-10. STOP to opt out.",
    "email_subject": "A question from {brand}",
}


def clients(survey):
    app = create_app(survey)
    return staff_client(app, survey.identity, Role.MANAGER), staff_client(app, survey.identity, Role.AGENT)


def invite(client, survey, **customer):
    event = crm_event(**customer)
    event["properties"] = {"order_id": "A-77"}
    _, decision = post_and_decide(client, survey, event)
    assert decision["decision"] == "invited"


def latest_invitation(survey):
    with survey.database.transaction() as session:
        payloads = session.scalars(
            select(outbox.c.payload).where(outbox.c.event_type == "invitation.requested")
        ).all()
    return payloads[-1]["data"]


def test_templates_are_listed_for_staff_and_changed_by_managers_only(survey):
    manager, agent = clients(survey)

    listed = agent.get("/v1/templates").get_json()
    assert {(t["touchpoint"], t["locale"]) for t in listed} >= {("purchase", "en"), ("purchase", "tr")}
    assert agent.put("/v1/templates/purchase/en", json=WORDING).status_code == 403

    saved = manager.put("/v1/templates/purchase/en", json=WORDING)

    assert saved.status_code == 200 and saved.get_json()["is_default"] is False
    assert agent.get("/v1/templates/purchase/en").get_json()["email_subject"] == "A question from {brand}"
    assert manager.delete("/v1/templates/purchase/en").status_code == 204
    assert agent.get("/v1/templates/purchase/en").get_json()["is_default"] is True


def test_a_template_over_the_sms_budget_is_a_422_naming_the_field(survey):
    manager, _ = clients(survey)

    refused = manager.put("/v1/templates/purchase/tr", json={**WORDING, "sms_text": "Teşekkürler! " * 20})

    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert list(refused.get_json()["errors"]) == ["sms_text"]
    assert "segments" in refused.get_json()["errors"]["sms_text"][0]


def test_bad_template_input_is_a_422_naming_the_field(survey):
    manager, _ = clients(survey)
    assert "touchpoint" in manager.put("/v1/templates/nowhere/en", json=WORDING).get_json()["errors"]
    assert "locale" in manager.put("/v1/templates/purchase/eng", json=WORDING).get_json()["errors"]
    missing = manager.put("/v1/templates/purchase/en", json={"nps_question": "x"})
    assert missing.status_code == 422 and "sms_text" in missing.get_json()["errors"]
    nul = manager.put("/v1/templates/purchase/en", json={**WORDING, "email_subject": "a\x00b"})
    assert nul.status_code == 422 and "email_subject" in nul.get_json()["errors"]
    assert manager.put("/v1/brand", json={"color": "red; x"}).status_code == 422


def test_customers_see_the_wording_and_the_brand_with_their_name_escaped(survey):
    manager, agent = clients(survey)
    manager.put("/v1/templates/purchase/en", json=WORDING)
    manager.put("/v1/brand", json={"name": "Acme & Sons", "color": "#aa3300"})

    invite(agent, survey, name="<img src=x onerror=alert(1)> Doe")
    invitation = latest_invitation(survey)
    page = agent.get(invitation["message"]["answer_url"].replace("http://testserver", "")).get_data(
        as_text=True
    )

    assert invitation["message"]["subject"] == "A question from Acme & Sons"
    assert "<img src=x" not in page
    assert "&lt;img, would you recommend Acme &amp; Sons after order A-77?" in page
    assert "What made the difference?" in page and "--accent: #aa3300" in page


def test_the_admin_page_previews_a_wording_per_language_and_saves_it(survey):
    manager, agent = clients(survey)

    page = agent.get("/admin/templates?edit=purchase/tr")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert (
        "Preview in en" in html and "3 segments, UCS-2" in html and "2 with the Turkish shift table" in html
    )

    form = {"touchpoint": "purchase", "locale": "tr", **WORDING, "action": "preview"}
    assert agent.post("/admin/templates", data=form).status_code == 403
    preview = manager.post("/admin/templates", data=form)
    assert preview.status_code == 200 and "Alexandra" not in preview.get_data(as_text=True)
    assert "Ayşegül, would you recommend Closeloop after order 100234567?" in preview.get_data(as_text=True)
    assert (
        manager.get("/v1/templates/purchase/tr").get_json()["is_default"] is True
    )  # a preview saves nothing

    saved = manager.post("/admin/templates", data={**form, "action": "save"})
    assert saved.status_code == 303
    assert manager.get("/v1/templates/purchase/tr").get_json()["is_default"] is False

    over = manager.post("/admin/templates", data={**form, "action": "save", "sms_text": "ş" * 300})
    assert over.status_code == 422 and 'id="sms_text-error"' in over.get_data(as_text=True)


def test_the_brand_is_set_on_the_admin_page(survey):
    manager, _ = clients(survey)
    assert manager.post("/admin/brand", data={"name": "Acme", "color": "#123"}).status_code == 303
    assert manager.get("/v1/brand").get_json() == {"name": "Acme", "color": "#123", "is_default": False}
    refused = manager.post("/admin/brand", data={"name": "Acme", "color": "blue"})
    assert refused.status_code == 422 and "Brand colour" in refused.get_data(as_text=True)
