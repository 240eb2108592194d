"""The default English analyzer calls VADER and TextBlob through faster paths; the scores must not move."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from services.sentiment.analysis import analyze, analyze_batch
from services.sentiment.analysis.english import _pattern_sentiment, _vader

# What the light tier said before its speed-ups (main at 2d9f80d, before issue 20's), for 563 texts: the
# first 300 of bench/sentiment_bench.py's throughput texts (VADER's held-out tweets and movie snippets,
# no hint), every third NPS development comment (bench/data/nps_comments.csv, with its survey's
# language) and every fourth of bench/data/turkish_comments.tsv (hint "tr"). Exact floats.
RECORDED = Path(__file__).parent / "data" / "light_tier_outputs.json"


@cache
def _recorded() -> list[dict]:
    return json.loads(RECORDED.read_text(encoding="utf-8"))

COMMENTS = [
    "The support agent was not helpful at all",
    "Delivery was fast and the agent was lovely!!! :)",
    "NOT happy. The refund is still missing, but the staff were kind of nice",
    "Terribly slow... never ordering again",
    "Great product 👍 but the box was damaged 😞",
    "  leading and trailing spaces  ",
    "",
]


@pytest.mark.parametrize("customer_service", [False, True])
def test_fast_vader_scores_like_the_library(customer_service: bool) -> None:
    fast, stock = _vader(customer_service), _vader(customer_service, stock=True)
    assert [fast.polarity_scores(c) for c in COMMENTS] == [stock.polarity_scores(c) for c in COMMENTS]


@pytest.mark.parametrize("customer_service", [False, True])
def test_fast_vader_scores_recorded_texts_like_the_library(customer_service: bool) -> None:
    fast, stock = _vader(customer_service), _vader(customer_service, stock=True)
    for text in [case["text"] for case in _recorded()] + NEGATIONS_AND_IDIOMS:
        assert fast.polarity_scores(text) == stock.polarity_scores(text), text


# What the fast VADER's own negation and idiom checks read: negations up to three words before a
# lexicon word, "never so", "without doubt", idioms, boosters, near the start and end of a comment.
NEGATIONS_AND_IDIOMS = [
    "not good", "Not GOOD at all", "isn't bad", "never so happy", "never this good", "without doubt great",
    "without any doubt great", "the bomb", "kind of good", "sort of bad", "cut the mustard", "nope, nice",
    "I can't say it was not good", "wasnt nice", "hand to mouth", "back handed compliment", "bad ass",
    "yeah right good", "good, but never so bad", "no good", "no, not really good", "at least ok",
    "it mayn't be good", "it mayn't really be good", "it mayn't be very very good", "my food was the bomb",
    "my food was the shit", "the food was to die for", "my day was kind of good",
    "the staff was sort of rude",
    "they are bad ass people", "the delivery was a kiss of death", "we were never so very happy",
    "it was a bad ass day", "i waited at the bus stop alone", "we felt a beating heart",
    "it is so bad ass here",
]


def test_loaded_textblob_lexicon_scores_like_the_library() -> None:
    fast, stock = _pattern_sentiment(), _pattern_sentiment(stock=True)
    for comment in COMMENTS:
        assert tuple(fast(comment)) == tuple(stock(comment))
        assert fast(comment).assessments == stock(comment).assessments


TOKENIZER_CASES = [
    *COMMENTS,
    "a\n\nb",
    "x\r\ny",
    "U.S. is ok. Mr. Smith... fine!!",
    "(!) wow :) : ) ;-) o.O >.> <3 ♥",
    "\"quoted\" 'single' it's, e.g. etc. a.b.c.",
    "“fancy” ‘q’ don’t 'd 'm n't",
    "end.\n\n\nstart ... ' (yes) [no] {maybe}?!",
]


def test_fast_textblob_tokenizer_splits_like_the_library() -> None:
    from textblob.en import parser

    fast = _pattern_sentiment().tokenizer
    for text in [*TOKENIZER_CASES, *(case["text"] for case in _recorded())]:
        assert fast(text) == parser.find_tokens(text)


def test_light_tier_outputs_are_what_they_were_before_the_speed_ups() -> None:
    for case in _recorded():
        assert vars(analyze(case["text"], language=case["hint"])) == case["expected"], case["text"]


def test_light_tier_batch_outputs_are_what_they_were_before_the_speed_ups() -> None:
    unhinted = [case for case in _recorded() if case["hint"] is None]
    results = analyze_batch([case["text"] for case in unhinted])
    assert [vars(result) for result in results] == [case["expected"] for case in unhinted]
