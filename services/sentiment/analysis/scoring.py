"""What every analyzer offers, and how a polarity becomes a label."""

from __future__ import annotations

from typing import Protocol

NEGATIVE, NEUTRAL, POSITIVE, UNSCORED = "negative", "neutral", "positive", "unscored"

# The customary cut for VADER's compound and TextBlob's polarity, used by the baselines.
CONVENTIONAL_THRESHOLDS: tuple[float, float] = (-0.05, 0.05)


class Analyzer(Protocol):
    """Scores one language's text: polarity in -1..1, subjectivity in 0..1."""

    name: str
    thresholds: tuple[float, float]  # (negative below, positive above), part of the fitted model

    def score(self, text: str) -> tuple[float, float]: ...

    def label(self, polarity: float) -> str: ...


def label_for(polarity: float, thresholds: tuple[float, float]) -> str:
    """The label a polarity gets: negative strictly below the first threshold, positive strictly
    above the second, neutral in between (boundaries included)."""
    negative_below, positive_above = thresholds
    if polarity > positive_above:
        return POSITIVE
    if polarity < negative_below:
        return NEGATIVE
    return NEUTRAL
