"""The outbound webhooks' API and admin pages on the in-memory unit of work: payloads, refusals (422 naming
the field, 403 for everyone but admins), the secret shown once, the delivery log and "send again"."""

from __future__ import annotations

import html
import re

import pytest

from services.followup import service
from services.followup.app import create_app
from services.followup.providers import HttpAnswer
from shared.settings import Settings
from tests.fakes import ROBOT, bearer

from .fakes import CRM_ADDRESS, CRM_HOST, FakeWebhookSender, fake_runtime
from .support import ANA, MAYA, scored, the_task

PROBLEM = "application/problem+json"
CRM_URL = f"https://{CRM_HOST}/closeloop"


@pytest.fixture
def sender() -> FakeWebhookSender:
    return FakeWebhookSender({CRM_HOST: [CRM_ADDRESS], "localhost": ["127.0.0.1", "::1"]})


@pytest.fixture
def runtime(uow, sender):
    return fake_runtime(uow, sender)


@pytest.fixture
def client(runtime):
    """Requests come from a test robot, an admin's API key, unless a test names someone else."""
    client = create_app(runtime).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer()["Authorization"]
    return client


def register(client, url=CRM_URL, event_types=("followup.opened",), **extra):
    return client.post("/v1/webhook-endpoints", json={"url": url, "event_types": list(event_types), **extra})


# --- The API ---------------------------------------------------------------------------------------------


def test_registering_an_endpoint_answers_its_secret_once(client):
    created = register(client, event_types=["followup.resolved", "followup.opened"], description="The CRM")

    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_")
    assert (body["url"], body["description"], body["enabled"]) == (CRM_URL, "The CRM", True)
    assert body["event_types"] == ["followup.opened", "followup.resolved"]
    assert body["disabled_reason"] is None and body["created_by"] == ROBOT.name

    listed = client.get("/v1/webhook-endpoints")
    shown = client.get(f"/v1/webhook-endpoints/{body['id']}")
    assert [endpoint["id"] for endpoint in listed.get_json()] == [body["id"]]
    assert "secret" not in listed.get_json()[0] and "secret" not in shown.get_json()
    assert body["secret"] not in listed.get_data(as_text=True) + shown.get_data(as_text=True)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"url": CRM_URL, "event_types": ["followup.exploded"]}, "event_types", "Must be one of"),
        ({"url": CRM_URL, "event_types": []}, "event_types", "Length must be"),
        ({"url": "ftp://crm.example.com/in", "event_types": ["followup.opened"]}, "url", "https://"),
        ({"url": "http://127.0.0.1:8000/in", "event_types": ["followup.opened"]}, "url", "loopback"),
        ({"url": "http://[::1]/in", "event_types": ["followup.opened"]}, "url", "loopback"),
        (
            {"url": "http://169.254.169.254/latest", "event_types": ["followup.opened"]},
            "url",
            "cloud metadata",
        ),
        (
            {"url": "http://localhost:8000/in", "event_types": ["followup.opened"]},
            "url",
            "resolves to 127.0.0.1",
        ),
        ({"url": "http://10.0.0.8/in", "event_types": ["followup.opened"]}, "url", "private"),
        ({"url": "https://crm\x00.example.com", "event_types": ["followup.opened"]}, "url", "NUL"),
        ({"event_types": ["followup.opened"]}, "url", "Missing data"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, uow, payload, field, words):
    response = client.post("/v1/webhook-endpoints", json=payload)

    assert response.status_code == 422 and response.mimetype == PROBLEM
    errors = response.get_json()["errors"]
    assert list(errors) == [field] and words in str(errors[field])
    assert uow.webhook_endpoints.rows == {}


def test_private_addresses_are_registered_when_the_settings_allow_them(uow, sender):
    client = create_app(fake_runtime(uow, sender, webhooks_allow_private=True)).test_client()

    response = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://localhost:8000/in", "event_types": ["followup.opened"]},
        headers=bearer(),
    )

    assert response.status_code == 201


@pytest.mark.parametrize("who", [ANA, MAYA])
def test_only_admins_reach_the_webhooks_api(client, runtime, who):
    endpoint = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"])

    for method, path in [
        ("GET", "/v1/webhook-endpoints"),
        ("POST", "/v1/webhook-endpoints"),
        ("GET", f"/v1/webhook-endpoints/{endpoint.id}"),
        ("DELETE", f"/v1/webhook-endpoints/{endpoint.id}"),
        ("POST", f"/v1/webhook-endpoints/{endpoint.id}/disable"),
        ("GET", f"/v1/webhook-endpoints/{endpoint.id}/deliveries"),
        ("POST", "/v1/webhook-deliveries/x/resend"),
    ]:
        response = client.open(path, method=method, headers=bearer(who), json={})
        assert response.status_code == 403, (method, path)
    assert endpoint.enabled


