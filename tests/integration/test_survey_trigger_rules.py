"""Trigger rules and recorded decisions on PostgreSQL: the API, custom event types, the delayed release."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.survey import service
from services.survey.app import create_app
from services.survey.models import Invitation, outbox
from shared.clock import utcnow
from shared.principal import Role
from tests.conftest import crm_event, signed_request, staff_client
from tests.survey_intake import post_and_decide


def _post(client, event):
    body, headers = signed_request(event)
    return client.post("/v1/events", data=body, headers=headers)


def _requested_touchpoints(survey):
    with survey.database.transaction() as session:
        payloads = session.scalars(
            select(outbox.c.payload).where(outbox.c.event_type == "invitation.requested")
        ).all()
    return sorted({payload["data"]["touchpoint"] for payload in payloads})


def test_rules_are_listed_and_changed_by_managers_only(survey):
    app = create_app(survey)
    agent = staff_client(app, survey.identity, Role.AGENT)
    manager = staff_client(app, survey.identity, Role.MANAGER)

    listed = agent.get("/v1/trigger-rules")
    assert listed.status_code == 200
    assert [(r["event_type"], r["is_default"]) for r in listed.get_json()] == [
        ("purchase.completed", True),
        ("site.visited", True),
        ("support_call.ended", True),
    ]
    rule = {"touchpoint": "purchase", "delay_hours": 48}
    assert agent.put("/v1/trigger-rules/purchase.completed", json=rule).status_code == 403

    changed = manager.put("/v1/trigger-rules/purchase.completed", json=rule)

    assert changed.status_code == 200
    assert (changed.get_json()["delay_hours"], changed.get_json()["is_default"]) == (48, False)
    assert agent.get("/v1/trigger-rules/purchase.completed").get_json()["delay_hours"] == 48


def test_bad_rule_is_a_422_naming_the_field(survey):
    manager = staff_client(create_app(survey), survey.identity, Role.MANAGER)
    bad = {
        "touchpoint": "billboard",
        "sampling_rate": 1.5,
        "conditions": [{"property": "amount", "operator": "gte", "value": "lots"}],
    }

    response = manager.put("/v1/trigger-rules/purchase.completed", json=bad)

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    errors = response.get_json()["errors"]
    assert set(errors) == {"touchpoint", "sampling_rate", "conditions"}
    assert "value" in errors["conditions"]["0"]
    bad_type = manager.put("/v1/trigger-rules/Not%20A%20Type", json={"touchpoint": "purchase"})
    assert bad_type.status_code == 422 and "event_type" in bad_type.get_json()["errors"]


def test_custom_event_type_is_accepted_once_it_has_a_rule_and_its_decision_is_explained(
    survey, survey_client
):
    event = crm_event("ticket-1")
    event.update(type="ticket.solved", properties={"status": "solved"})
    assert _post(survey_client, event).status_code == 422  # no rule yet: refused as before

    rule = {
        "touchpoint": "support_call",
        "conditions": [{"property": "status", "operator": "eq", "value": "solved"}],
    }
    assert survey_client.put("/v1/trigger-rules/ticket.solved", json=rule).status_code == 200
    accepted, decision = post_and_decide(survey_client, survey, event)

    assert accepted.status_code == 202
    assert (decision["decision"], decision["reason_code"]) == ("invited", "invited")
    assert (decision["type"], decision["decision"], decision["reason"]) == (
        "ticket.solved",
        "invited",
        "support_call survey",
    )
    assert _requested_touchpoints(survey) == ["support_call"]


def test_delayed_survey_is_released_by_the_clock_and_the_customers_decisions_tell_the_story(
    survey, survey_client
):
    survey_client.put("/v1/trigger-rules/site.visited", json={"touchpoint": "site_visit", "delay_hours": 24})
    survey_client.put(
        "/v1/trigger-rules/support_call.ended",
        json={"touchpoint": "support_call", "delay_hours": 48, "priority": 5},
    )
    _, visit = post_and_decide(survey_client, survey, {**crm_event("visit-1"), "type": "site.visited"})
    _, call = post_and_decide(survey_client, survey, {**crm_event("call-2"), "type": "support_call.ended"})
    assert (visit["decision"], call["decision"]) == ("delayed", "delayed")
    due = utcnow() + timedelta(hours=49)

    assert service.invite_due_surveys(survey, now=utcnow()) == 0
    assert service.invite_due_surveys(survey, now=due) == 1
    assert service.invite_due_surveys(survey, now=due) == 0

    decisions = survey_client.get("/v1/customers/crm-42/decisions")
    assert decisions.status_code == 200
    assert [(d["external_id"], d["decision"], d["reason_code"]) for d in decisions.get_json()] == [
        ("call-2", "invited", "invited"),
        ("visit-1", "skipped", "superseded"),
    ]
    assert _requested_touchpoints(survey) == ["support_call"]
    assert survey_client.get("/v1/customers/nobody/decisions").status_code == 404
    assert survey_client.get("/v1/events/no-such-event").status_code == 404


def test_expired_invitations_answer_page_says_the_survey_closed(survey, survey_client):
    survey_client.put(
        "/v1/trigger-rules/purchase.completed", json={"touchpoint": "purchase", "invitation_expiry_days": 1}
    )
    _, outcome = post_and_decide(survey_client, survey, crm_event("order-1"))
    with survey.database.transaction() as session:
        invitation = session.get(Invitation, outcome["invitation_id"])
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        token = invitation.token

    page = survey_client.get(f"/s/{token}?score=9")
    posted = survey_client.post(f"/s/{token}", data={"score": "9"})

    assert page.status_code == 410 and b"This survey has closed" in page.data
    assert posted.status_code == 410 and b"This survey has closed" in posted.data


def test_admin_page_lists_the_rules_and_a_manager_edits_one_through_its_form(survey):
    app = create_app(survey)
    manager = staff_client(app, survey.identity, Role.MANAGER)
    agent = staff_client(app, survey.identity, Role.AGENT)

    page = agent.get("/admin/trigger-rules?edit=purchase.completed")
    assert page.status_code == 200
    assert b"support_call.ended" in page.data and b'name="delay_hours"' in page.data
    form = {
        "event_type": "purchase.completed",
        "enabled": "on",
        "touchpoint": "purchase",
        "delay_hours": "48",
        "quarantine_after_invitation_days": "30",
        "quarantine_after_answer_days": "",
        "priority": "2",
        "sampling_rate": "0.5",
        "max_event_age_days": "7",
        "invitation_expiry_days": "14",
        "conditions": 'amount gte 100\nstatus eq "paid"',
    }
    assert agent.post("/admin/trigger-rules", data=form).status_code == 403

    saved = manager.post("/admin/trigger-rules", data=form)

    assert saved.status_code == 303
    rule = manager.get("/v1/trigger-rules/purchase.completed").get_json()
    assert (rule["delay_hours"], rule["priority"], rule["sampling_rate"], rule["invitation_expiry_days"]) == (
        48,
        2,
        0.5,
        14,
    )
    assert rule["conditions"] == [
        {"property": "amount", "operator": "gte", "value": 100},
        {"property": "status", "operator": "eq", "value": "paid"},
    ]
    assert b"The rule for purchase.completed is saved" in manager.get(saved.headers["Location"]).data


def test_admin_form_with_a_bad_value_is_shown_again_naming_the_field(survey):
    manager = staff_client(create_app(survey), survey.identity, Role.MANAGER)
    form = {
        "event_type": "site.visited",
        "touchpoint": "site_visit",
        "sampling_rate": "2",
        "conditions": "amount",
    }

    response = manager.post("/admin/trigger-rules", data=form)

    assert response.status_code == 422
    assert b"The rule was not saved" in response.data and b"conditions" in response.data
    assert manager.get("/v1/trigger-rules/site.visited").get_json()["is_default"] is True
