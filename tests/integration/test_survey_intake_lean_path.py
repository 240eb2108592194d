"""The intake's lean path (issue 19) answers as the documented view does, keeps the request id and the
metrics, and its memory of recent events never answers for an event that was not stored."""

from __future__ import annotations

import base64
import uuid

import pytest
from sqlalchemy import func, select

from services.survey import api, unit_of_work
from services.survey.app import create_app as survey_app
from services.survey.models import CrmEvent
from services.survey.unit_of_work import SqlSurveyUnitOfWork
from shared import metrics
from shared.clock import utcnow
from shared.settings import Settings
from tests.conftest import crm_event, make_settings, migrated_service, signed_request


def _post(client, event, path="/v1/events", **headers):
    body, signed = signed_request(event)
    return client.post(path, data=body, headers={**signed, **headers})


def _stored(runtime) -> int:
    with runtime.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(CrmEvent))


def _answer(response) -> tuple:
    """Everything a CRM sees of an answer, but the ids that differ from one event to the next."""
    event_id = response.get_json()["event_id"]
    headers = sorted(
        (name, value.replace(event_id, "ID"))
        for name, value in response.headers.items()
        if name not in ("X-Request-Id",)
    )
    return response.status_code, response.get_data(as_text=True).replace(event_id, "ID"), headers


def test_the_lean_path_answers_as_the_documented_view(survey, monkeypatch):
    client = survey_app(survey).test_client()
    lean_new, lean_repeat = _post(client, crm_event("lean")), _post(client, crm_event("lean"))
    monkeypatch.setattr(api, "_lean_intake", lambda source: None)  # flask-smorest and webargs, as before
    documented_new, documented_repeat = _post(client, crm_event("doc")), _post(client, crm_event("doc"))

    assert _answer(lean_new) == _answer(documented_new)
    assert _answer(lean_repeat) == _answer(documented_repeat)
    assert [lean_new.status_code, lean_repeat.status_code] == [202, 200]
    assert _stored(survey) == 2


def test_a_refused_event_is_answered_by_the_documented_view_with_its_field_errors(survey, monkeypatch):
    client = survey_app(survey).test_client()
    event = crm_event(timezone="Mars/Olympus")
    event["id"] = ""
    lean = _post(client, event)
    monkeypatch.setattr(api, "_lean_intake", lambda source: None)
    documented = _post(client, event)

    assert lean.status_code == documented.status_code == 422
    assert lean.mimetype == "application/problem+json"
    assert lean.get_json() == documented.get_json()
    assert set(lean.get_json()["errors"]) == {"id", "customer"}
    assert _stored(survey) == 0


def test_the_request_id_is_kept_with_the_event_and_the_metrics_count_it(survey):
    client = survey_app(survey).test_client()
    accepted, duplicate = (metrics.CRM_EVENTS.labels(outcome) for outcome in ("accepted", "duplicate"))
    before = accepted._value.get(), duplicate._value.get()

    first = _post(client, crm_event("traced"), **{"X-Request-Id": "crm-request-1"})
    repeat = _post(client, crm_event("traced"))

    assert first.headers["X-Request-Id"] == "crm-request-1" and repeat.headers["X-Request-Id"]
    with survey.database.transaction() as session:
        assert session.get(CrmEvent, first.get_json()["event_id"]).request_id == "crm-request-1"
    assert (accepted._value.get(), duplicate._value.get()) == (before[0] + 1, before[1] + 1)


def test_a_named_source_takes_the_lean_path_with_its_own_ids(postgres_url):
    secret = "whsec_" + base64.b64encode(b"the-erp-source-secret-32-bytes!!").decode()
    sources = Settings.from_env({"CLOSELOOP_SOURCES": "erp:standard", "CLOSELOOP_SOURCE_ERP_SECRET": secret})
    with migrated_service("survey", make_settings(postgres_url, sources=sources.sources)) as runtime:
        client = survey_app(runtime).test_client()
        body, headers = signed_request(crm_event("shared-id"), secret=secret)
        from_erp = client.post("/v1/sources/erp/events", data=body, headers=headers)
        default = _post(client, crm_event("shared-id"))

        assert (from_erp.status_code, default.status_code) == (202, 202)  # one id, two sources: two events
        assert from_erp.get_json()["event_id"] != default.get_json()["event_id"]
        assert from_erp.headers["Location"] == from_erp.get_json()["links"]["event"]
        with runtime.database.transaction() as session:
            stored = session.get(CrmEvent, from_erp.get_json()["event_id"])
            assert (stored.source, stored.external_id, stored.status) == ("erp", "shared-id", "received")


def test_a_repeat_of_an_event_another_process_stored_is_a_duplicate(survey, postgres_url):
    first = _post(survey_app(survey).test_client(), crm_event("elsewhere"))
    # Another process (its own memory of recent events) on the same database: the database answers.
    with migrated_service("survey", make_settings(postgres_url)) as other:
        client = survey_app(other).test_client()
        for _ in range(2):  # asked the database, then remembered
            repeat = _post(client, crm_event("elsewhere"))
            assert repeat.status_code == 200
            assert repeat.get_json()["event_id"] == first.get_json()["event_id"]
    assert _stored(survey) == 1


def _values(external_id: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "source": "default",
        "external_id": external_id,
        "type": "purchase.completed",
        "occurred_at": utcnow(),
        "received_at": utcnow(),
        "status": "received",
        "customer_fields": {"external_id": "crm-1", "email": "ana@example.com"},
        "properties": {"name": "Ayşe"},
        "request_id": None,
    }


def test_an_event_whose_insert_failed_is_not_remembered(survey, monkeypatch):
    monkeypatch.setattr(unit_of_work, "_receive_sql", lambda dialect: "SELECT no_such_column")
    with pytest.raises(Exception, match="no_such_column"):
        SqlSurveyUnitOfWork(survey.database).receive_crm_event(_values("failed"))
    monkeypatch.undo()

    event_id, stored = SqlSurveyUnitOfWork(survey.database).receive_crm_event(_values("failed"))
    assert stored and _stored(survey) == 1
    with survey.database.transaction() as session:
        row = session.get(CrmEvent, event_id)
        assert row.properties == {"name": "Ayşe"} and row.customer_fields["email"] == "ana@example.com"
    # The connection that failed went back to the pool usable: the pool's next user is served.
    assert SqlSurveyUnitOfWork(survey.database).receive_crm_event(_values("failed")) == (event_id, False)
