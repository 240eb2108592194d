"""Survey keeps sentiment's reading of each response (response.scored) for the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

from services.survey.analytics.service import key_phrases, record_response_sentiment
from services.survey.models import Response
from shared.events import new_event

from .fakes import FakeSurveyUnitOfWork, fake_runtime


def scored(revision: int, sentiment: dict | None, response_id: str = "r1") -> dict:
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": "i1",
            "revision": revision,
            "score": 2,
            "comment": "text" if sentiment else None,
            "locale": "en",
            "touchpoint": "purchase",
            "channel": "sms",
            "customer": {"customer_id": "c1"},
            "submitted_at": "2026-03-02T10:00:00+00:00",
            "sentiment": sentiment,
        },
    )


def negative(*phrases: str) -> dict:
    return {"polarity": -0.8, "label": "negative", "language": "en", "key_phrases": list(phrases)}


def with_response() -> FakeSurveyUnitOfWork:
    uow = FakeSurveyUnitOfWork()
    now = datetime(2026, 3, 2, tzinfo=UTC)
    uow.responses.add(
        Response(
            id="r1",
            invitation_id="i1",
            customer_id="c1",
            score=2,
            comment="text",
            channel="sms",
            revision=2,
            submitted_at=now,
            updated_at=now,
        )
    )
    return uow


def test_the_label_polarity_and_key_phrases_are_kept_on_the_response():
    uow = with_response()

    record_response_sentiment(fake_runtime(uow), scored(1, negative("Rude  agent", "rude agent", "late")))

    kept = uow.sentiments.get("r1")
    assert (kept.revision, kept.label, kept.polarity, kept.language) == (1, "negative", -0.8, "en")
    assert uow.sentiments.key_phrases["r1"] == ["rude agent", "late"]


def test_an_older_revision_arriving_late_changes_nothing():
    uow = with_response()
    runtime = fake_runtime(uow)
    record_response_sentiment(runtime, scored(2, negative("rude")))

    record_response_sentiment(
        runtime, scored(1, {"label": "positive", "language": "en", "key_phrases": ["great"]})
    )

    assert uow.sentiments.get("r1").label == "negative"
    assert uow.sentiments.key_phrases["r1"] == ["rude"]


def test_a_later_revision_without_a_comment_clears_the_reading():
    uow = with_response()
    runtime = fake_runtime(uow)
    record_response_sentiment(runtime, scored(1, negative("rude")))

    record_response_sentiment(runtime, scored(2, None))

    assert (uow.sentiments.get("r1").revision, uow.sentiments.get("r1").label) == (2, None)
    assert uow.sentiments.key_phrases["r1"] == []


def test_an_unknown_response_is_ignored():
    uow = with_response()

    record_response_sentiment(fake_runtime(uow), scored(1, negative("x"), response_id="nobody"))

    assert uow.sentiments.rows == {}


def test_key_phrases_are_trimmed_lower_cased_distinct_and_at_most_twenty():
    assert key_phrases(["  Late   Delivery ", "late delivery", "", "   "]) == ["late delivery"]
    assert len(key_phrases([f"p{n}" for n in range(30)])) == 20
    assert len(key_phrases(["x" * 500])[0]) == 200
