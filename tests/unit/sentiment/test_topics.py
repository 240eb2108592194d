"""Topics: what a comment speaks of, from a configurable list of English and Turkish cues."""

from __future__ import annotations

import json

import pytest

from services.sentiment import analysis
from services.sentiment.analysis import analyze
from services.sentiment.analysis.topics import TopicTagger
from services.sentiment.runtime import LIGHT, MODEL, MODEL_SMALL, topic_tagger
from shared.settings import SENTIMENT_ANALYZERS
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("text", "language", "topics"),
    [
        ("The courier left my parcel in the rain", "en", ["delivery"]),
        ("Rude agent, and I was charged twice on my bill", "en", ["support", "billing"]),
        ("Kargo geç geldi ama fiyatı uygun", "tr", ["delivery", "price"]),
        ("faturam yanlis geldi", "tr", ["billing"]),
        ("Uygulama her ödemede çöküyor", "tr", ["billing", "website_app"]),
    ],
)
def test_comment_is_tagged_with_the_topics_it_speaks_of(text: str, language: str, topics: list[str]) -> None:
    assert analyze(text, language=language).topics == topics


def test_comment_about_nothing_in_particular_has_no_topic() -> None:
    assert analyze("Thanks, all good", language="en").topics == []


def test_unscored_comment_has_no_topic() -> None:
    assert analyze("Der Kurier war sehr unfreundlich").topics == []


def test_topic_list_comes_from_the_configured_file(tmp_path) -> None:
    path = tmp_path / "topics.json"
    path.write_text(json.dumps({"parking": {"en": ["park"], "tr": ["otopark"]}}), encoding="utf-8")

    tagger = topic_tagger(make_settings("sqlite://", sentiment_topics_file=str(path)))

    assert analyze("Nowhere to park", language="en", topics=tagger).topics == ["parking"]
    assert analyze("Otopark yoktu", language="tr", topics=tagger).topics == ["parking"]
    assert analyze("The courier was late", language="en", topics=tagger).topics == []


def test_without_a_topic_file_the_built_in_list_is_taken_at_the_first_comment() -> None:
    # The runtime holds None, which analyze() reads as the built-in list: nothing to load at start.
    tagger = topic_tagger(make_settings("sqlite://"))

    assert tagger is None
    assert analyze("The courier was late", language="en", topics=tagger).topics == ["delivery"]


def test_the_runtime_names_the_analysis_tiers_without_loading_it() -> None:
    assert (LIGHT, MODEL, MODEL_SMALL) == (analysis.LIGHT, analysis.MODEL, analysis.MODEL_SMALL)
    assert analysis.TIERS == SENTIMENT_ANALYZERS


def test_malformed_topic_file_is_refused(tmp_path) -> None:
    path = tmp_path / "topics.json"
    path.write_text(json.dumps({"parking": ["park"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="topic"):
        TopicTagger.from_file(path)
