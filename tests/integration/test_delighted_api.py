"""The Delighted API's details on a real database: rate, suffixes, delayed and throttled surveys; the
import of Delighted's CSV exports; and erasure and export of a customer for staff and on the command line."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from closeloop.cli import main
from services.survey import privacy
from services.survey import service as survey_service
from services.survey.app import create_app
from services.survey.delighted import service as delighted
from services.survey.schemas import CrmEventSchema
from services.survey.unit_of_work import SqlCrmEvents
from shared.clock import utcnow
from shared.errors import NotFoundError
from shared.events import new_event
from shared.principal import Role
from tests.conftest import (
    CheckedThread,
    crm_event,
    make_settings,
    migrated_service,
    signed_request,
    staff_client,
    waits_for_a_lock,
)


def _basic_client(app, runtime, role=Role.AGENT):
    _, key = runtime.identity.create_api_key("delighted tests", role, "tests")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return client


@pytest.fixture
def api(survey):
    return _basic_client(create_app(survey), survey)


def _outbox(runtime, event_type):
    with runtime.database.transaction() as session:
        rows = session.execute(
            text("SELECT payload FROM survey_outbox WHERE event_type = :t"), {"t": event_type}
        ).all()
    return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]


def test_a_key_past_its_rate_is_answered_429_with_retry_after(postgres_url):
    with migrated_service(
        "survey", make_settings(postgres_url, delighted_rate_limit_per_minute=2)
    ) as runtime:
        client = _basic_client(create_app(runtime), runtime)
        assert [client.get("/delighted/v1/metrics").status_code for _ in range(2)] == [200, 200]
        refused = client.get("/delighted/v1/metrics.json")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.get_json() == {"status": 429, "message": "Too many requests."}


def test_every_path_also_answers_with_the_json_suffix(api):
    for path in ("people", "survey_responses", "metrics", "unsubscribes", "bounces"):
        assert api.get(f"/delighted/v1/{path}.json").status_code == 200, path
    created = api.post("/delighted/v1/people.json", json={"email": "suffix@example.com", "send": False})
    assert created.status_code == 200
    assert api.delete("/delighted/v1/people/suffix@example.com/survey_requests/pending.json").get_json() == {
        "ok": True
    }


def test_a_delayed_survey_is_invited_when_due_and_not_before(survey, api):
    person = api.post("/delighted/v1/people", json={"email": "later@example.com", "delay": 3600}).get_json()
    assert person["survey_scheduled_at"] >= int(utcnow().timestamp()) + 3590
    assert _outbox(survey, "invitation.requested") == []
    assert delighted.send_due_survey_requests(survey) == 0
    assert delighted.send_due_survey_requests(survey, now=utcnow() + timedelta(hours=2)) == 1
    [invitation] = _outbox(survey, "invitation.requested")
    assert invitation["data"]["contact"]["customer_id"] == person["id"]
    assert delighted.send_due_survey_requests(survey, now=utcnow() + timedelta(hours=3)) == 0


def test_a_person_surveyed_recently_is_throttled_by_the_quarantine(survey, api):
    first = api.post("/delighted/v1/people", json={"email": "twice@example.com"}).get_json()
    second = api.post("/delighted/v1/people", json={"email": "twice@example.com", "name": "Twice"}).get_json()
    assert isinstance(first["survey_scheduled_at"], int) and second["survey_scheduled_at"] is None
    assert second["id"] == first["id"] and second["name"] == "Twice"
    assert len(_outbox(survey, "invitation.requested")) == 1


def test_bad_input_is_a_422_naming_the_field_in_delighteds_shape(api):
    sms = api.post("/delighted/v1/people", json={"email": "a@example.com", "channel": "sms"})
    assert sms.status_code == 422
    assert sms.get_json()["errors"] == {"phone_number": ["Required when channel is sms."]}
    score = api.post("/delighted/v1/survey_responses", json={"person": "nobody", "score": "ten"})
    assert score.status_code == 422 and set(score.get_json()["errors"]) == {"score"}
    unknown = api.post("/delighted/v1/survey_responses", json={"person": "nobody", "score": 3})
    assert unknown.status_code == 422 and unknown.get_json()["errors"] == {
        "person": ["No person has this id."]
    }
    assert api.get("/delighted/v1/people?per_page=101").status_code == 422
    assert api.delete("/delighted/v1/people/email:nobody@example.com").status_code == 404


def test_input_the_database_cannot_store_is_refused_at_the_edge(api):
    assert api.delete("/delighted/v1/people/email:a%00b@example.com").status_code == 404
    assert api.delete("/delighted/v1/people/%00").status_code == 404
    assert api.get("/delighted/v1/survey_responses/%00").status_code == 404
    assert api.get("/delighted/v1/people?email=a%00b").status_code == 422
    assert api.get("/delighted/v1/survey_responses?person_email=%00").status_code == 422
    nan = api.post(
        "/delighted/v1/people",
        data='{"email": "nan@example.com", "properties": {"amount": NaN}}',
        content_type="application/json",
    )
    # Refused by every app's edge before Delighted's view reads it (shared/edge.py), in Delighted's shape.
    assert nan.status_code == 400 and nan.mimetype == "application/json"
    assert set(nan.get_json()) == {"status", "message", "errors"} and "properties" in str(nan.get_json())
    deep: dict = {}
    for _ in range(10):
        deep = {"d": deep}
    too_deep = api.post("/delighted/v1/people", json={"email": "deep@example.com", "properties": deep})
    assert too_deep.status_code == 422
    nul = api.post("/delighted/v1/survey_responses", json={"person": "a\u0000", "score": 3})
    assert nul.status_code == 422
    # A "+" unescaped in a query string arrives as a space: still the E.164 number.
    api.post("/delighted/v1/people", json={"phone_number": "+14155550199", "send": False})
    assert len(api.get("/delighted/v1/people?phone_number=+14155550199").get_json()) == 1


def test_a_bounce_dispatch_reports_is_listed_in_delighteds_bounces(survey, api):
    person = api.post("/delighted/v1/people", json={"email": "gone@example.com", "send": False}).get_json()
    bounced = {
        "channel": "email",
        "address": "Gone@Example.com",
        "delivery_id": "d-1",
        "bounced_at": "2026-11-20T10:00:00+00:00",
    }
    delighted.record_bounce(survey, new_event("delivery.bounced", bounced))
    delighted.record_bounce(survey, new_event("delivery.bounced", bounced))  # a second bounce: listed once
    assert api.get("/delighted/v1/bounces").get_json() == [
        {"person_id": person["id"], "email": "gone@example.com", "name": None, "bounced_at": 1795168800}
    ]


RESPONSES_CSV = """\
Response ID,Date,Name,Email,Phone Number,Score,Comment,Updated At,Plan,Property: Region,Tags,Permalink
r-1,2024-03-01 10:00:00 UTC,Ana Lima,ana@example.com,,10,Lovely,2024-03-02 09:00:00 UTC,pro,EU,,https://x
r-2,2024-03-05 11:30:00 UTC,Ben Ode,ben@example.com,+14155550100,3,"Slow, rude",,basic,US,,
r-3,2024-03-06 12:00:00 UTC,Ana Lima,ana@example.com,,8,,,pro,EU,,
r-4,not a date,Cy,cy@example.com,,7,,,,,,
r-5,2024-03-07 12:00:00 UTC,Dee,dee@example.com,,11,,,,,,
r-6,2024-03-08 12:00:00 UTC,Eve,not-an-email,,9,,,,,,
"""


def _import(monkeypatch, capsys, postgres_url, *args):
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    status = main(["import-delighted", *map(str, args)])
    return status, capsys.readouterr()


def test_an_export_with_bad_rows_is_refused_whole_then_imported_once_keeping_its_times(
    tmp_path, monkeypatch, capsys, postgres_url
):
    responses = tmp_path / "responses.csv"
    responses.write_text(RESPONSES_CSV)

    status, out = _import(monkeypatch, capsys, postgres_url, responses)
    assert status == 1
    assert f"{responses}:5: unreadable row: not a time: 'not a date'" in out.err
    assert f"{responses}:6: unreadable row: the score is not 0 to 10: '11'" in out.err
    assert f"{responses}:7: unreadable row: not an email address: 'not-an-email'" in out.err
    assert "nothing imported" in out.err

    status, out = _import(monkeypatch, capsys, postgres_url, "--skip-bad-rows", responses)
    assert status == 1 and "responses: 3 imported, 0 already imported" in out.out
    status, out = _import(monkeypatch, capsys, postgres_url, "--skip-bad-rows", responses)
    assert "responses: 0 imported, 3 already imported" in out.out

    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        client = _basic_client(create_app(runtime), runtime)
        rows = client.get("/delighted/v1/survey_responses?expand[]=person").get_json()
        assert [(r["score"], r["created_at"], r["person"]["email"]) for r in rows] == [
            (10, 1709287200, "ana@example.com"),
            (3, 1709638200, "ben@example.com"),
            (8, 1709726400, "ana@example.com"),
        ]
        assert rows[0]["person_properties"] == {"Plan": "pro", "Region": "EU"}
        assert rows[0]["updated_at"] == 1709370000 and rows[1]["comment"] == "Slow, rude"
        assert rows[0]["person"]["id"] == rows[2]["person"]["id"]  # one person, found by email
        assert client.get("/delighted/v1/metrics").get_json()["nps"] == 0  # 1 promoter, 1 detractor of 3
        # History: no response.submitted, so no follow-up task for a detractor of March.
        assert _outbox(runtime, "response.submitted") == []


def test_people_unsubscribes_and_bounces_are_imported_and_unsubscribes_reach_dispatch(
    tmp_path, monkeypatch, capsys, postgres_url
):
    people = tmp_path / "people.csv"
    people.write_text(
        "Person ID,Name,Email,Phone Number,Created At\n"
        "p-1,Ana Lima,ana@example.com,+14155550111,2023-01-02T03:04:05Z\n"
        "p-2,,,,2023-01-02T03:04:05Z\n"
    )
    unsubscribes = tmp_path / "unsubscribes.csv"
    unsubscribes.write_text("Email,Name,Unsubscribed At\nana@example.com,Ana Lima,1700000000\n")
    bounces = tmp_path / "bounces.csv"
    bounces.write_text("Email,Name,Bounced At\nold@example.com,,2022-05-06 07:08:09 UTC\n")
    status, out = _import(monkeypatch, capsys, postgres_url, "--skip-bad-rows", people, unsubscribes, bounces)
    assert f"{people}:3: unreadable row: neither an email nor a phone number" in out.err
    assert "people: 1 imported" in out.out and "unsubscribes: 1 imported" in out.out
    assert "bounces: 1 imported" in out.out

    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        client = _basic_client(create_app(runtime), runtime)
        [ana] = client.get("/delighted/v1/people?email=ana@example.com").get_json()
        assert (ana["name"], ana["phone_number"], ana["created_at"]) == (
            "Ana Lima",
            "+14155550111",
            1672628645,
        )
        [unsubscribed] = client.get("/delighted/v1/unsubscribes").get_json()
        assert unsubscribed == {
            "person_id": ana["id"],
            "email": "ana@example.com",
            "name": "Ana Lima",
            "unsubscribed_at": 1700000000,
        }
        [bounced] = client.get("/delighted/v1/bounces").get_json()
        assert (bounced["email"], bounced["bounced_at"], bounced["person_id"]) == (
            "old@example.com",
            1651820889,
            None,
        )
        [opt_out] = _outbox(runtime, "unsubscribe.requested")
        assert opt_out["data"] == {"channel": "email", "address": "ana@example.com", "source": "delighted"}


def test_a_file_that_is_no_delighted_export_is_refused(tmp_path, monkeypatch, capsys, postgres_url):
    other = tmp_path / "other.csv"
    other.write_text("Order,Amount\n1,2\n")
    status, out = _import(monkeypatch, capsys, postgres_url, other)
    assert status == 1 and "not imported: no Score" in out.err


def test_staff_export_and_erase_a_customer_and_agents_may_not(survey):
    app = create_app(survey)
    body, headers = signed_request(crm_event(external_id="crm-erase", email="erase.me@example.com"))
    assert app.test_client().post("/v1/events", data=body, headers=headers).status_code == 202
    survey_service.decide_received_events(survey)  # what survey's clock does right after the intake
    agent, manager = (
        staff_client(app, survey.identity, Role.AGENT),
        staff_client(app, survey.identity, Role.MANAGER),
    )

    assert agent.get("/v1/customers/crm-erase/export").status_code == 403
    export = manager.get("/v1/customers/crm-erase/export").get_json()
    assert export["tables"]["customers"][0]["email"] == "erase.me@example.com"
    assert len(export["tables"]["crm_events"]) == len(export["tables"]["invitations"]) == 1
    assert "token" not in export["tables"]["invitations"][0]
    assert export["keys"]["addresses"] == [{"channel": "email", "address": "erase.me@example.com"}]

    assert agent.post("/v1/customers/crm-erase/erase").status_code == 403
    erased = manager.post("/v1/customers/crm-erase/erase")
    assert erased.status_code == 202 and erased.get_json()["erased"]["invitations"] == 1
    assert manager.get("/v1/customers/crm-erase/export").status_code == 404
    # The invitation.requested that carried the address is gone; customer.erased names what others must find.
    assert _outbox(survey, "invitation.requested") == []
    events = _outbox(survey, "customer.erased")  # one row per consuming service
    assert len(events) == 3 and events[0]["data"]["invitation_ids"] == export["keys"]["invitation_ids"]


def test_erasing_someone_not_yet_a_customer_erases_their_events_waiting_for_a_decision(
    survey, monkeypatch, capsys, postgres_url
):
    """Their first event is stored and the decider (the clock) has not run: no customer yet, but the event
    holds their fields, and deciding it after the erasure would make them a customer."""
    app = create_app(survey)
    intake, manager = app.test_client(), staff_client(app, survey.identity, Role.MANAGER)
    for external_id in ("crm-first", "crm-cli"):
        body, headers = signed_request(crm_event(external_id=external_id, email=f"{external_id}@example.com"))
        assert intake.post("/v1/events", data=body, headers=headers).status_code == 202

    erased = manager.post("/v1/customers/crm-first/erase")
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    assert main(["erase-customer", "crm-cli"]) == 0
    survey_service.decide_received_events(survey)

    assert erased.status_code == 202
    assert erased.get_json() == {"customer_id": None, "erased": {"crm_events": 1}}
    assert "crm-cli was not a customer yet" in capsys.readouterr().out
    for external_id in ("crm-first", "crm-cli"):
        assert manager.get(f"/v1/customers/{external_id}").status_code == 404
    assert manager.post("/v1/customers/crm-first/erase").status_code == 404  # nothing left to erase


def test_export_customer_on_the_command_line_gathers_every_service(survey, monkeypatch, capsys, postgres_url):
    app = create_app(survey)
    body, headers = signed_request(crm_event(external_id="crm-export", email="export.me@example.com"))
    assert app.test_client().post("/v1/events", data=body, headers=headers).status_code == 202
    survey_service.decide_received_events(survey)  # what survey's clock does right after the intake
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    assert main(["export-customer", "crm-export"]) == 0
    export = json.loads(capsys.readouterr().out)
    assert set(export) == {"external_id", "exported_at", "survey", "dispatch", "followup", "sentiment"}
    assert export["survey"]["customers"][0]["email"] == "export.me@example.com"
    assert set(export["dispatch"]) == {"deliveries", "opt_outs", "inbound_sms"}
    assert main(["erase-customer", "crm-export"]) == 0
    assert main(["erase-customer", "crm-export"]) == 2


def _accept(survey, external_id: str) -> None:
    """A CRM event of ``external_id`` stored by the intake, waiting for the decider."""
    survey_service.accept_crm_event(survey, CrmEventSchema().load(crm_event(external_id=external_id)))


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_an_event_not_yet_decided_is_erased_with_its_customer(request, database):
    """The decider (the survey clock) may be behind, or down, when a customer is erased: an event of theirs
    still waiting for its decision held their fields, and decided after the erasure made them a customer again
    (and surveyed them). Their export lists it too."""
    with migrated_service("survey", make_settings(request.getfixturevalue(database))) as survey:
        _accept(survey, "crm-gone")
        survey_service.decide_received_events(survey)
        _accept(survey, "crm-gone")  # waiting for the decider
        _accept(survey, "crm-other")  # someone else's, waiting too

        customer_id = privacy.customer_id_for(survey, "crm-gone")
        exported = privacy.export_customer(survey, customer_id)["tables"]["crm_events"]
        counts = privacy.erase_customer(survey, customer_id)
        survey_service.decide_received_events(survey)

        assert len(exported) == 2  # the waiting one is theirs too

        assert counts["crm_events"] == 2
        with pytest.raises(NotFoundError):
            privacy.customer_id_for(survey, "crm-gone")
        assert privacy.customer_id_for(survey, "crm-other")


def test_an_erasure_waits_for_a_decision_under_way_then_erases_what_it_made(survey, monkeypatch):
    """The decider locks the received events it takes, then their customers; the erasure waits for such an
    event (it deletes those still received) before it locks the customer: no deadlock, and the decision,
    made meanwhile, goes with the customer."""
    _accept(survey, "crm-race")
    survey_service.decide_received_events(survey)
    _accept(survey, "crm-race")  # the one the decider is deciding when the erasure comes
    customer_id = privacy.customer_id_for(survey, "crm-race")
    claimed, release = threading.Event(), threading.Event()
    claim_received = SqlCrmEvents.claim_received

    def claim_then_pause(self, *args, **kwargs):
        events = claim_received(self, *args, **kwargs)
        if events:
            claimed.set()
            release.wait(timeout=60)
        return events

    monkeypatch.setattr(SqlCrmEvents, "claim_received", claim_then_pause)
    decider = CheckedThread(survey_service.decide_received_events, survey)
    decider.start()
    assert claimed.wait(timeout=60)
    eraser = CheckedThread(privacy.erase_customer, survey, customer_id)
    eraser.start()
    try:
        assert waits_for_a_lock(survey.database.engine, eraser), "the erasure did not wait for the decision"
    finally:
        release.set()
        decider.join(timeout=60)
        eraser.join(timeout=60)
    assert decider.failures == eraser.failures == []
    with survey.database.transaction() as session:
        events = session.execute(text("SELECT count(*) FROM survey_crm_events")).scalar_one()
        invitations = session.execute(text("SELECT count(*) FROM survey_invitations")).scalar_one()
    assert (events, invitations) == (0, 0)


def _person_with_a_response(survey, api, email: str) -> tuple[dict, str]:
    """A Delighted person and their response (score 3), through the API; the person and the response's id."""
    person = api.post("/delighted/v1/people", json={"email": email, "send": False}).get_json()
    assert (
        api.post("/delighted/v1/survey_responses", json={"person": person["id"], "score": 3}).status_code
        == 200
    )
    with survey.database.transaction() as session:
        response_id = session.execute(
            text("SELECT id FROM survey_responses WHERE customer_id = :c"), {"c": person["id"]}
        ).scalar_one()
    return person, response_id


