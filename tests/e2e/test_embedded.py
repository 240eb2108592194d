"""`make run`'s process: SQLite, the in-process broker, sandbox transports and the demo data."""

from __future__ import annotations

import re

import pytest
from werkzeug.test import Client

from closeloop.demo import DEMO_CUSTOMERS, load_demo
from closeloop.home import create_home_app
from closeloop.system import build_system
from shared.principal import Role
from tests.conftest import make_settings, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def embedded(sqlite_url):
    system = build_system(make_settings(sqlite_url))
    system.start()
    yield system
    system.stop()


def test_demo_shows_the_whole_loop_and_a_newcomer_can_answer_from_the_sandbox(embedded):
    admin = load_demo(embedded)
    identity = embedded.runtimes["followup"].identity
    client = Client(embedded.wsgi_app(create_home_app(embedded.settings, identity)))
    _, key = identity.create_api_key("e2e", Role.AGENT, "tests")
    staff = {"Authorization": f"Bearer {key}"}

    assert identity.authenticate(*admin, None).role is Role.ADMIN  # the banner's credentials sign in
    assert "Closeloop is running" in client.get("/", headers=staff).get_data(as_text=True)
    sandbox = wait_for(lambda: _sandbox_when_full(client, staff))
    # Two demo customers answer by SMS themselves: a detractor and a promoter.
    tasks = wait_for(lambda: client.get("/v1/tasks", headers=staff).get_json())
    assert [task["customer_name"] for task in tasks] == ["Alan Turing"]
    referrals = wait_for(lambda: client.get("/v1/referral-requests", headers=staff).get_json())
    assert [referral["customer_name"] for referral in referrals] == ["Ayşe Demir"]

    link = re.search(r'href="http://testserver(/s/[^"?]+)\?score=1"', sandbox).group(1)
    assert client.post(link, data={"score": "1", "comment": "Nobody answered the phone"}).status_code == 200
    wait_for(lambda: len(client.get("/v1/tasks", headers=staff).get_json()) == 2)

    assert load_demo(embedded) == admin  # a restart posts the demo again: every event is a duplicate
    assert len(client.get("/v1/tasks", headers=staff).get_json()) == 2
    assert client.get("/v1/nps", headers=staff).get_json()["responses"] == 3


def _sandbox_when_full(client, staff):
    page = client.get("/sandbox", headers=staff).get_data(as_text=True)
    return page if page.count('class="message"') == len(DEMO_CUSTOMERS) else None
