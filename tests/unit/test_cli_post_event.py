"""``closeloop post-event``: where it posts (the running process's address, a base URL or a full one) and
with which secret."""

from __future__ import annotations

import json

import pytest
import responses
from standardwebhooks.webhooks import Webhook

from closeloop.cli import _post_event, event_intake_url
from shared.settings import Settings

ERP_SECRET = "whsec_dGhlLWVycC1zb3VyY2Utc2VjcmV0LTMyLWJ5dGVzISE="


def test_without_a_url_it_posts_to_the_running_process_by_its_port():
    assert event_intake_url(Settings.from_env({"PORT": "8080"}), None) == "http://127.0.0.1:8080/v1/events"


def test_without_a_url_it_posts_to_the_public_base_url():
    settings = Settings.from_env({"PUBLIC_BASE_URL": "https://feedback.example.com/"})
    assert event_intake_url(settings, None) == "https://feedback.example.com/v1/events"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001/v1/events"),
        ("http://127.0.0.1:8001/", "http://127.0.0.1:8001/v1/events"),
        ("http://127.0.0.1:8001/v1/events", "http://127.0.0.1:8001/v1/events"),
        ("http://gateway/survey/v1/events", "http://gateway/survey/v1/events"),
    ],
)
def test_a_base_url_gets_the_intakes_path_and_a_full_url_is_kept(url, expected):
    assert event_intake_url(Settings(), url) == expected


@responses.activate
def test_a_source_posts_to_its_own_intake_signed_with_its_own_secret(tmp_path):
    settings = Settings.from_env(
        {"CLOSELOOP_SOURCES": "erp:standard", "CLOSELOOP_SOURCE_ERP_SECRET": ERP_SECRET, "PORT": "8001"}
    )
    event_file = tmp_path / "purchase.json"
    event_file.write_text(json.dumps({"id": "order-1", "type": "purchase.completed"}))
    responses.post("http://127.0.0.1:8001/v1/sources/erp/events", status=202, json={"decision": "invited"})

    assert _post_event(settings, event_file, None, "erp") == 0

    sent = responses.calls[0].request
    Webhook(ERP_SECRET).verify(sent.body, dict(sent.headers))


def test_an_unknown_source_is_refused_before_posting(tmp_path, capsys):
    event_file = tmp_path / "purchase.json"
    event_file.write_text("{}")
    assert _post_event(Settings(), event_file, None, "erp") == 2
    assert "no standard source" in capsys.readouterr().err
