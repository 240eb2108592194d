"""How NPS comments as customers write them are read: language hints, short answers, complaints without
sentiment words, sarcasm, double negation, verdicts after "but"/"ama", suggestions."""

from __future__ import annotations

import pytest

from services.sentiment.analysis import analyze, detect_language
from services.sentiment.analysis.comments import fraction_feeling, short_answer_polarity
from services.sentiment.service import language_hint


def test_turkish_without_turkish_letters_is_turkish() -> None:
    assert detect_language("siparisim hala gelmedi") == "tr"
    assert detect_language("excel aktarma eklenebilir", hint="tr") == "tr"
    assert analyze("siparisim hala gelmedi", language="en").language == "tr"


def test_hint_is_taken_when_the_text_says_nothing_clear() -> None:
    assert detect_language("ok") == "unknown"
    assert detect_language("ok", hint="tr") == "tr"
    assert detect_language("9/10", hint="en") == "en"


def test_detection_wins_over_the_hint_when_the_text_clearly_says_otherwise() -> None:
    assert analyze("Kargo çok geç geldi, hiç memnun kalmadım", language="en").language == "tr"
    assert analyze("The delivery was late and the box was damaged", language="tr").language == "en"
    assert analyze("Das war wirklich gut, danke", language="en").language == "unsupported"


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("9/10", "en", "positive"),
        ("2/10", "tr", "negative"),
        ("5/10", "en", "neutral"),
        ("👍", "tr", "positive"),
        ("👎", "en", "negative"),
        ("so-so", "en", "neutral"),
        ("idare eder", "tr", "neutral"),
        ("Harika", "tr", "positive"),
        ("Useless", "en", "negative"),
        ("nightmare.", "en", "negative"),
        ("buyer beware.", "en", "negative"),
        ("wow!", "en", "positive"),
    ],
)
def test_short_answer_is_scored_when_the_hint_gives_the_language(
    text: str, language: str, label: str
) -> None:
    analysis = analyze(text, language=language)
    assert (analysis.language, analysis.label) == (language, label)


def test_short_answer_without_a_hint_stays_unknown() -> None:
    assert analyze("👍").label == "unscored"


def test_fraction_reads_as_a_score_out_of_its_scale() -> None:
    assert [fraction_feeling(t) for t in ("10/10", "3/5", "1/5", "no score")] == [1.0, 0.0, -1.0, None]
    assert short_answer_polarity("9/10 would recommend") is None  # words: the analyzer reads it


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Two weeks and the replacement never came", "en"),
        ("Still waiting for someone to get back to me", "en"),
        ("Had to call three times to get the same answer", "en"),
        ("Nobody called back like they promised", "en"),
        ("Teknisyen gelmedi, arayan da olmadı", "tr"),
        ("Geri dönüş yapacağız dediler, kimse aramadı", "tr"),
        ("Aynı sorun için üç kez aramak zorunda kaldım", "tr"),
    ],
)
def test_unmet_expectation_without_sentiment_words_reads_negative(text: str, language: str) -> None:
    assert analyze(text, language=language).label == "negative"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wonderful, on hold for an hour again", "en"),
        ("Great job losing my package for the second time", "en"),
        ("Harika, yine bir saat beklemedeyim", "tr"),
        ("Mükemmel hizmet, üç gündür hat yok", "tr"),
    ],
)
def test_sarcasm_reads_negative(text: str, language: str) -> None:
    assert analyze(text, language=language).label == "negative"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Could not have asked for more", "en"),
        ("Can't complain, they sorted it quickly", "en"),
        ("Hiçbir eksiği yok", "tr"),
        ("Şikayetim yok", "tr"),
    ],
)
def test_praise_by_double_negation_reads_positive(text: str, language: str) -> None:
    assert analyze(text, language=language).label == "positive"


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("Delivery was late but the product is excellent", "en", "positive"),
        ("The product is great but delivery took three weeks", "en", "negative"),
        ("Kargo geç geldi ama ürün mükemmel", "tr", "positive"),
        ("Ürün güzel ama teslimat üç hafta sürdü", "tr", "negative"),
    ],
)
def test_mixed_comment_follows_the_verdict_after_but(text: str, language: str, label: str) -> None:
    assert analyze(text, language=language).label == label


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("It would be nice to have a dark mode", "en"),
        ("Please add more payment options", "en"),
        ("Karanlık mod olsa iyi olur", "tr"),
        ("Daha fazla ödeme seçeneği eklenebilir", "tr"),
    ],
)
def test_suggestion_reads_neutral(text: str, language: str) -> None:
    assert analyze(text, language=language).label == "neutral"


def test_locale_gives_the_hint_only_for_a_scored_language() -> None:
    assert [language_hint(locale) for locale in ("tr-TR", "en_GB", "de-DE", "")] == ["tr", "en", None, None]
