"""The sentiment service's use case on an in-memory unit of work."""

from __future__ import annotations

from services.sentiment import service
from services.sentiment.runtime import SentimentRuntime
from shared.events import new_event
from shared.unit_of_work import InMemoryUnitOfWork
from tests.conftest import make_settings

SUBMITTED = {
    "response_id": "r1",
    "invitation_id": "i1",
    "revision": 1,
    "score": 2,
    "comment": "The technician never showed up and nobody called. Terrible service.",
    "locale": "en",
    "touchpoint": "support_call",
    "channel": "sms",
    "customer": {"customer_id": "c1", "external_id": "crm-1", "name": "Alan"},
    "submitted_at": "2026-11-25T10:00:00+00:00",
}


def runtime() -> tuple[SentimentRuntime, InMemoryUnitOfWork]:
    uow = InMemoryUnitOfWork("sentiment")
    return SentimentRuntime(make_settings("sqlite://"), lambda: uow), uow


def test_submitted_comment_is_passed_on_scored_with_the_response_unchanged():
    run, uow = runtime()
    service.score_response(run, new_event("response.submitted", SUBMITTED))

    [scored] = uow.emitted("response.scored")
    assert {key: value for key, value in scored.items() if key != "sentiment"} == SUBMITTED
    assert scored["sentiment"]["label"] == "negative" and scored["sentiment"]["language"] == "en"


def test_response_without_a_comment_is_passed_on_without_a_sentiment():
    run, uow = runtime()
    service.score_response(run, new_event("response.submitted", {**SUBMITTED, "comment": None}))

    [scored] = uow.emitted("response.scored")
    assert scored["sentiment"] is None


def test_redelivered_response_is_scored_once():
    run, uow = runtime()
    envelope = new_event("response.submitted", SUBMITTED)
    service.score_response(run, envelope)
    service.score_response(run, envelope)

    assert len(uow.emitted("response.scored")) == 1


def test_survey_locale_is_the_language_hint_for_a_short_answer():
    run, uow = runtime()
    submitted = {**SUBMITTED, "comment": "👍", "locale": "tr-TR"}
    service.score_response(run, new_event("response.submitted", submitted))

    [scored] = uow.emitted("response.scored")
    assert (scored["sentiment"]["language"], scored["sentiment"]["label"]) == ("tr", "positive")


def test_comment_in_another_language_than_the_survey_is_scored_in_its_own():
    run, uow = runtime()
    comment = "Teknisyen gelmedi, arayan da olmadı"
    service.score_response(run, new_event("response.submitted", {**SUBMITTED, "comment": comment}))

    [scored] = uow.emitted("response.scored")
    assert (scored["sentiment"]["language"], scored["sentiment"]["label"]) == ("tr", "negative")


def test_scored_sentiment_carries_the_comments_topics():
    run, uow = runtime()
    service.score_response(run, new_event("response.submitted", SUBMITTED))

    [scored] = uow.emitted("response.scored")
    assert scored["sentiment"]["topics"] == ["support"]
