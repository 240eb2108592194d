"""English scoring: TextBlob and VADER alone (the baselines), and the blend of both that is the default.

TextBlob's PatternAnalyzer averages adjective scores and misses plain feedback ("The support agent was
not helpful at all" is 0.0); VADER handles negation and emphasis but reads "support" as praise. The
blend feeds both scores and a few surface features to a ridge regression fitted offline on
human-rated text (bench/fit_sentiment.py), with its label thresholds fitted alongside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

from services.sentiment.analysis import en_blend_params
from services.sentiment.analysis.scoring import CONVENTIONAL_THRESHOLDS, label_for

# Customer-service words VADER's lexicon lacks or misreads (its scale, -4..+4). "support" and "care"
# name departments in feedback ("the support agent", "customer care"), not approval.
CUSTOMER_SERVICE_VALENCES: dict[str, float] = {
    "support": 0.0, "care": 0.0, "late": -1.3, "slow": -1.3, "slowly": -1.1, "fast": 1.3, "quick": 1.2,
    "quickly": 1.0, "promptly": 1.3, "prompt": 1.2, "unhelpful": -1.8, "unresponsive": -1.7,
    "canceled": -1.0, "overcharged": -2.0, "hassle": -1.5, "seamless": 2.0, "smooth": 1.5,
    "smoothly": 1.5, "polite": 1.9, "knowledgeable": 1.8, "reliable": 1.7, "professional": 1.5,
    "expensive": -1.0, "overpriced": -1.8, "affordable": 1.3, "crashed": -1.7, "crashes": -1.7,
    "buggy": -1.8, "hassle-free": 2.0, "rude": -2.3, "faulty": -1.9, "incorrect": -1.5,
}


@cache
def _pattern_sentiment() -> Callable[[str], Any]:
    # textblob.en.sentiment is what TextBlob(text).sentiment runs underneath; calling it directly skips
    # building a Blob and the namedtuple class PatternAnalyzer creates on every call.
    from textblob.en import sentiment

    sentiment("warm up")  # loads the lexicon now rather than inside the first request
    return sentiment


@cache
def _vader(customer_service: bool) -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    if customer_service:
        # Each SentimentIntensityAnalyzer owns its lexicon dict, so this changes no other instance.
        vader.lexicon.update(CUSTOMER_SERVICE_VALENCES)
    return vader


class TextBlobAnalyzer:
    """TextBlob's PatternAnalyzer as it ships: polarity and subjectivity averaged over known words."""

    name = "textblob-0.20-pattern"
    thresholds = CONVENTIONAL_THRESHOLDS

    def __init__(self) -> None:
        self._sentiment = _pattern_sentiment()

    def score(self, text: str) -> tuple[float, float]:
        polarity, subjectivity = self._sentiment(text)[:2]
        return polarity, subjectivity

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)


class VaderAnalyzer:
    """VADER's compound score as it ships; subjectivity is the non-neutral share of the text."""

    name = "vader-3.3-compound"
    thresholds = CONVENTIONAL_THRESHOLDS

    def __init__(self, customer_service: bool = False) -> None:
        self._vader = _vader(customer_service)
        if customer_service:
            self.name = "vader-3.3-compound+cs-lexicon"

    def score(self, text: str) -> tuple[float, float]:
        scores = self._vader.polarity_scores(text)
        return scores["compound"], 1.0 - scores["neu"]

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)


def blend_features(
    vader_scores: dict[str, float], tb_polarity: float, tb_subjectivity: float, text: str
) -> list[float]:
    """The blend's inputs, in the order of en_blend_params.FEATURES. Shared with the fitting script so
    that what is fitted is exactly what runs."""
    compound = vader_scores["compound"]
    neutral = vader_scores["neu"]
    words = text.count(" ") + 1
    return [
        1.0,
        compound,
        vader_scores["pos"],
        vader_scores["neg"],
        neutral,
        tb_polarity,
        tb_subjectivity,
        compound * abs(compound),
        tb_polarity * tb_subjectivity,
        compound * tb_polarity,
        math.log1p(words),
        float(min(text.count("!"), 3)),
        float(min(text.count("?"), 3)),
        compound * neutral,
        tb_polarity * abs(tb_polarity),
        float((compound > 0.05) - (compound < -0.05)),
        float((tb_polarity > 0) - (tb_polarity < 0)),
    ]


FEATURE_NAMES: tuple[str, ...] = (
    "bias", "vader_compound", "vader_pos", "vader_neg", "vader_neu", "textblob_polarity",
    "textblob_subjectivity", "compound_signed_square", "polarity_x_subjectivity", "compound_x_polarity",
    "log_words", "exclamations", "questions", "compound_x_neu", "polarity_signed_square",
    "compound_sign", "polarity_sign",
)


class EnglishBlendAnalyzer:
    """The default English analyzer: a fitted linear blend of VADER (with customer-service words) and
    TextBlob plus surface features; polarity clipped to -1..1, subjectivity is TextBlob's."""

    def __init__(self, params: Any = en_blend_params) -> None:
        if tuple(params.FEATURES) != FEATURE_NAMES:
            raise ValueError("en_blend_params was fitted for other features; run bench/fit_sentiment.py")
        self.name: str = params.NAME
        self.thresholds: tuple[float, float] = tuple(params.THRESHOLDS)  # type: ignore[assignment]
        self._weights: tuple[float, ...] = tuple(params.WEIGHTS)
        self._vader = _vader(params.CUSTOMER_SERVICE_LEXICON)
        self._sentiment = _pattern_sentiment()

    def score(self, text: str) -> tuple[float, float]:
        tb_polarity, tb_subjectivity = self._sentiment(text)[:2]
        features = blend_features(self._vader.polarity_scores(text), tb_polarity, tb_subjectivity, text)
        polarity = sum(w * x for w, x in zip(self._weights, features, strict=True))
        return max(-1.0, min(1.0, polarity)), tb_subjectivity

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)
