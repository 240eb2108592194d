"""Operating Closeloop: health and readiness probes, Prometheus metrics, request ids across services, logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from closeloop.services import SERVICES
from services.survey import service as survey_service
from services.survey.models import outbox as survey_outbox
from shared.logs import JsonLines, MaskContacts
from tests.conftest import REDIS_TEST_URL, crm_event, make_settings, migrated_service, signed_request

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=sorted(SERVICES))
def service_app(request, sqlite_url):
    name = request.param
    with migrated_service(name, make_settings(sqlite_url, broker_url=REDIS_TEST_URL)) as runtime:
        yield name, runtime, SERVICES[name].create_app(runtime)


def test_every_service_answers_healthz_and_readyz_to_anyone(service_app):
    name, _, app = service_app
    client = app.test_client()

    health = client.get("/healthz")
    ready = client.get("/readyz")

    assert health.status_code == 200 and health.get_json() == {"status": "up", "service": name}
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_is_503_naming_the_broker_that_does_not_answer(sqlite_url):
    settings = make_settings(sqlite_url, broker_url="redis://127.0.0.1:1/0")
    with migrated_service("sentiment", settings) as runtime:
        response = SERVICES["sentiment"].create_app(runtime).test_client().get("/readyz")

    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.get_json()["checks"] == {"database": "ok", "broker": "unavailable"}
    assert "127.0.0.1:1" not in response.get_data(as_text=True)


def test_readyz_is_503_when_the_database_does_not_answer(sqlite_url):
    with migrated_service("sentiment", make_settings(sqlite_url)) as runtime:
        app = SERVICES["sentiment"].create_app(runtime)
        runtime.database.engine.dispose()
        runtime.database.engine.pool._creator = _refuse  # every new connection fails
        response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"


def _refuse(*_args):
    raise OSError("database down")


def test_metrics_are_for_staff_and_count_crm_events_decisions_and_the_outbox(sqlite_url):
    with migrated_service("survey", make_settings(sqlite_url)) as runtime:
        app = SERVICES["survey"].create_app(runtime)
        client = app.test_client()
        body, headers = signed_request(crm_event())
        assert client.post("/v1/events", data=body, headers=headers).status_code == 202
        survey_service.decide_received_events(runtime)  # what survey's clock does right after the intake
        unsigned = client.post("/v1/events", json=crm_event())
        assert unsigned.status_code == 401

        stranger = client.get("/metrics")
        assert stranger.status_code == 303 and stranger.headers["Location"].startswith("/sign-in")
        _, key = runtime.identity.create_api_key("prometheus", "agent", "tests")
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})

    text = scraped.get_data(as_text=True)
    assert scraped.status_code == 200 and scraped.content_type.startswith("text/plain")
    assert 'closeloop_crm_events_total{outcome="accepted"}' in text
    assert 'closeloop_crm_events_total{outcome="refused"}' in text
    assert 'closeloop_survey_decisions_total{decision="invited",reason_code="invited"}' in text
    assert 'closeloop_outbox_backlog{service="survey"} 1.0' in text
    assert 'closeloop_outbox_oldest_age_seconds{service="survey"}' in text


def test_followup_metrics_count_open_and_overdue_tasks(sqlite_url):
    with migrated_service("followup", make_settings(sqlite_url)) as runtime:
        app = SERVICES["followup"].create_app(runtime)
        _, key = runtime.identity.create_api_key("prometheus", "agent", "tests")
        text = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {key}"}).get_data(True)

    assert 'closeloop_followup_tasks_open{service="followup"} 0.0' in text
    assert 'closeloop_followup_tasks_overdue{service="followup"} 0.0' in text


def test_the_request_id_is_answered_and_carried_into_the_events_it_causes(sqlite_url):
    with migrated_service("survey", make_settings(sqlite_url)) as runtime:
        client = SERVICES["survey"].create_app(runtime).test_client()
        body, headers = signed_request(crm_event())

        response = client.post("/v1/events", data=body, headers={**headers, "X-Request-Id": "crm-req-42"})
        # Decided by the clock, outside the request: the events still carry the request's id.
        survey_service.decide_received_events(runtime)
        made_up = client.get("/healthz", headers={"X-Request-Id": "not a token; drop table"})

        with runtime.database.transaction() as session:
            envelopes = [row.payload for row in session.execute(select(survey_outbox.c.payload))]

    assert response.headers["X-Request-Id"] == "crm-req-42"
    assert envelopes and {envelope["request_id"] for envelope in envelopes} == {"crm-req-42"}
    replaced = made_up.headers["X-Request-Id"]
    assert replaced != "not a token; drop table" and len(replaced) == 32


def test_log_lines_are_json_with_contacts_masked():
    record = logging.LogRecord(
        "closeloop",
        logging.INFO,
        __file__,
        1,
        "sent to %s and %s",
        ("jane.doe@example.com", "+14155550123"),
        None,
    )
    MaskContacts().filter(record)

    line = json.loads(JsonLines().format(record))

    assert line["message"] == "sent to j***@*** and +1***23"
    assert line["level"] == "INFO" and line["logger"] == "closeloop"


def test_in_multiprocess_mode_metrics_of_every_process_are_summed(tmp_path):
    # Each gunicorn worker, dramatiq worker or clock of a service counts in its own file under the directory;
    # whichever web process is scraped sums them. The variable must be set before prometheus_client loads.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from shared import metrics; metrics.SENDS.labels('sms', 'sent').inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, cwd=ROOT)
    scrape = "from shared import metrics; print(metrics.exposition()[0].decode())"
    text = subprocess.run(
        [sys.executable, "-c", scrape], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout

    assert 'closeloop_sends_total{channel="sms",outcome="sent"} 2.0' in text


def test_every_error_response_in_the_served_documents_is_problem_json(service_app):
    name, _, app = service_app
    document = app.test_client().get(f"/openapi/{name}.json").get_json()

    def resolve(node):
        while "$ref" in node:
            target = document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    undeclared = [
        f"{method.upper()} {path} {code}"
        for path, operations in document["paths"].items()
        # Delighted's API answers errors in Delighted's own shape, as its clients expect.
        if not path.startswith("/delighted/")
        for method, operation in operations.items()
        if isinstance(operation, dict)
        for code, response in operation.get("responses", {}).items()
        if (code == "default" or code[0] in "45")
        and list(resolve(response).get("content", {})) != ["application/problem+json"]
    ]
    assert undeclared == []
