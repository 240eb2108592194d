"""The intake's lean path (issue 19) answers as the documented view does, keeps the request id and the
metrics, and its memory of recent events never answers for an event that was not stored."""

from __future__ import annotations

import base64
import json
import uuid

import psycopg
import pytest
from sqlalchemy import func, select, text
from standardwebhooks import Webhook

from services.survey import api, unit_of_work
from services.survey.app import create_app as survey_app
from services.survey.models import CrmEvent
from services.survey.schemas import EVENT_TYPE_CHECK
from services.survey.unit_of_work import SqlSurveyUnitOfWork
from shared import kept_connections, metrics
from shared.clock import utcnow
from shared.settings import Settings
from tests.conftest import TEST_SECRET, crm_event, make_settings, migrated_service, signed_request


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
        for _ in range(2):  # asked the database or the server's memory, then remembered
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
    # The kept connection the statement failed on stays usable (autocommit): the next event is served on it.
    assert SqlSurveyUnitOfWork(survey.database).receive_crm_event(_values("failed")) == (event_id, False)


def test_the_lean_statement_stores_every_column_as_given(survey):
    values = {**_values("as-given"), "request_id": "crm-request-2"}
    values["customer_fields"]["name"] = "Ayşe \\ \"quoted\" 😀"

    event_id, stored = SqlSurveyUnitOfWork(survey.database).receive_crm_event(values)

    assert (event_id, stored) == (values["id"], True)
    with survey.database.transaction() as session:
        row = session.get(CrmEvent, event_id)
        assert {key: getattr(row, key) for key in unit_of_work.INTAKE_COLUMNS} == values


def test_an_event_is_stored_when_the_kept_connection_was_lost_meanwhile(survey):
    client = survey_app(survey).test_client()
    assert _post(client, crm_event("before")).status_code == 202
    kept = survey.database.kept_connections.connection()
    with survey.database.engine.connect() as connection:  # as a server restart or a proxy would end it
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.info.backend_pid})

    after = _post(client, crm_event("after"))

    assert after.status_code == 202 and after.get_json()["status"] == "accepted"
    assert survey.database.kept_connections.connection() is not kept
    assert _stored(survey) == 2


def test_an_event_whose_answer_was_lost_after_its_commit_is_answered_as_accepted(survey, monkeypatch):
    # The first run commits, then its answer never comes; the run on a new connection finds the row stored:
    # it is this event's own row (its id), so the answer is "accepted", not "duplicate".
    runs = []
    real = kept_connections._KeptConnection.fetchone

    def commit_then_lose_the_answer(kept, sql, parameters):
        runs.append(kept)
        if len(runs) == 1:
            real(kept, sql, parameters)
            kept.connection.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(kept, sql, parameters)

    monkeypatch.setattr(kept_connections._KeptConnection, "fetchone", commit_then_lose_the_answer)
    values = _values("answer-lost")

    event_id, stored = SqlSurveyUnitOfWork(survey.database).receive_crm_event(values)

    assert (event_id, stored) == (values["id"], True)
    assert len(runs) == 2 and runs[0] is not runs[1]
    assert _stored(survey) == 1


def test_disposing_of_the_database_closes_its_kept_connections(postgres_url):
    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        assert _post(survey_app(runtime).test_client(), crm_event("kept")).status_code == 202
        kept = runtime.database.kept_connections.connection()
        assert not kept.closed
    assert kept.closed


def _post_bytes(client, body: bytes, path="/v1/events", secret=TEST_SECRET):
    """A signed post of these very bytes, signed anew (as a CRM's retry is)."""
    message_id, timestamp = f"msg_{uuid.uuid4().hex}", utcnow()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body.decode()),
    }
    return client.post(path, data=body, headers=headers)


class _Validations:
    """Counts the intake's validations of an event (the quick load and the schema's own)."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        quick, full = api.load_crm_event_quickly, api._CRM_EVENT.load

        def counted_quick(*args, **kwargs):
            self.count += 1
            return quick(*args, **kwargs)

        def counted_full(*args, **kwargs):
            self.count += 1
            return full(*args, **kwargs)

        monkeypatch.setattr(api, "load_crm_event_quickly", counted_quick)
        monkeypatch.setattr(api._CRM_EVENT, "load", counted_full)


def test_a_retry_with_the_very_bytes_stored_is_a_duplicate_without_validating_again(survey, monkeypatch):
    client = survey_app(survey).test_client()
    body = json.dumps(crm_event("same-bytes")).encode()
    first = _post_bytes(client, body)
    validations = _Validations(monkeypatch)

    retries = [_post_bytes(client, body) for _ in range(2)]

    assert first.status_code == 202
    assert [retry.status_code for retry in retries] == [200, 200]
    assert validations.count == 0
    assert {retry.get_json()["event_id"] for retry in retries} == {first.get_json()["event_id"]}
    assert _answer(retries[0])[1:] == _answer(_post(client, crm_event("same-bytes")))[1:]  # validated: same
    assert validations.count > 0
    assert _stored(survey) == 1


def test_a_retry_with_other_bytes_is_validated_and_refused_when_invalid(survey):
    client = survey_app(survey).test_client()
    event = crm_event("other-bytes")
    assert _post_bytes(client, json.dumps(event).encode()).status_code == 202
    event["customer"]["email"] = "not an address"
    event["customer"]["phone"] = None
    refused = _post_bytes(client, json.dumps(event).encode())
    assert refused.status_code == 422 and "customer" in refused.get_json()["errors"]
    # The signature still counts: the very bytes with a wrong signature are refused.
    body = json.dumps(crm_event("signed")).encode()
    assert _post_bytes(client, body).status_code == 202
    wrong = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert _post_bytes(client, body, secret=wrong).status_code == 401


def test_a_new_event_is_never_answered_as_a_duplicate(survey, postgres_url):
    client = survey_app(survey).test_client()
    events = [crm_event(f"new-{number}") for number in range(40)]
    bodies = [json.dumps(event).encode() for event in events]
    assert {_post_bytes(client, body).status_code for body in bodies} == {202}
    # The same ids from another source, and the same body with another id, are new events.
    secret = "whsec_" + base64.b64encode(b"the-erp-source-secret-32-bytes!!").decode()
    sources = Settings.from_env({"CLOSELOOP_SOURCES": "erp:standard", "CLOSELOOP_SOURCE_ERP_SECRET": secret})
    with migrated_service("survey", make_settings(postgres_url, sources=sources.sources)) as erp:
        erp_client = survey_app(erp).test_client()
        answer = _post_bytes(erp_client, bodies[0], path="/v1/sources/erp/events", secret=secret)
        assert answer.status_code == 202
    renamed = bodies[1].replace(b"new-1", b"new-1-renamed")
    assert _post_bytes(client, renamed).status_code == 202


def test_a_custom_type_is_validated_again_on_every_retry(survey, monkeypatch):
    event = crm_event("custom")
    event["type"] = "order.delivered"
    app = survey_app(survey)
    app.extensions[EVENT_TYPE_CHECK] = lambda value: True  # as if a trigger rule were stored for it
    client = app.test_client()
    body = json.dumps(event).encode()
    assert _post_bytes(client, body).status_code == 202
    validations = _Validations(monkeypatch)
    assert _post_bytes(client, body).status_code == 200
    assert validations.count == 2  # the quick load declines a custom type, the schema validates it
