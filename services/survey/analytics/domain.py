"""NPS figures from counts, with no I/O: the score, its 95% margin of error and the response rate.

Every figure is computed from five counts (responses, promoters, passives, detractors, invitations), which
the database sums; nothing here looks at a single response. A respondent is +1 (promoter), 0 (passive) or
-1 (detractor); the NPS is the mean of those scores in points, and its margin of error is the usual
normal approximation of that mean's 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

# A 95% interval of a mean under the normal approximation.
Z_95 = 1.96


class Dimension(StrEnum):
    """What a breakdown groups the responses by."""

    TOUCHPOINT = "touchpoint"
    CHANNEL = "channel"
    SEGMENT = "segment"  # one customer attribute (plan, region...) as it was when the survey was sent
    PERIOD = "period"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, from Monday
    MONTH = "month"


def net_promoter_score(promoters: int, detractors: int, responses: int) -> float | None:
    """Promoters' share minus detractors' share, in points (-100 to 100); None without responses."""
    if responses <= 0:
        return None
    return 100 * (promoters - detractors) / responses


def nps_margin_of_error(promoters: int, detractors: int, responses: int) -> float | None:
    """Half the width of the NPS's 95% confidence interval, in points; None without responses.

    With p and d the promoters' and detractors' shares, the +1/0/-1 scores have the mean p - d and the
    variance p + d - (p - d)^2; the mean of n of them has the variance var / n, so the margin is
    1.96 * sqrt(var / n), times 100 for points.
    """
    if responses <= 0:
        return None
    p, d = promoters / responses, detractors / responses
    variance = max(p + d - (p - d) ** 2, 0.0)  # never negative, but floats may round it a hair below 0
    return 100 * Z_95 * math.sqrt(variance / responses)


def response_rate(responses: int, invitations: int | None) -> float | None:
    """Responses per invitation (0 to 1); None when the invitations are not known or there were none."""
    if not invitations:
        return None
    return responses / invitations


@dataclass(frozen=True)
class NpsFigures:
    """The counts of one group of responses and the figures that follow from them (rounded for people)."""

    responses: int
    promoters: int
    passives: int
    detractors: int
    # Invitations sent in the same period and group; None where the group cannot know them (the channel:
    # dispatch chooses it when delivering, survey never learns it for an unanswered invitation).
    invitations: int | None

    @property
    def nps(self) -> float | None:
        score = net_promoter_score(self.promoters, self.detractors, self.responses)
        return None if score is None else round(score, 1)

    @property
    def margin_of_error(self) -> float | None:
        margin = nps_margin_of_error(self.promoters, self.detractors, self.responses)
        return None if margin is None else round(margin, 1)

    @property
    def response_rate(self) -> float | None:
        rate = response_rate(self.responses, self.invitations)
        return None if rate is None else round(rate, 4)

    def as_dict(self) -> dict[str, int | float | None]:
        return {
            "responses": self.responses,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "nps": self.nps,
            "margin_of_error": self.margin_of_error,
            "invitations": self.invitations,
            "response_rate": self.response_rate,
        }


def combined(groups: Iterable[NpsFigures]) -> NpsFigures:
    """The figures of several disjoint groups taken together (invitations unknown if any group's are)."""
    groups = list(groups)
    invitations = [group.invitations for group in groups]
    return NpsFigures(
        responses=sum(group.responses for group in groups),
        promoters=sum(group.promoters for group in groups),
        passives=sum(group.passives for group in groups),
        detractors=sum(group.detractors for group in groups),
        invitations=None if None in invitations else sum(i for i in invitations if i is not None),
    )


def period_start(day: date, period: Period) -> date:
    """The first day of the period ``day`` falls in: itself, its ISO week's Monday, its month's 1st."""
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def default_range(today: date, days: int = 90) -> tuple[date, date]:
    """The range a dashboard opens on: the last ``days`` days, today included."""
    return today - timedelta(days=days - 1), today
