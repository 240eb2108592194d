"""Delighted's official clients, unchanged but for their base URL, against Closeloop's Delighted API.

The Python client (``delighted`` 4.2.0 from PyPI) runs in this process; the Node client (``delighted`` from
npm, installed into tests/delighted_node by ``make test``'s set-up) runs as ``node drive.js``. Both talk HTTP
to the whole system served on a free port, with its worker and clock running, so a survey request really
reaches dispatch, a response really reaches sentiment and followup, and an erasure really reaches them all.
Every request the clients make is recorded, so their quirks are asserted as served.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select, text
from werkzeug.serving import make_server

from closeloop.system import build_system
from services.survey import privacy
from shared.clock import utcnow
from shared.principal import Role
from tests.conftest import make_settings, wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # the client announces Delighted's sunset on import
    import delighted
    from delighted.errors import AuthenticationError, ResourceValidationError

NODE_CLIENT = Path(__file__).parent.parent / "delighted_node"


class RecordingApp:
    """The system's WSGI app, keeping what each request really carried."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[dict] = []

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        self.requests.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "query": environ.get("QUERY_STRING", ""),
                "authorization": environ.get("HTTP_AUTHORIZATION", ""),
                "content_type": environ.get("CONTENT_TYPE", ""),
                "body": body.decode("utf-8", "replace"),
            }
        )
        return self.app(environ, start_response)


@pytest.fixture(params=["postgres_url", "sqlite_url"])
def served(request):
    """The whole system on PostgreSQL (services mode's database) and SQLite (``make run``'s)."""
    url = request.getfixturevalue(request.param)
    recorder = RecordingApp(None)
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    # The Link header's next page is on the public address, as every link Closeloop hands out.
    system = build_system(make_settings(url, public_base_url=f"http://127.0.0.1:{server.server_port}"))
    system.start()
    recorder.app = system.wsgi_app()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _, key = system.runtimes["survey"].identity.create_api_key("delighted integration", Role.ADMIN, "tests")
    try:
        yield system, recorder, f"http://127.0.0.1:{server.server_port}/delighted/v1/", key
    finally:
        server.shutdown()
        system.stop()


def _rows_mentioning(system, *needles: str) -> list[str]:
    """Every row of every table of the system's database whose text holds one of ``needles``."""
    database = system.runtimes["survey"].database
    found = []
    with database.transaction() as session:
        metadata = MetaData()
        metadata.reflect(bind=session.get_bind())
        for table in metadata.sorted_tables:
            for row in session.execute(select(table)):
                line = " ".join(str(value) for value in row)
                if any(needle in line for needle in needles):
                    found.append(f"{table.name}: {line[:200]}")
    return found


def _count(system, sql: str, **params) -> int:
    with system.runtimes["survey"].database.transaction() as session:
        return session.execute(text(sql), params).scalar()


def _assert_nothing_left(system, person_id: str, *personal_data: str) -> None:
    """Wait until no table of any service holds the erased person's data, or show what is left.

    Their opaque id stays only as each service's erasure mark (a consumed-events record): it makes an event
    about them still on its way ignored instead of recreating what was erased.
    """

    def left() -> list[str]:
        # The clock forgets acknowledged erasure events every minute; the test does not wait that long.
        privacy.forget_acknowledged_erasures(system.runtimes["survey"])
        return [
            row
            for row in _rows_mentioning(system, person_id, *personal_data)
            if not (row.split(":")[0].endswith("_consumed_events") and f"erased:{person_id} erasure" in row)
        ]

    try:
        wait_for(lambda: not left(), what="the erasure in every service")
    except AssertionError:
        assert left() == []


