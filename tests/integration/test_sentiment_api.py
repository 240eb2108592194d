"""The sentiment service's HTTP API and its consumer."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from services.sentiment import service as sentiment_service
from services.sentiment.app import create_app
from services.sentiment.models import outbox
from shared.events import new_event, parse_event
from tests.conftest import CheckedThread, make_settings, migrated_service, staff_client, waits_for_a_lock


@pytest.fixture
def sentiment(sqlite_url):
    with migrated_service("sentiment", make_settings(sqlite_url)) as runtime:
        yield runtime


@pytest.fixture
def client(sentiment):
    return staff_client(create_app(sentiment), sentiment.identity)


def test_analyze_scores_plain_negative_feedback(client):
    result = client.post("/v1/analyze", json={"text": "The support agent was not helpful at all"}).get_json()
    assert result["label"] == "negative" and result["polarity"] < 0
    assert result["language"] == "en"


def test_batch_keeps_the_order_of_its_texts(client):
    texts = ["Great service, thank you!", "Kargo çok geç geldi, hiç memnun kalmadım", "Das war gut"]
    results = client.post("/v1/analyze/batch", json={"texts": texts}).get_json()["results"]
    assert [r["language"] for r in results] == ["en", "tr", "unsupported"]
    assert [r["label"] for r in results] == ["positive", "negative", "unscored"]


def test_batch_over_a_thousand_texts_is_refused_with_a_field_error(client):
    response = client.post("/v1/analyze/batch", json={"texts": ["ok"] * 1001})
    assert response.status_code == 422
    assert "texts" in response.get_json()["errors"]


def test_language_hint_lets_a_short_answer_be_scored(client):
    assert client.post("/v1/analyze", json={"text": "9/10"}).get_json()["label"] == "unscored"
    result = client.post("/v1/analyze", json={"text": "9/10", "language": "en"}).get_json()
    assert (result["language"], result["label"]) == ("en", "positive")


def test_batch_takes_one_language_hint_for_all_its_texts(client):
    body = {"texts": ["👍", "siparisim hala gelmedi", "The parcel never came"], "language": "tr"}
    results = client.post("/v1/analyze/batch", json=body).get_json()["results"]
    assert [(r["language"], r["label"]) for r in results] == [
        ("tr", "positive"),
        ("tr", "negative"),
        ("en", "negative"),
    ]


@pytest.mark.parametrize("path", ["/v1/analyze", "/v1/analyze/batch"])
def test_unknown_language_hint_is_refused_naming_the_field(client, path):
    body = {"text": "Great"} if path == "/v1/analyze" else {"texts": ["Great"]}
    response = client.post(path, json={**body, "language": "de"})
    assert response.status_code == 422
    assert "language" in response.get_json()["errors"]


def test_analysis_names_the_topics_of_the_comment(client):
    result = client.post("/v1/analyze", json={"text": "The courier was rude and the parcel was damaged"})
    assert result.get_json()["topics"] == ["delivery", "support", "product_quality"]


def test_empty_text_is_refused(client):
    response = client.post("/v1/analyze", json={"text": ""})
    assert response.status_code == 422 and "text" in response.get_json()["errors"]


def _submitted(customer_id: str = "c-1") -> dict:
    return new_event(
        "response.submitted",
        {
            "response_id": "r-1",
            "invitation_id": "i-1",
            "revision": 1,
            "score": 2,
            "comment": "Two weeks and the replacement never came",
            "locale": "en",
            "touchpoint": "purchase",
            "channel": "email",
            "customer": {"customer_id": customer_id},
            "submitted_at": "2026-11-25T10:00:00+00:00",
        },
    )


def test_submitted_response_is_passed_on_scored_once(sentiment):
    envelope = _submitted()
    sentiment_service.score_response(sentiment, envelope)
    sentiment_service.score_response(sentiment, envelope)

    with sentiment.database.transaction() as session:
        # One event, one outbox row per consumer (followup and survey).
        [row] = session.execute(select(outbox.c.payload).where(outbox.c.consumer == "followup")).all()
    _, scored = parse_event(row.payload, "response.scored")
    assert scored["response_id"] == "r-1" and scored["score"] == 2
    assert scored["sentiment"]["label"] == "negative"
    assert scored["sentiment"]["topics"] == ["refund"]


ERASED_ID = "cust-erased-0001"


@pytest.fixture
def sentiment_on_postgres(postgres_url):
    with migrated_service("sentiment", make_settings(postgres_url)) as runtime:
        yield runtime


def _erased(customer_id: str) -> dict:
    return new_event(
        "customer.erased",
        {"customer_id": customer_id, "invitation_ids": [], "response_ids": ["r-1"], "addresses": []},
    )


def _events_naming(runtime, customer_id: str) -> int:
    with runtime.database.transaction() as session:
        payloads = session.execute(select(outbox.c.payload)).scalars()
        return sum(customer_id in json.dumps(payload) for payload in payloads)


def test_an_erasure_waits_for_a_comment_being_scored_and_forgets_its_event(
    sentiment_on_postgres, monkeypatch
):
    """Seen in the Node client's test: a comment being scored when its customer was erased left its
    response.scored, comment and all, in the outbox after the erasure had deleted the others."""
    from services.sentiment import analysis, privacy

    runtime = sentiment_on_postgres
    scoring, release = threading.Event(), threading.Event()
    real_analyze = analysis.analyze

    def slow_analyze(*args, **kwargs):
        scoring.set()
        release.wait(timeout=60)
        return real_analyze(*args, **kwargs)

    monkeypatch.setattr(analysis, "analyze", slow_analyze)
    scorer = CheckedThread(sentiment_service.score_response, runtime, _submitted(ERASED_ID))
    scorer.start()
    assert scoring.wait(timeout=60)
    eraser = CheckedThread(privacy.erase_customer, runtime, _erased(ERASED_ID))
    eraser.start()
    try:
        waited = waits_for_a_lock(runtime.database.engine, eraser)
        assert waited, "the erasure did not wait for the scoring transaction"
    finally:
        release.set()
        scorer.join(timeout=60)
        eraser.join(timeout=60)
    assert scorer.failures == eraser.failures == []
    assert _events_naming(runtime, ERASED_ID) == 0


def test_a_comment_scored_while_its_customer_is_being_erased_is_dropped(sentiment_on_postgres):
    """The other order: the erasure has begun (its mark not yet committed) when the comment arrives."""
    from shared.consumers import record_erasure

    runtime = sentiment_on_postgres
    with runtime.unit_of_work() as erasure:
        record_erasure(erasure, ERASED_ID)
        scorer = CheckedThread(sentiment_service.score_response, runtime, _submitted(ERASED_ID))
        scorer.start()
        waited = waits_for_a_lock(runtime.database.engine, scorer)
        assert waited, "the comment was scored past an erasure under way"
    scorer.join(timeout=60)
    assert not scorer.is_alive() and scorer.failures == []
    assert _events_naming(runtime, ERASED_ID) == 0
