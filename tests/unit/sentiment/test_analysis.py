"""Behaviour of the sentiment analysis domain: labels, languages, key phrases, batch scoring."""

from __future__ import annotations

import pytest

from services.sentiment.analysis import (
    Analysis,
    EnglishBlendAnalyzer,
    TurkishLexiconAnalyzer,
    analyze,
    analyze_batch,
    detect_language,
    label_for,
)


def test_negated_helpful_is_negative() -> None:
    assert analyze("The support agent was not helpful at all").label == "negative"


def test_fast_delivery_and_lovely_agent_is_positive() -> None:
    assert analyze("Delivery was fast and the agent was lovely").label == "positive"


def test_plain_statement_is_neutral() -> None:
    assert analyze("I ordered the blue one on Monday").label == "neutral"


def test_english_comment_is_scored_by_the_fitted_blend() -> None:
    analysis = analyze("Terrible service, the package never arrived")
    assert (analysis.language, analysis.analyzer, analysis.label) == ("en", "en-blend-v1+nps-v1", "negative")
    assert -1.0 <= analysis.polarity <= 1.0 and 0.0 <= analysis.subjectivity <= 1.0


@pytest.mark.parametrize(
    ("comment", "label"),
    [
        ("Kargo çok geç geldi, hiç memnun kalmadım", "negative"),
        ("Ürün harika, çok teşekkürler", "positive"),
        ("beğenmedim", "negative"),
        ("Müşteri hizmetleri yardımcı olmadılar", "negative"),
        ("Hiçbir sorun yaşamadım", "positive"),
        ("Kargo gelmedi", "negative"),
        ("urun cok guzel tesekkurler", "positive"),
    ],
)
def test_turkish_comment_gets_expected_label(comment: str, label: str) -> None:
    analysis = analyze(comment)
    assert (analysis.language, analysis.analyzer, analysis.label) == ("tr", "tr-lexicon-v1+nps-v1", label)


def test_turkish_not_bad_is_not_negative() -> None:
    assert analyze("kötü değil").label != "negative"


def test_turkish_intensifier_strengthens_praise() -> None:
    scorer = TurkishLexiconAnalyzer()
    assert scorer.score("çok iyi")[0] > scorer.score("iyi")[0] > scorer.score("biraz iyi")[0] > 0


def test_turkish_verbal_noun_is_not_read_as_negation() -> None:
    # "ödeme" (payment) ends like the negative "-me"; paying is not a complaint.
    assert TurkishLexiconAnalyzer().score("Ödemeyi dün yaptım")[0] == 0.0


@pytest.mark.parametrize(
    ("comment", "language"),
    [
        ("The refund took three weeks", "en"),
        ("great!", "en"),
        ("Siparişim hala gelmedi", "tr"),
        ("Harika!", "tr"),
        ("ok", "unknown"),
        ("👍", "unknown"),
        ("123", "unknown"),
        ("Sehr gut, danke für die schnelle Lieferung", "unsupported"),
        ("El pedido llegó muy tarde", "unsupported"),
        ("La livraison était très rapide", "unsupported"),
    ],
)
def test_language_is_detected_or_admitted_unknown(comment: str, language: str) -> None:
    assert detect_language(comment) == language


@pytest.mark.parametrize("comment", ["Das Produkt ist nicht gut", "ok", "👍👍", "12345"])
def test_unsupported_or_unknown_text_is_left_unscored(comment: str) -> None:
    analysis = analyze(comment)
    assert analysis.language in {"unsupported", "unknown"}
    assert (analysis.polarity, analysis.subjectivity, analysis.label, analysis.key_phrases) == (
        None,
        None,
        "unscored",
        [],
    )


def test_key_phrases_name_the_topics_without_stop_words() -> None:
    phrases = analyze("The refund took three weeks and the delivery was late again").key_phrases
    assert "refund" in phrases and "delivery" in phrases
    words = {word for phrase in phrases for word in phrase.split()}
    assert not words & {"the", "and", "was", "took", "again", "late", "three"}


def test_key_phrases_keep_multi_word_topics() -> None:
    assert "support agent" in analyze("The support agent was rude").key_phrases


def test_turkish_key_phrases_skip_verbs_and_sentiment_words() -> None:
    phrases = analyze("Müşteri hizmetleri çok kaba, iade talebim hala sonuçlanmadı").key_phrases
    assert "müşteri hizmetleri" in phrases and "iade talebim" in phrases
    assert not any(word in {"çok", "kaba", "hala", "sonuçlanmadı"} for p in phrases for word in p.split())


def test_key_phrases_can_be_skipped() -> None:
    assert analyze("The refund was slow", key_phrases=False).key_phrases == []


def test_batch_equals_one_by_one() -> None:
    comments = [
        "The support agent was not helpful at all",
        "Ürün harika, çok teşekkürler",
        "ok",
        "Sehr gut",
        "The support agent was not helpful at all",
        "",
    ]
    assert analyze_batch(comments) == [analyze(comment) for comment in comments]


def test_batch_repeats_do_not_share_key_phrase_lists() -> None:
    first, second = analyze_batch(["Refund please", "Refund please"])
    assert first.key_phrases is not second.key_phrases


@pytest.mark.parametrize(
    "comment",
    ["Great!", "meh", "It was fine I guess", "Awful, never again", "Kargo biraz gecikti", "fena değil"],
)
def test_label_agrees_with_the_analyzers_thresholds(comment: str) -> None:
    analysis = analyze(comment)
    analyzer = EnglishBlendAnalyzer() if analysis.language == "en" else TurkishLexiconAnalyzer()
    assert analysis.polarity is not None
    assert analysis.label == label_for(analysis.polarity, analyzer.thresholds)


def test_label_thresholds_are_strict_at_the_boundaries() -> None:
    assert [label_for(p, (-0.1, 0.1)) for p in (-0.2, -0.1, 0.0, 0.1, 0.2)] == [
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
    ]


def test_fitted_thresholds_leave_a_neutral_band() -> None:
    low, high = EnglishBlendAnalyzer().thresholds
    assert -1.0 < low <= high < 1.0


def test_analysis_is_immutable() -> None:
    analysis = analyze("Great service")
    assert isinstance(analysis, Analysis)
    with pytest.raises(AttributeError):
        analysis.label = "negative"  # type: ignore[misc]
