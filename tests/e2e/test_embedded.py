"""`make run`'s process: SQLite, the in-process broker, sandbox transports and the demo data."""

from __future__ import annotations

import re

import pytest
from werkzeug.test import Client

from closeloop.demo import DEMO_CUSTOMERS, load_demo
from closeloop.home import create_home_app
from closeloop.system import build_system
from tests.conftest import make_settings, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def embedded(sqlite_url):
    system = build_system(make_settings(sqlite_url))
    system.start()
    yield system
    system.stop()


def test_demo_shows_the_whole_loop_and_a_newcomer_can_answer_from_the_sandbox(embedded):
    load_demo(embedded)
    client = Client(embedded.wsgi_app(create_home_app(embedded.settings)))

    assert "Closeloop is running" in client.get("/").get_data(as_text=True)
    sandbox = wait_for(lambda: _sandbox_when_full(client))
    # Two demo customers answer by SMS themselves: a detractor and a promoter.
    tasks = wait_for(lambda: client.get("/v1/tasks").get_json())
    assert [task["customer_name"] for task in tasks] == ["Alan Turing"]
    referrals = wait_for(lambda: client.get("/v1/referral-requests").get_json())
    assert [referral["customer_name"] for referral in referrals] == ["Ayşe Demir"]

    link = re.search(r'href="http://testserver(/s/[^"?]+)\?score=1"', sandbox).group(1)
    assert client.post(link, data={"score": "1", "comment": "Nobody answered the phone"}).status_code == 200
    wait_for(lambda: len(client.get("/v1/tasks").get_json()) == 2)

    load_demo(embedded)  # a restart posts the demo again: every event is a duplicate
    assert len(client.get("/v1/tasks").get_json()) == 2
    assert client.get("/v1/nps").get_json()["responses"] == 3


def _sandbox_when_full(client):
    page = client.get("/sandbox").get_data(as_text=True)
    return page if page.count('class="message"') == len(DEMO_CUSTOMERS) else None
