"""Reading replies to the NPS question as people write them, in English and Turkish."""

from __future__ import annotations

import pytest

from services.survey.answers import ReadAnswer, Reading, read_answer, reprompt_text
from shared.sms import sms_segments

S, C, OUT, AMB, EMPTY = Reading.SCORE, Reading.COMMENT, Reading.OUT_OF_RANGE, Reading.AMBIGUOUS, Reading.EMPTY


@pytest.mark.parametrize(
    ("body", "score", "comment"),
    [
        ("9", 9, None),
        ("0", 0, None),
        ("10", 10, None),
        ("  7  ", 7, None),
        ("09", 9, None),
        ("9!!", 9, None),
        ("10!", 10, None),
        ("10/10", 10, None),
        ("10 / 10", 10, None),
        ("9/10 loved it", 9, "loved it"),
        ("9/10, loved it", 9, "loved it"),
        ("8 out of 10", 8, None),
        ("8 of 10 - delivery was slow", 8, "delivery was slow"),
        ("I'd say 8", 8, None),
        ("I’d say 8", 8, None),
        ("i would say 7, the app is clunky", 7, "the app is clunky"),
        ("I give you a 9", 9, None),
        ("I'd rate it 9 out of 10, loved it", 9, "loved it"),
        ("Score: 6", 6, None),
        ("maybe 5", 5, None),
        ("9, great staff", 9, "great staff"),
        ("3 the agent was rude", 3, "the agent was rude"),
        ("9 - friendly and fast", 9, "friendly and fast"),
        ("great staff, 9", 9, "great staff"),
        ("Loved it 10/10", 10, "Loved it"),
        ("great staff, I'd give you a 9", 9, "great staff"),
        ("eight", 8, None),
        ("Eight.", 8, None),
        ("EIGHT", 8, None),
        ("eight, lovely staff", 8, "lovely staff"),
        ("nine out of ten", 9, None),
        ("I'd say ten", 10, None),
        ("zero", 0, None),
        ("9\ufe0f\u20e3", 9, None),
        ("\U0001f51f", 10, None),
        ("sekiz", 8, None),
        ("Sekiz", 8, None),
        ("dört", 4, None),
        ("dort", 4, None),
        ("DÖRT", 4, None),
        ("üç", 3, None),
        ("altı", 6, None),
        ("ALTI", 6, None),
        ("sıfır", 0, None),
        ("on", 10, None),
        ("On.", 10, None),
        ("on numara", 10, None),
        ("On numara beş yıldız", 10, None),
        ("on numara, çok memnun kaldım", 10, "çok memnun kaldım"),
        ("8 puan", 8, None),
        ("puanım 9", 9, None),
        ("Puanım: 7, kargo geç geldi", 7, "kargo geç geldi"),
        ("bence 9", 9, None),
        ("9 veriyorum", 9, None),
        ("10 üzerinden 9", 9, None),
        ("sekiz, personel çok ilgiliydi", 8, "personel çok ilgiliydi"),
        ("İyi hizmet 9", 9, "İyi hizmet"),
        ("I would give you a solid 8", 8, None),
        ("10!!! best ever", 10, "best ever"),
        ("Ten out of ten!", 10, None),
        ("0. never again", 0, "never again"),
        ("zero, never again", 0, "never again"),
        ("Sekiz puan veririm", 8, None),
        ("Teşekkürler, 10", 10, "Teşekkürler"),
        ("8/10 would buy again", 8, "would buy again"),
        ("000000009", 9, None),
    ],
)
def test_a_reply_with_one_score_is_read_as_that_score_and_its_comment(body, score, comment):
    assert read_answer(body) == ReadAnswer(S, score, comment)


@pytest.mark.parametrize(
    ("body", "comment"),
    [
        ("great staff", "great staff"),
        ("😀", "😀"),
        ("👍👍", "👍👍"),
        ("❤️", "❤️"),
        ("One of the best shops in town", "One of the best shops in town"),
        ("on time delivery, thanks", "on time delivery, thanks"),
        ("waited 3 days for a reply", "waited 3 days for a reply"),
        ("who is this?", "who is this?"),
        ("bir numara", "bir numara"),  # "number one": praise, not a score of 1
        ("çok iyi", "çok iyi"),
        # Other scripts' digits and superscripts are not numerals here.
        ("٩", "٩"),
        ("９", "９"),
        ("²", "²"),
    ],
)
def test_a_reply_without_a_number_is_a_comment_still_missing_its_score(body, comment):
    assert read_answer(body) == ReadAnswer(C, None, comment)


@pytest.mark.parametrize(
    "body",
    [
        "eleven",
        "Eleven!",
        "11",
        "100",
        "11/10",
        "a million",
        "on bir",
        "yüz",
        "1000",
        "-1",
        "100%",
        "1" * 5000,
    ],
)
def test_a_number_outside_0_to_10_is_no_score(body):
    answer = read_answer(body)
    assert answer.score is None and answer.reading in (OUT, AMB) and answer.needs_a_score


@pytest.mark.parametrize(
    "body",
    ["7-8", "7 or 8", "between 7 and 8", "seven or eight", "8.5", "8,5", "5 stars", "5 yıldız", "7 ya da 8"],
)
def test_two_scores_half_scores_and_stars_are_ambiguous(body):
    assert read_answer(body) == ReadAnswer(AMB, None, read_answer(body).comment)
    assert read_answer(body).needs_a_score


@pytest.mark.parametrize("body", ["", "   ", "...", "?!"])
def test_an_empty_reply_is_empty(body):
    assert read_answer(body) == ReadAnswer(EMPTY)


def test_the_reprompt_asks_for_the_missing_score_or_a_readable_one_in_the_customers_language():
    assert "Acme" in reprompt_text(read_answer("great staff"), "en", "Acme")
    assert "0" in reprompt_text(read_answer("eleven"), "en", "Acme")
    assert "Acme" in reprompt_text(read_answer("harika"), "tr-TR", "Acme")
    assert "Lütfen" in reprompt_text(read_answer("on bir"), "tr", "Acme")


@pytest.mark.parametrize("locale", ["en", "tr"])
@pytest.mark.parametrize("body", ["great staff", "eleven"])
def test_the_reprompt_fits_one_sms_and_keeps_the_brand_as_written(locale, body):
    assert sms_segments(reprompt_text(read_answer(body), locale, "Acme")) == 1
    # Our Turkish words may lose their marks to stay in GSM-7; a brand's name never does.
    assert "Şık" in reprompt_text(read_answer("great staff"), locale, "Şık")


@pytest.mark.parametrize(
    "body", ["9 " * 800, "great staff " * 400 + "9", "7-" * 2000, "i would say " * 400, "😀" * 1600]
)
def test_long_replies_are_read_without_failing(body):
    assert read_answer(body).reading in set(Reading)