def test_a_sentiment_stored_while_its_customer_is_erased_does_not_fail_the_erasure(survey, api):
    """Seen once in the Node client's test: survey's response.scored consumer inserted a sentiment between the
    erasure's deletes, and the erasure failed its foreign key (500). The erasure now locks the rows first."""
    person, response_id = _person_with_a_response(survey, api, "race@example.com")
    consumer = survey.database.engine.connect()  # the consumer's transaction, not yet committed
    consumer.execute(
        text(
            "INSERT INTO survey_response_sentiments (response_id, revision, label, scored_at) "
            "VALUES (:r, 1, 'negative', now())"
        ),
        {"r": response_id},
    )
    eraser = CheckedThread(privacy.erase_customer, survey, person["id"])
    eraser.start()
    waited = waits_for_a_lock(survey.database.engine, eraser)  # for the consumer's row lock
    assert waited, f"the erasure never waited for the consumer's transaction (its errors: {eraser.failures})"
    consumer.commit()
    consumer.close()
    eraser.join(timeout=30)
    assert eraser.failures == []
    with survey.database.transaction() as session:
        left = session.execute(text("SELECT count(*) FROM survey_response_sentiments")).scalar_one()
    assert left == 0


def test_a_sentiment_rescored_while_its_customer_is_erased_waits_for_the_erasure(survey, api):
    """Seen once in the Node client's test: survey's response.scored consumer updated a response's sentiment,
    then waited for the response (its key phrases' foreign key) that the erasure held, while the erasure
    waited to delete that sentiment: a deadlock, and the erasure answered 500. The consumer now holds the
    response before it writes anything, as the erasure does."""

    from services.survey.analytics import service as analytics

    _, response_id = _person_with_a_response(survey, api, "again@example.com")

    def scored(revision: int) -> object:
        sentiment = {"polarity": -0.6, "label": "negative", "language": "en", "key_phrases": ["long wait"]}
        data = {"response_id": response_id, "invitation_id": "i", "revision": revision, "score": 3}
        about = {
            "locale": "en",
            "touchpoint": "purchase",
            "channel": "email",
            "customer": {"customer_id": "c"},
        }
        return new_event(
            "response.scored",
            {
                **data,
                **about,
                "submitted_at": utcnow().isoformat(),
                "comment": "Long wait",
                "sentiment": sentiment,
            },
        )

    analytics.record_response_sentiment(survey, scored(1))
    erasure = survey.database.engine.connect()  # holds the response, as the erasure's first statements do
    erasure.execute(text("SELECT id FROM survey_responses WHERE id = :r FOR UPDATE"), {"r": response_id})
    consumer = CheckedThread(analytics.record_response_sentiment, survey, scored(2))
    consumer.start()
    consumer.join(timeout=1.0)  # it waits for the erasure's lock, before or after touching the sentiment
    assert consumer.is_alive(), consumer.failures
    # The erasure's next step, deleting the sentiment, must not wait for the consumer: it has written nothing.
    erasure.execute(text("SET LOCAL lock_timeout = '2s'"))
    deleted = erasure.execute(
        text("DELETE FROM survey_response_sentiments WHERE response_id = :r"), {"r": response_id}
    ).rowcount
    assert deleted == 1
    erasure.commit()
    erasure.close()
    consumer.join(timeout=30)
    assert not consumer.is_alive() and consumer.failures == []
    with survey.database.transaction() as session:
        revision = session.execute(
            text("SELECT revision FROM survey_response_sentiments WHERE response_id = :r"), {"r": response_id}
        ).scalar_one()
    assert revision == 2  # written once the lock was let go
