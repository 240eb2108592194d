"""NPS analytics use cases: breakdowns for the API and the dashboard, and sentiment's reading of responses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.db import Database
from shared.errors import DomainError

from ..models import ResponseSentiment
from ..runtime import SurveyRuntime
from ..unit_of_work import SurveyUnitOfWork
from .domain import Dimension, NpsFigures, Period
from .views import Group, NpsViews

log = logging.getLogger(__name__)

# The longest range one breakdown covers: five years of days is 1,827 groups at most.
MAX_RANGE_DAYS = 5 * 366
# What a response keeps of sentiment's key phrases.
MAX_KEY_PHRASES = 20
MAX_PHRASE_LENGTH = 200


class InvalidBreakdown(DomainError):
    status = 422
    title = "Unprocessable Entity"


@dataclass(frozen=True)
class Breakdown:
    by: Dimension | None
    attribute: str | None
    period: Period | None
    start: date
    end: date
    overall: NpsFigures
    groups: list[Group]


@dataclass(frozen=True)
class Dashboard:
    start: date
    end: date
    period: Period
    attribute: str | None
    segment_attributes: tuple[str, ...]
    overall: NpsFigures
    over_time: list[Group]
    by_touchpoint: list[Group]
    by_channel: list[Group]
    by_segment: list[Group]
    sentiment: list[tuple[str, int]]
    detractor_phrases: list[tuple[str, int]]


def nps_breakdown(
    runtime: SurveyRuntime,
    by: Dimension | None,
    start: date,
    end: date,
    *,
    attribute: str | None = None,
    period: Period = Period.WEEK,
    touchpoint: str | None = None,
    channel: str | None = None,
) -> Breakdown:
    """NPS, counts, margin of error and response rate of the days start to end (UTC), per group of ``by``."""
    _check_range(start, end)
    if by is Dimension.SEGMENT:
        _check_attribute(runtime, attribute)
    with _views(runtime) as views:
        groups = views.breakdown(
            by, start, end, attribute=attribute, period=period, touchpoint=touchpoint, channel=channel
        )
        (overall,) = views.breakdown(None, start, end, touchpoint=touchpoint, channel=channel)
    return Breakdown(
        by,
        attribute if by is Dimension.SEGMENT else None,
        period if by is Dimension.PERIOD else None,
        start,
        end,
        overall.figures,
        groups,
    )


def dashboard(
    runtime: SurveyRuntime, start: date, end: date, period: Period, attribute: str | None
) -> Dashboard:
    """Everything the NPS dashboard shows, read after one refresh of the rollup."""
    _check_range(start, end)
    attributes = runtime.settings.nps_segment_attributes
    if attribute is None and attributes:
        attribute = attributes[0]
    if attribute is not None:
        _check_attribute(runtime, attribute)
    with _views(runtime) as views:
        (overall,) = views.breakdown(None, start, end)
        return Dashboard(
            start=start,
            end=end,
            period=period,
            attribute=attribute,
            segment_attributes=attributes,
            overall=overall.figures,
            over_time=views.breakdown(Dimension.PERIOD, start, end, period=period),
            by_touchpoint=views.breakdown(Dimension.TOUCHPOINT, start, end),
            by_channel=views.breakdown(Dimension.CHANNEL, start, end),
            by_segment=(
                views.breakdown(Dimension.SEGMENT, start, end, attribute=attribute) if attribute else []
            ),
            sentiment=views.sentiment_spread(start, end),
            detractor_phrases=views.detractor_key_phrases(start, end),
        )


def refresh_rollup(runtime: SurveyRuntime, rebuild: bool = False) -> int:
    """Bring the daily rollup up to date; returns how many days were counted.

    Reads do it too; the clock does it at start (a first build over many answers takes a while) and keeps it
    warm between reads. A refresh finds what changed by its timestamps: rows written with past times (an
    import of old answers) are counted by a ``rebuild``.
    """
    with _database(runtime).transaction() as session:
        return NpsViews(session, runtime.settings.nps_segment_attributes).refresh(utcnow(), rebuild=rebuild)


def rebuild_rollup(runtime: SurveyRuntime) -> int:
    """Count the rollup again from every response and invitation."""
    return refresh_rollup(runtime, rebuild=True)


@contextmanager
def _views(runtime: SurveyRuntime) -> Iterator[NpsViews]:
    # The refresh commits before the queries run: readers wait for each other only while it counts.
    refresh_rollup(runtime)
    with _database(runtime).transaction() as session:
        yield NpsViews(session, runtime.settings.nps_segment_attributes)


def _database(runtime: SurveyRuntime) -> Database:
    if runtime.database is None:
        raise RuntimeError("NPS analytics read the database: this runtime has none")
    return runtime.database


def _check_range(start: date, end: date) -> None:
    if start > end:
        raise InvalidBreakdown("The range ends before it starts.", {"from": ["Must be on or before 'to'."]})
    if (end - start).days >= MAX_RANGE_DAYS:
        raise InvalidBreakdown(
            "The range is too long.", {"from": [f"At most {MAX_RANGE_DAYS} days before 'to'."]}
        )


def _check_attribute(runtime: SurveyRuntime, attribute: str | None) -> None:
    known = runtime.settings.nps_segment_attributes
    if attribute not in known:
        allowed = ", ".join(known) or "none (NPS_SEGMENT_ATTRIBUTES is empty)"
        raise InvalidBreakdown(
            "Not a segment attribute.", {"attribute": [f"One of the segment attributes: {allowed}."]}
        )


# --- Sentiment, for the dashboard ------------------------------------------------------------------------


@consumes("response.scored")
def record_response_sentiment(runtime: SurveyRuntime, uow: SurveyUnitOfWork, event: ReceivedEvent) -> None:
    """Keep sentiment's label, polarity and key phrases on the response, for its highest revision.

    A revision older than (or the same as) the one kept changes nothing: scored events may arrive out of
    order. A revision without a comment clears what an earlier comment said.
    """
    data = event.data
    # Held before the sentiment row is touched: an erasure holds the response, then deletes its sentiment;
    # updating the sentiment first and then waiting for the response (the key phrases' foreign key) was a
    # deadlock with it (seen in the Node client's test).
    response = uow.responses.get_held(data["response_id"])
    if response is None:
        log.warning("response.scored for unknown response %s", data["response_id"])
        return
    kept = uow.sentiments.get(response.id)
    if kept is not None and kept.revision >= data["revision"]:
        log.info(
            "response %s: revision %s is not newer than %s", response.id, data["revision"], kept.revision
        )
        return
    sentiment = data["sentiment"] or {}
    if kept is None:
        kept = ResponseSentiment(response_id=response.id)
        uow.sentiments.add(kept)
    kept.revision = data["revision"]
    kept.label = (sentiment.get("label") or "")[:16] or None
    kept.polarity = sentiment.get("polarity")
    kept.language = (sentiment.get("language") or "")[:16] or None
    kept.scored_at = utcnow()
    uow.sentiments.set_key_phrases(response.id, key_phrases(sentiment.get("key_phrases") or []))


def key_phrases(phrases: list[str]) -> list[str]:
    """The phrases as the dashboard counts them: trimmed, lower-cased, each once, at most 20."""
    kept: dict[str, None] = {}
    for phrase in phrases:
        normalized = " ".join(phrase.split()).lower()[:MAX_PHRASE_LENGTH]
        if normalized:
            kept[normalized] = None
    return list(kept)[:MAX_KEY_PHRASES]
