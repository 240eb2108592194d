"""Net Promoter Score: the category of a score and the score of many; the one home of the 0-6 rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# The bounds of the categories, for code that counts them where it cannot call nps_category (SQL).
DETRACTOR_MAX = 6
PROMOTER_MIN = 9


class NpsCategory(StrEnum):
    DETRACTOR = "detractor"
    PASSIVE = "passive"
    PROMOTER = "promoter"


def nps_category(score: int) -> NpsCategory:
    """0-6 detractor, 7-8 passive, 9-10 promoter."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0 to 10, not {score}")
    if score <= DETRACTOR_MAX:
        return NpsCategory.DETRACTOR
    return NpsCategory.PASSIVE if score < PROMOTER_MIN else NpsCategory.PROMOTER


@dataclass(frozen=True)
class NpsSummary:
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps(self) -> float | None:
        """Promoters' share minus detractors' share, in points from -100 to 100; None without responses."""
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)


def nps_summary(scores: Iterable[int]) -> NpsSummary:
    counts = {category: 0 for category in NpsCategory}
    for score in scores:
        counts[nps_category(score)] += 1
    return NpsSummary(
        sum(counts.values()),
        counts[NpsCategory.PROMOTER],
        counts[NpsCategory.PASSIVE],
        counts[NpsCategory.DETRACTOR],
    )
