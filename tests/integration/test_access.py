"""Every route of every app, walked as a stranger: only the routes meant for customers, CRM systems and
providers are open (each checks its own token or signature); everything else is for staff and machines."""

from __future__ import annotations

import base64
import re

import pytest
from flask import Flask

from closeloop.home import create_home_app
from closeloop.system import build_system
from shared.principal import Role
from tests.conftest import make_settings

# (app, endpoint): why a stranger may reach it.
OPEN_ROUTES = {
    ("services.survey.app", "events.CrmEvents"): "CRM events, signed with the Standard Webhooks scheme",
    ("services.survey.app", "events.SourceCrmEvents"): "a named source's CRM events, signed with its secret",
    ("services.survey.app", "events.ShopifyOrders"): "a Shopify source's order webhooks, signed by Shopify",
    ("services.survey.app", "events.ZendeskEvents"): "a Zendesk source's webhooks, signed by Zendesk",
    ("services.survey.app", "answers.show_answer_page"): "the customer's answer page, by its token",
    ("services.survey.app", "answers.submit_answer_page"): "the customer's answer page, by its token",
    ("services.survey.app", "answers.record_score_click"): "the answer page's own script, by its token",
    ("services.survey.app", "answers.confirm_score_click"): "the answer page's own script, by its token",
    ("services.dispatch.app", "webhooks.twilio_inbound_sms"): "signed by Twilio",
    ("services.dispatch.app", "webhooks.twilio_status"): "signed by Twilio",
    ("services.dispatch.app", "webhooks.sendgrid_events"): "signed by SendGrid",
    ("services.dispatch.app", "pages.unsubscribe_page"): "the customer's unsubscribe page, by its token",
    ("services.dispatch.app", "pages.unsubscribe"): "the customer's unsubscribe link (RFC 8058)",
    ("services.followup.app", "identity.sign_in"): "signing in",
    ("services.followup.app", "pages.follow_referral_link"): "a promoter's referral link, by its code",
    **{
        ("services.survey.app", f"delighted.{view}{suffix}"): "Delighted's API: Basic auth with an API key"
        for view in (
            "People",
            "Person",
            "PendingSurveyRequests",
            "SurveyResponses",
            "SurveyResponse",
            "Metrics",
            "Unsubscribes",
            "Bounces",
        )
        for suffix in ("", "Json")
        if (view, suffix) not in {("Person", "Json"), ("SurveyResponse", "Json")}
    },
    **{
        (f"services.{service}.app", f"operations.{probe}"): "a load balancer's or orchestrator's probe"
        for service in ("survey", "dispatch", "sentiment", "followup")
        for probe in ("healthz", "readyz")
    },
}
DOCUMENTS = re.compile(r"(^|\.)static$|^api-docs\.")  # static files and the OpenAPI documents


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('access')}/closeloop.db")
    system = build_system(settings)
    home = create_home_app(settings, system.runtimes["followup"].identity)
    yield system, [home, *system.apps.values()]
    system.stop()


def _routes(app: Flask):
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def _refused_as_a_stranger(response) -> bool:
    if response.status_code == 401:
        return "Bearer" in response.headers.get("WWW-Authenticate", "")  # the guard's, not a signature's
    return response.status_code == 303 and response.headers["Location"].startswith("/sign-in")


def test_a_stranger_reaches_only_the_open_routes(apps):
    _, all_apps = apps
    left_open, walked = set(), 0
    for app in all_apps:
        client = app.test_client()
        for endpoint, method, path in _routes(app):
            if DOCUMENTS.search(endpoint):
                continue
            walked += 1
            if not _refused_as_a_stranger(client.open(path, method=method)):
                left_open.add((app.name, endpoint))
    assert walked > 30
    assert left_open == set(OPEN_ROUTES)


def test_a_json_route_answers_a_stranger_401_problem_and_a_page_sends_to_sign_in(apps):
    system, _ = apps
    tasks = system.apps["followup"].test_client().get("/v1/tasks")
    assert tasks.status_code == 401 and tasks.mimetype == "application/problem+json"
    sandbox = system.apps["dispatch"].test_client().get("/sandbox")
    assert sandbox.status_code == 303 and sandbox.headers["Location"] == "/sign-in?next=%2Fsandbox"


def test_an_agent_is_refused_the_admins_pages(apps):
    system, _ = apps
    identity = system.runtimes["followup"].identity
    _, key = identity.create_api_key("agent robot", Role.AGENT, "tests")
    client = system.apps["followup"].test_client()
    agent = {"Authorization": f"Bearer {key}"}

    assert client.get("/v1/tasks", headers=agent).status_code == 200
    assert client.get("/api-keys", headers=agent).status_code == 403


def test_a_revoked_key_opens_nothing(apps):
    system, _ = apps
    identity = system.runtimes["followup"].identity
    record, key = identity.create_api_key("short-lived", Role.ADMIN, "tests")
    identity.revoke_api_key(record.id)

    client = system.apps["dispatch"].test_client()
    assert client.get("/sandbox", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_the_api_documents_say_which_operations_are_open(apps):
    system, _ = apps
    documented_open = {
        (method.upper(), path)
        for name, app in system.apps.items()
        for path, operations in app.test_client().get(f"/openapi/{name}.json").get_json()["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and operation.get("security") == []
    }
    assert documented_open == {
        ("POST", "/v1/events"),
        ("POST", "/v1/sources/{source}/events"),
        ("POST", "/v1/sources/{source}/shopify"),
        ("POST", "/v1/sources/{source}/zendesk"),
        ("POST", "/webhooks/twilio/sms"),
        ("POST", "/webhooks/twilio/status"),
        ("POST", "/webhooks/sendgrid/events"),
    }


def test_the_delighted_api_answers_a_stranger_401_in_delighted_shape(apps):
    system, _ = apps
    app = system.apps["survey"]
    client = app.test_client()
    walked = 0
    for endpoint, method, path in _routes(app):
        if not endpoint.startswith("delighted."):
            continue
        walked += 1
        for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"clk_not_a_key:").decode()}):
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 401, (method, path)
            assert response.get_json() == {"status": 401, "message": "Invalid API key."}
            assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert walked >= 14
