"""The default English analyzer calls VADER and TextBlob through faster paths; the scores must not move."""

from __future__ import annotations

import pytest

from services.sentiment.analysis.english import _pattern_sentiment, _vader

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


def test_loaded_textblob_lexicon_scores_like_the_library() -> None:
    fast, stock = _pattern_sentiment(), _pattern_sentiment(stock=True)
    for comment in COMMENTS:
        assert tuple(fast(comment)) == tuple(stock(comment))
        assert fast(comment).assessments == stock(comment).assessments