def test_the_python_client_drives_people_responses_metrics_and_erasure(served):
    system, recorder, base_url, key = served
    client = delighted.Client(api_key=key, api_base_url=base_url)
    tag = uuid.uuid4().hex[:6]
    email = f"ada-{tag}@example.com"

    person = delighted.Person.create(
        client=client, email=email, name="Ada Lovelace", properties={"plan": "pro", "region": "EU"}
    )
    assert isinstance(person.id, str) and person.email == email and person.name == "Ada Lovelace"
    assert isinstance(person.survey_scheduled_at, int) and person.properties == {
        "plan": "pro",
        "region": "EU",
    }
    # A real invitation through survey's normal path: dispatch delivers it (the sandbox, in tests).
    wait_for(
        lambda: _count(system, "SELECT count(*) FROM dispatch_deliveries WHERE address = :a", a=email),
        what="the invitation's delivery",
    )
    quiet = delighted.Person.create(client=client, email=f"quiet-{tag}@example.net", send=False)
    assert quiet.survey_scheduled_at is None
    later = delighted.Person.create(client=client, email=f"later-{tag}@example.net", delay=3600)
    assert later.survey_scheduled_at >= int(utcnow().timestamp()) + 3590
    assert delighted.SurveyRequest.delete_pending(client=client, person_email=f"later-{tag}@example.net") == {
        "ok": True
    }
    later_people = delighted.Person.list(client=client, email=f"later-{tag}@example.net")
    [listed_later] = list(later_people.auto_paging_iter())
    assert listed_later["next_survey_scheduled_at"] is None

    # Paging that misses nobody: 23 people more, 7 a page, each seen exactly once.
    for n in range(23):
        delighted.Person.create(client=client, email=f"p{n}-{tag}@example.net", send=False)
    seen = [p.id for p in delighted.Person.list(client=client, per_page=7).auto_paging_iter()]
    assert len(seen) == len(set(seen)) == 26
    assert sum(1 for r in recorder.requests if r["method"] == "GET" and r["path"].endswith("/people")) == 5

    # Known scores, exact metrics: 5 promoters, 2 passives, 3 detractors of 10.
    scores = [10, 9, 9, 8, 7, 6, 3, 0, 10, 10]
    created = [
        delighted.SurveyResponse.create(
            client=client,
            person=person.id,
            score=score,
            comment=f"gave {score}",
            person_properties={"store": "A"},
        )
        for score in scores
    ]
    assert [r.score for r in created] == scores and all(isinstance(r.id, str) for r in created)
    assert created[0].person == person.id and created[0].person_properties == {"store": "A"}
    month_ago = int((utcnow() - timedelta(days=30)).timestamp())
    delighted.SurveyResponse.create(client=client, person=person.id, score=0, created_at=month_ago)
    since = utcnow() - timedelta(days=1)
    assert dict(delighted.Metrics.retrieve(client=client, since=since)) == {
        "nps": 20,
        "promoter_count": 5,
        "promoter_percent": 50,
        "passive_count": 2,
        "passive_percent": 20,
        "detractor_count": 3,
        "detractor_percent": 30,
        "response_count": 10,
    }
    assert delighted.Metrics.retrieve(client=client)["response_count"] == 11
    # Ordinary survey responses: in the NPS, scored by sentiment, detractors in followup's queue.
    staff = {"Authorization": f"Bearer {key}"}
    nps = system.apps["survey"].test_client().get("/v1/nps", headers=staff).get_json()
    assert nps["responses"] == 11
    wait_for(
        lambda: (
            _count(system, "SELECT count(*) FROM followup_tasks WHERE customer_id = :c", c=person.id) == 4
        ),
        what="the detractors' follow-up tasks",
    )

    # Pages of responses, the person expanded (the client keeps only the last item of a list parameter).
    first = delighted.SurveyResponse.all(client=client, per_page=4, page=1, expand=["person"], order="asc")
    third = delighted.SurveyResponse.all(client=client, per_page=4, page=3, expand=["person"])
    assert [r.score for r in first] == [0, *scores[:3]] and len(third) == 3
    assert first[1].person.email == email and isinstance(first[1].person, delighted.Person)
    mine = delighted.SurveyResponse.all(client=client, person_email=email, per_page=100)
    assert len(mine) == 11 and all(r.person == person.id for r in mine)

    # GET and PUT of one response: the client sends the whole object back.
    response = delighted.SurveyResponse.retrieve(created[6].id, client=client)
    response.score, response.comment = 9, "they called me back"
    saved = response.save(client=client)
    assert (saved.score, saved.comment) == (9, "they called me back") and saved.id == created[6].id
    assert delighted.SurveyResponse.retrieve(created[6].id, client=client).score == 9

    delighted.Unsubscribe.create(client=client, person_email=email)
    [unsubscribed] = delighted.Unsubscribe.all(client=client)
    assert (unsubscribed["person_id"], unsubscribed["email"]) == (person.id, email)
    wait_for(
        lambda: _count(system, "SELECT count(*) FROM dispatch_opt_outs WHERE address = :a", a=email),
        what="dispatch's opt-out",
    )
    assert delighted.Bounce.all(client=client) == []

    with pytest.raises(ResourceValidationError) as invalid:
        delighted.Person.create(client=client, name="Nobody")
    body = json.loads(invalid.value.response.body)
    assert body["status"] == 422 and body["errors"] == {"email": ["An email or a phone_number is required."]}
    with pytest.raises(AuthenticationError):
        delighted.Metrics.retrieve(client=delighted.Client(api_key="clk_not_a_key", api_base_url=base_url))

    # Erasure that leaves nothing, in any service, once every consumer has acted.
    assert delighted.Person.delete(client=client, email=email) == {"ok": True}
    assert list(delighted.Person.list(client=client, email=email).auto_paging_iter()) == []

    _assert_nothing_left(system, person.id, email, "Ada Lovelace")
    assert delighted.SurveyResponse.all(client=client, person_id=person.id) == []

    # What the client really sent: the key without a colon, "{}" as the body of a GET without parameters,
    # the last item of a list parameter, and a DELETE by email with the colon and @ escaped.
    sent = recorder.requests
    assert all(
        r["authorization"] in ("Basic " + _b64(key), "Basic " + _b64("clk_not_a_key")) for r in sent
    )
    assert any(r["method"] == "GET" and r["body"] == "{}" and r["query"] == "" for r in sent)
    assert any("expand%5B%5D=person" in r["query"] for r in sent)
    assert any(r["method"] == "DELETE" and r["path"] == f"/delighted/v1/people/email:{email}" for r in sent)


