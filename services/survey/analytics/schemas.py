"""The NPS analytics API's query and answer schemas."""

from __future__ import annotations

from datetime import date

from marshmallow import Schema, fields, validate

from shared.channels import CHANNELS

from .domain import Dimension, Period

# Far enough either way for any survey, near enough that a day after the range's end is still a date.
_DAYS = validate.Range(min=date(2000, 1, 1), max=date(2999, 12, 31))


class BreakdownQuerySchema(Schema):
    by = fields.String(
        load_default=None,
        validate=validate.OneOf([dimension.value for dimension in Dimension]),
        metadata={
            "description": "Group by touchpoint, channel, segment (see attribute) or period; "
            "left out: the overall figures only."
        },
    )
    attribute = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "With by=segment: the customer attribute (NPS_SEGMENT_ATTRIBUTES)."},
    )
    period = fields.String(
        load_default=Period.WEEK.value,
        validate=validate.OneOf([period.value for period in Period]),
        metadata={"description": "With by=period: day, week (ISO, from Monday) or month."},
    )
    start = fields.Date(
        data_key="from",
        load_default=None,
        validate=_DAYS,
        metadata={"description": "First day (UTC, YYYY-MM-DD); default 89 days before 'to'."},
    )
    end = fields.Date(
        data_key="to",
        load_default=None,
        validate=_DAYS,
        metadata={"description": "Last day, included (UTC, YYYY-MM-DD); default today."},
    )
    touchpoint = fields.String(
        load_default=None, validate=validate.Length(min=1, max=32), metadata={"description": "Only this one."}
    )
    channel = fields.String(
        load_default=None,
        validate=validate.OneOf(CHANNELS),
        metadata={"description": "Only answers given on this channel (response rate then unknown)."},
    )


class NpsFiguresSchema(Schema):
    responses = fields.Integer()
    promoters = fields.Integer(metadata={"description": "Scores 9-10."})
    passives = fields.Integer(metadata={"description": "Scores 7-8."})
    detractors = fields.Integer(metadata={"description": "Scores 0-6."})
    nps = fields.Float(allow_none=True, metadata={"description": "-100 to 100; null without responses."})
    margin_of_error = fields.Float(
        allow_none=True,
        metadata={
            "description": "95% margin of error of the NPS, in points: 1.96 * sqrt(var / n) of the "
            "+1/0/-1 scores."
        },
    )
    invitations = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Invitations sent in the range; null by or for a channel (unknown to survey)."
        },
    )
    response_rate = fields.Float(
        allow_none=True, metadata={"description": "Responses / invitations (0 to 1); null when unknown."}
    )


class NpsGroupSchema(NpsFiguresSchema):
    key = fields.String(
        allow_none=True,
        metadata={
            "description": "The touchpoint, channel, segment value (null: not set) or first day of the "
            "period."
        },
    )


class BreakdownSchema(Schema):
    by = fields.String(allow_none=True)
    attribute = fields.String(allow_none=True)
    period = fields.String(allow_none=True)
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    overall = fields.Nested(NpsFiguresSchema)
    groups = fields.List(fields.Nested(NpsGroupSchema))