def test_disabling_and_enabling_an_endpoint_shows_who_and_when(client):
    endpoint_id = register(client).get_json()["id"]

    disabled = client.post(f"/v1/webhook-endpoints/{endpoint_id}/disable").get_json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, f"Disabled by {ROBOT.name}.")
    assert disabled["disabled_at"] is not None

    enabled = client.post(f"/v1/webhook-endpoints/{endpoint_id}/enable").get_json()
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["disabled_at"]) == (True, None, None)


def test_deleting_an_endpoint_answers_204_and_then_404(client):
    endpoint_id = register(client).get_json()["id"]

    assert client.delete(f"/v1/webhook-endpoints/{endpoint_id}").status_code == 204
    missing = client.get(f"/v1/webhook-endpoints/{endpoint_id}")
    assert missing.status_code == 404 and missing.mimetype == PROBLEM


def test_the_delivery_log_shows_status_answer_attempts_and_next_attempt(client, runtime, uow, sender):
    endpoint_id = register(client).get_json()["id"]
    service.act_on_scored_response(runtime, scored(2))
    sender.answers = [HttpAnswer(500, b"<html>" + b"oops " * 200)]
    service.send_due_webhooks(runtime)

    response = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries")

    assert response.status_code == 200
    [delivery] = response.get_json()
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == (
        "followup.opened",
        "scheduled",
        1,
    )
    assert (delivery["kind"], delivery["endpoint_id"], delivery["response_status"]) == (
        "webhook",
        endpoint_id,
        500,
    )
    assert delivery["last_error"] == "The receiver answered HTTP 500." and delivery["next_attempt_at"]
    assert delivery["response_body"].startswith("<html>oops") and len(delivery["response_body"]) <= 256
    assert delivery["message_id"].startswith("msg_") and "payload" not in delivery
    assert client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=0").status_code == 422
    assert client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries?size=3").status_code == 422
    assert client.get("/v1/webhook-endpoints/nope/deliveries").status_code == 404


def test_sending_again_answers_the_delivery_that_will_go_out(client, runtime, uow):
    endpoint_id = register(client).get_json()["id"]
    service.act_on_scored_response(runtime, scored(2))
    service.send_due_webhooks(runtime)
    [first] = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries").get_json()

    again = client.post(f"/v1/webhook-deliveries/{first['id']}/resend")

    assert again.status_code == 202
    body = again.get_json()
    assert (body["status"], body["resent_from"], body["message_id"]) == (
        "scheduled",
        first["id"],
        first["message_id"],
    )
    client.post(f"/v1/webhook-endpoints/{endpoint_id}/disable")
    refused = client.post(f"/v1/webhook-deliveries/{first['id']}/resend")
    assert refused.status_code == 409 and refused.mimetype == PROBLEM
    assert client.post("/v1/webhook-deliveries/nope/resend").status_code == 404


def test_the_openapi_document_describes_the_webhooks_api(client):
    document = client.get("/openapi/followup.json").get_json()

    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/v1/webhook-endpoints"])
    assert "delete" in paths["/v1/webhook-endpoints/{endpoint_id}"]
    assert "post" in paths["/v1/webhook-deliveries/{delivery_id}/resend"]
    created = paths["/v1/webhook-endpoints"]["post"]
    assert {"201", "403", "422"} <= set(created["responses"])
    schemas = document["components"]["schemas"]
    assert "secret" in schemas["NewWebhookEndpointAnswer"]["properties"]
    assert "secret" not in schemas["WebhookEndpoint"]["properties"]
    event_types = schemas["NewWebhookEndpoint"]["properties"]["event_types"]["items"]["enum"]
    assert "referral.converted" in event_types


def test_the_webhook_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "CLOSELOOP_WEBHOOKS_ALLOW_PRIVATE": "true",
            "FOLLOWUP_ALERT_WEBHOOK_URL": "https://hooks.slack.com/x",
        }
    )

    assert settings.webhooks_allow_private is True
    assert settings.followup_alert_webhook_url == "https://hooks.slack.com/x"
    assert Settings.from_env({}).webhooks_allow_private is False
    assert Settings.from_env({}).followup_alert_webhook_url is None
    with pytest.raises(ValueError, match="CLOSELOOP_WEBHOOKS_ALLOW_PRIVATE"):
        Settings.from_env({"CLOSELOOP_WEBHOOKS_ALLOW_PRIVATE": "maybe"})


# --- The admin pages -------------------------------------------------------------------------------------


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_every_form_on_the_webhooks_pages_carries_a_csrf_token(client, runtime, uow):
    endpoint = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"])
    service.act_on_scored_response(runtime, scored(2))

    for path in ("/webhooks", f"/webhook-endpoints/{endpoint.id}"):
        body = client.get(path).get_data(as_text=True)
        forms = re.findall(r"<form\b.*?</form>", body, flags=re.S)
        assert forms and all('name="csrf_token"' in form for form in forms), path