def _b64(value: str) -> str:
    import base64

    return base64.b64encode(value.encode()).decode()


def test_the_node_client_drives_the_same_api(served):
    system, recorder, base_url, key = served
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the Node client's test needs it (CI has it)")
    if not (NODE_CLIENT / "node_modules" / "delighted").is_dir():
        pytest.fail(
            "Delighted's Node client is missing: `make prerequisites` runs npm ci in tests/delighted_node"
        )
    tag = uuid.uuid4().hex[:6]
    email = f"nora-{tag}@example.com"
    scenario = {
        "email": email,
        "phone": "+14155550" + str(uuid.uuid4().int % 900 + 100),
        "pending_email": email,
        "extra_people": [f"n{n}-{tag}@example.net" for n in range(9)],
        "scores": [10, 10, 9, 7, 2],
    }
    run = subprocess.run(
        [node, "drive.js", base_url, key, json.dumps(scenario)],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    assert out["created"]["email"] == email and isinstance(out["created"]["survey_scheduled_at"], int)
    assert out["sms"]["phone_number"] == scenario["phone"]
    listed = [person["id"] for person in out["listed"]]
    assert len(listed) == len(set(listed)) == 11  # Nora, the SMS person, nine more: 4 a page, none missed
    assert out["metrics"] == {
        "nps": 40,
        "promoter_count": 3,
        "promoter_percent": 60,
        "passive_count": 1,
        "passive_percent": 20,
        "detractor_count": 1,
        "detractor_percent": 20,
        "response_count": 5,
    }
    assert out["metrics_none"]["response_count"] == 0
    assert [r["person"]["email"] for r in out["expanded"]] == [email] * 5
    assert out["saved"]["score"] == 10 and out["saved"]["comment"] == "changed my mind"
    assert [u["email"] for u in out["unsubscribes"]] == [email]
    assert out["bounces"] == []
    assert out["pending_deleted"] == {"ok": True}
    assert out["wrong_key"]["error"]["type"] == "AuthenticationError"
    invalid = json.loads(out["invalid"]["error"]["message"])
    assert invalid["status"] == 422 and "score" in invalid["errors"]
    assert out["deleted"] == {"ok": True} and out["deleted_phone"] == {"ok": True}
    assert out["after_delete"] == []
    assert out["delete_again"]["error"]["type"] == "GeneralAPIError"  # 404: Node names every other error so

    _assert_nothing_left(system, out["created"]["id"], email, "Nora Node")
    _assert_nothing_left(system, out["sms"]["id"], scenario["phone"])

    sent = recorder.requests
    assert all(
        r["authorization"] in ("Basic " + _b64(key + ":"), "Basic " + _b64("clk_wrong:")) for r in sent
    )
    assert any(r["query"] == "expand=person" for r in sent)  # no brackets
    assert any(r["method"] == "PUT" and r["path"] == "/delighted/v1/survey_responses" for r in sent)
