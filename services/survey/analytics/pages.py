"""The staff's NPS dashboard: the figures of a range of days as charts drawn on the server."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, render_template, request
from marshmallow import ValidationError

from shared.clock import utcnow

from . import charts, service
from .domain import Period, default_range
from .schemas import BreakdownQuerySchema
from .views import NO_COMMENT, NOT_SCORED, Group

bp = Blueprint("nps_dashboard", __name__, template_folder="../templates", url_prefix="/admin")

SENTIMENT_COLORS = {
    "positive": charts.PROMOTER,
    "neutral": charts.PASSIVE,
    "negative": charts.DETRACTOR,
    "mixed": "#d08c1f",
    NO_COMMENT: "#d8dde3",
    NOT_SCORED: "#eef0f3",
}
# Sentiment's labels first, in this order; anything else (a newer analyzer's label) after them.
SENTIMENT_ORDER = ("positive", "mixed", "neutral", "negative", NOT_SCORED, NO_COMMENT)
TOUCHPOINT_NAMES = {
    "purchase": "Purchase",
    "support_call": "Support call",
    "site_visit": "Site visit",
    "follow_up": "Follow-up",
}


@bp.get("/nps")
def nps_dashboard() -> tuple[str, int]:
    """NPS of a range of days: ``?from=&to=`` (default the last 90 days), ``period`` and ``attribute``."""
    runtime = current_app.extensions["closeloop.survey"]
    error, status = None, 200
    try:
        query = BreakdownQuerySchema(only=("start", "end", "period", "attribute")).load(request.args)
    except ValidationError as invalid:
        error = "Shown with the defaults instead: " + "; ".join(
            f"{field}: {' '.join(problems)}" for field, problems in invalid.normalized_messages().items()
        )
        query, status = {"start": None, "end": None, "period": Period.WEEK.value, "attribute": None}, 422
    start, end = _range(query["start"], query["end"])
    try:
        board = service.dashboard(runtime, start, end, Period(query["period"]), query["attribute"])
    except service.InvalidBreakdown as invalid:
        error, status = f"{invalid.detail} {_problems(invalid.errors)}", 422
        start, end = default_range(utcnow().date())
        board = service.dashboard(runtime, start, end, Period.WEEK, None)
    return render_template(
        "survey/nps_dashboard.html",
        board=board,
        charts=_charts(board),
        error=error,
        periods=[period.value for period in Period],
    ), status


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    default_start, default_end = default_range(end or utcnow().date())
    return start or default_start, end or default_end


def _problems(errors: dict[str, Any] | None) -> str:
    return "; ".join(f"{field}: {' '.join(problems)}" for field, problems in (errors or {}).items())


def _charts(board: service.Dashboard) -> dict[str, Any]:
    overall = board.overall
    sentiment = sorted(
        board.sentiment,
        key=lambda part: (SENTIMENT_ORDER.index(part[0]) if part[0] in SENTIMENT_ORDER else 3.5, part[0]),
    )
    segment_name = board.attribute or "segment"
    return {
        "trend": charts.trend(
            [
                charts.Point(
                    _period_label(g.key, board.period),
                    g.figures.nps,
                    g.figures.margin_of_error,
                    g.figures.responses,
                )
                for g in board.over_time
            ]
        ),
        "categories": charts.stacked(
            [
                ("Promoters", overall.promoters, charts.PROMOTER),
                ("Passives", overall.passives, charts.PASSIVE),
                ("Detractors", overall.detractors, charts.DETRACTOR),
            ],
            "Promoters, passives and detractors",
        ),
        "touchpoint": charts.nps_bars(_bars(board.by_touchpoint, TOUCHPOINT_NAMES), "NPS by touchpoint"),
        "channel": charts.nps_bars(
            _bars(board.by_channel, {"email": "Email", "sms": "SMS"}), "NPS by channel"
        ),
        "segment": charts.nps_bars(_bars(board.by_segment), f"NPS by {segment_name}"),
        "rate_touchpoint": charts.rate_bars(
            _bars(board.by_touchpoint, TOUCHPOINT_NAMES), "Response rate by touchpoint"
        ),
        "rate_time": charts.rate_bars(
            [
                charts.Bar(
                    _period_label(g.key, board.period),
                    g.figures.nps,
                    g.figures.margin_of_error,
                    g.figures.responses,
                    g.figures.response_rate,
                )
                for g in board.over_time[-8:]
            ],
            "Response rate of the last periods",
        ),
        "sentiment": charts.stacked(
            [(label, count, SENTIMENT_COLORS.get(label, "#6f42c1")) for label, count in sentiment],
            "Sentiment of the comments",
        ),
        "phrases": charts.count_bars(board.detractor_phrases, "Top key phrases of detractors"),
    }


def _bars(groups: list[Group], names: dict[str, str] | None = None) -> list[charts.Bar]:
    return [
        charts.Bar(
            (names or {}).get(group.key or "", group.key or "(not set)"),
            group.figures.nps,
            group.figures.margin_of_error,
            group.figures.responses,
            group.figures.response_rate,
        )
        for group in groups
    ]


def _period_label(key: str | None, period: Period) -> str:
    if key is None:
        return "?"
    day = date.fromisoformat(key)
    if period is Period.MONTH:
        return day.strftime("%b %Y")
    return day.strftime("%b %-d")
