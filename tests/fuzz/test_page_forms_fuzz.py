"""The pages' forms and query strings, which no OpenAPI document describes: whatever an admin's browser (or a
script with an admin's API key) sends to any page, no answer is a server error. Field names come from the
templates' own forms; values are arbitrary text the edge lets through, numbers, or nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.routing import Rule

from closeloop.demo import load_demo
from closeloop.system import build_system
from services.dispatch.models import Delivery
from services.followup import service as followup_service
from services.survey.models import outbox as survey_outbox
from shared.principal import Role
from tests.conftest import make_settings, wait_for
from tests.fuzz.test_openapi_fuzz import _FORM_TEXT, _STORABLE, EXAMPLES, FUZZ_SETTINGS, _postgres_database

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
FIELD_NAMES = sorted(
    {
        name
        for template in [*ROOT.glob("services/*/templates/**/*.html"), *ROOT.glob("shared/**/*.html")]
        for name in re.findall(r'name="([a-z_]+)"', template.read_text())
    }
    - {"csrf_token"}
)
# JSON APIs are fuzzed from their OpenAPI documents; the signed webhooks have fuzz tests of their own.
_NOT_PAGES = re.compile(r"^/(v1|webhooks|openapi|static)/|^/(metrics|healthz|readyz)$")


class Pages:
    """The running system with the demo's data, each page route with a staff client, and ids that exist."""

    def __init__(self, system: Any, key: str) -> None:
        self.routes: list[tuple[Any, Rule, str]] = []
        for app in system.apps.values():
            client = app.test_client()
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
            for rule in app.url_map.iter_rules():
                if not _NOT_PAGES.search(rule.rule):
                    methods = sorted((rule.methods or set()) & {"GET", "POST"})
                    self.routes += [(client, rule, method) for method in methods]
        followup = system.apps["followup"].test_client()
        followup.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        hook = {"url": "http://127.0.0.1:9/hook", "event_types": ["followup.opened"]}
        endpoint = followup.post("/v1/webhook-endpoints", json=hook).get_json()
        with system.runtimes["survey"].database.transaction() as session:
            tokens = [
                row.payload["data"]["message"]["answer_url"].rsplit("/", 1)[1]
                for row in session.execute(select(survey_outbox.c.payload))
                if row.payload["type"] == "invitation.requested"
            ]
        with system.runtimes["dispatch"].database.transaction() as session:
            deliveries = list(session.scalars(select(Delivery.id)))
        self.ids: dict[str, list[str]] = {
            "task_id": [task["id"] for task in followup.get("/v1/tasks").get_json()],
            "token": tokens,
            "delivery_id": deliveries,
            "endpoint_id": [endpoint["id"]],
            "key_id": [api_key.id for api_key in system.runtimes["followup"].identity.list_api_keys()],
        }


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    with _postgres_database() as url:
        system = build_system(make_settings(url, webhooks_allow_private=True))
        system.start()
        try:
            load_demo(system)
            followup = system.runtimes["followup"]
            wait_for(lambda: followup_service.list_tasks(followup).total, 60, "the demo's first task")
            _, key = followup.identity.create_api_key("page fuzzing", Role.ADMIN, "tests")
            yield Pages(system, key)
        finally:
            system.stop()


_PATH_CHARACTERS = _STORABLE.filter(lambda character: character not in "/?#%")
_VALUES = st.one_of(
    _FORM_TEXT,
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["", "0", "10", "on", "true", "email", "sms", "open", "resolved", "en", "tr"]),
)


def test_no_page_answers_a_server_error_whatever_its_form_or_query(pages: Pages):
    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 15)
    @given(data=st.data())
    def answered(data: st.DataObject) -> None:
        client, rule, method = data.draw(st.sampled_from(pages.routes))
        path = rule.rule
        for argument in rule.arguments:
            known = pages.ids.get(argument) or [uuid.uuid4().hex]
            value = data.draw(st.one_of(st.sampled_from(known), st.text(_PATH_CHARACTERS, min_size=1)))
            path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", lambda _match, value=value: value, path)
        fields = data.draw(st.dictionaries(st.sampled_from(FIELD_NAMES), _VALUES, max_size=6))
        if method == "GET":
            response = client.get(path, query_string=fields)
        else:
            response = client.post(path, data=fields)
        assert response.status_code < 500, f"{method} {path} {fields}: {response.status_code}"

    answered()
