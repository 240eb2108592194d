"""NPS analytics over HTTP: a breakdown as JSON, and the same as CSV for a spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.clock import utcnow

from . import service
from .domain import Dimension, Period, default_range
from .schemas import BreakdownQuerySchema, BreakdownSchema

blp = Blueprint("nps_analytics", __name__, url_prefix="/v1", description="NPS analytics")

CSV_COLUMNS = (
    "responses",
    "promoters",
    "passives",
    "detractors",
    "nps",
    "margin_of_error",
    "invitations",
    "response_rate",
)


def _breakdown(query: dict[str, Any]) -> service.Breakdown:
    start, end = _range(query["start"], query["end"])
    return service.nps_breakdown(
        current_app.extensions["closeloop.survey"],
        Dimension(query["by"]) if query["by"] else None,
        start,
        end,
        attribute=query["attribute"],
        period=Period(query["period"]),
        touchpoint=query["touchpoint"],
        channel=query["channel"],
    )


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    default_start, default_end = default_range(end or utcnow().date())
    return start or default_start, end or default_end


@blp.route("/nps/breakdown")
class NpsBreakdown(MethodView):
    @blp.arguments(BreakdownQuerySchema, location="query")
    @blp.response(200, BreakdownSchema)
    def get(self, query):
        """NPS, counts, 95% margin of error and response rate per touchpoint, channel, segment or period.

        Days are UTC; responses count on the day they were first submitted, invitations on the day they
        were sent. Segments are the customer's attributes when the survey was sent.
        """
        breakdown = _breakdown(query)
        return {
            "by": breakdown.by,
            "attribute": breakdown.attribute,
            "period": breakdown.period,
            "start": breakdown.start,
            "end": breakdown.end,
            "overall": breakdown.overall.as_dict(),
            "groups": [{"key": group.key, **group.figures.as_dict()} for group in breakdown.groups],
        }


@blp.route("/nps/breakdown.csv")
class NpsBreakdownCsv(MethodView):
    @blp.arguments(BreakdownQuerySchema, location="query")
    @blp.response(200, content_type="text/csv")
    @blp.doc(
        responses={
            "200": {
                "description": "A header line, one line per group, then the line 'all'.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self, query):
        """The same breakdown as CSV (UTF-8, a header line), for a spreadsheet."""
        breakdown = _breakdown(query)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow((_key_column(breakdown), *CSV_COLUMNS))
        for group in breakdown.groups:
            figures = group.figures.as_dict()
            writer.writerow((_cell(group.key or "(not set)"), *(_number(figures[c]) for c in CSV_COLUMNS)))
        overall = breakdown.overall.as_dict()
        writer.writerow(("all", *(_number(overall[c]) for c in CSV_COLUMNS)))
        name = f"nps-{breakdown.by or 'overall'}-{breakdown.start}-{breakdown.end}.csv"
        return Response(
            out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _key_column(breakdown: service.Breakdown) -> str:
    if breakdown.by is Dimension.SEGMENT:
        return breakdown.attribute or "segment"
    if breakdown.by is Dimension.PERIOD:
        return breakdown.period or "period"
    return breakdown.by or "group"


def _cell(text: str) -> str:
    # Segment values come from CRM data: a spreadsheet would run one starting =, +, - or @ as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(value: int | float | None) -> str:
    return "" if value is None else str(value)