def test_the_webhooks_page_lists_the_endpoints_with_their_state(client, runtime):
    enabled = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"], "The CRM")
    disabled = service.create_webhook_endpoint(
        runtime, ROBOT, "https://93.184.216.34/in", ["referral.requested"]
    )
    service.disable_webhook_endpoint(runtime, ROBOT, disabled.id)

    response = client.get("/webhooks")

    text = page(response)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert CRM_URL in text and "The CRM" in text and "https://93.184.216.34/in" in text
    assert f"Disabled by {ROBOT.name}." in text and "Enabled" in text
    assert enabled.secret not in text and disabled.secret not in text
    assert "FOLLOWUP_ALERT_WEBHOOK_URL" in text  # alerts are off here, and the page says how to turn them on


def test_adding_an_endpoint_on_the_page_shows_its_secret_once(client, uow):
    response = client.post(
        "/webhooks", data={"url": CRM_URL, "event_types": ["followup.opened", "response.scored"]}
    )

    assert response.status_code == 201
    [endpoint] = uow.webhook_endpoints.rows.values()
    assert endpoint.secret in page(response) and endpoint.event_types == [
        "followup.opened",
        "response.scored",
    ]
    assert endpoint.secret not in page(client.get("/webhooks"))


def test_a_refused_endpoint_on_the_page_says_why_and_keeps_what_was_typed(client, uow):
    response = client.post(
        "/webhooks", data={"url": "http://localhost:9000/in", "event_types": ["followup.opened"]}
    )

    text = page(response)
    assert response.status_code == 422 and "resolves to 127.0.0.1" in text
    assert 'value="http://localhost:9000/in"' in text and uow.webhook_endpoints.rows == {}
    missing = client.post("/webhooks", data={"url": CRM_URL})
    assert missing.status_code == 400 and "Event types" in page(missing)


def test_an_endpoint_page_shows_its_log_and_sends_a_delivery_again(client, runtime, uow, sender):
    endpoint = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"])
    service.act_on_scored_response(runtime, scored(2))
    sender.answers = [HttpAnswer(502, b"Bad gateway")]
    service.send_due_webhooks(runtime)
    [delivery] = uow.webhook_deliveries.rows.values()

    text = page(client.get(f"/webhook-endpoints/{endpoint.id}"))
    assert "followup.opened" in text and "HTTP 502" in text and "Bad gateway" in text and "Waiting" in text
    assert "Send again" in text

    sent = client.post(f"/webhook-deliveries/{delivery.id}/resend", data={"endpoint_id": endpoint.id})
    assert sent.status_code == 303 and sent.headers["Location"] == f"/webhook-endpoints/{endpoint.id}"
    assert service.send_due_webhooks(runtime) == 1 and delivery.status == "delivered"


def test_an_endpoint_disabled_after_its_failures_says_so_on_its_page(client, runtime, uow):
    endpoint = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"])
    reason = "Disabled automatically: a followup.opened delivery failed 12 times over about a day."
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, endpoint.created_at

    text = page(client.get(f"/webhook-endpoints/{endpoint.id}"))

    assert reason in text and endpoint.created_at.strftime("%d %b %Y, %H:%M UTC") in text
    assert ">Enable</button>" in text


def test_disabling_enabling_and_deleting_from_the_pages(client, runtime, uow):
    endpoint = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"])

    disabled = client.post(f"/webhook-endpoints/{endpoint.id}/disable")
    assert disabled.status_code == 303 and endpoint.enabled is False
    client.post(f"/webhook-endpoints/{endpoint.id}/enable")
    assert endpoint.enabled is True
    deleted = client.post(f"/webhook-endpoints/{endpoint.id}/delete")
    assert deleted.status_code == 303 and deleted.headers["Location"] == "/webhooks"
    assert uow.webhook_endpoints.rows == {}
    assert client.get(f"/webhook-endpoints/{endpoint.id}").status_code == 404


def test_agents_and_managers_are_refused_the_webhooks_pages(client, runtime):
    endpoint = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened"])

    for who in (ANA, MAYA):
        assert client.get("/webhooks", headers=bearer(who)).status_code == 403
        assert (
            client.post(f"/webhook-endpoints/{endpoint.id}/disable", headers=bearer(who)).status_code == 403
        )
        assert "Webhooks</a>" not in client.get("/tasks", headers=bearer(who)).get_data(as_text=True)
    assert endpoint.enabled
    assert "Webhooks</a>" in client.get("/tasks").get_data(as_text=True)  # an admin's navigation has it


def test_the_alerts_log_is_on_the_webhooks_page_with_the_alert_host_only(uow, sender):
    sender.addresses["hooks.slack.example"] = ["93.184.216.40"]
    runtime = fake_runtime(
        uow, sender, followup_alert_webhook_url="https://hooks.slack.example/services/T/B/SECRET"
    )
    client = create_app(runtime).test_client()
    service.act_on_scored_response(runtime, scored(1, comment="Awful"))

    text = page(client.get("/webhooks", headers=bearer()))

    assert "hooks.slack.example" in text and "SECRET" not in text
    assert "followup.opened" in text and "Send again" in text
    assert the_task(uow).priority == "high"
