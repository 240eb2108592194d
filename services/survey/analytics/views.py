"""The NPS read side: the daily rollup (survey_nps_daily), kept up to date from the responses and invitations,
and the queries of the API and the dashboard. Every count is a GROUP BY in the database; Python only sees
one row per group.

Reads go around the unit of work's repositories, as views do in cosmicpython (chapter 12): they change no
domain state, and the rollup they refresh is derived data. What differs between SQLite and PostgreSQL
(the UTC day of a timestamp, the start of a week or a month) is decided here, in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, String, and_, case, cast, delete, func, insert, literal, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shared.nps import DETRACTOR_MAX, PROMOTER_MIN

from ..models import Invitation, NpsDaily, NpsRollupState, Response, ResponseKeyPhrase, ResponseSentiment
from .domain import Dimension, NpsFigures, Period

# Rows committed a little after the time they carry (a use case reads the clock before it commits, and web
# processes' clocks differ by a little): each refresh looks this far behind where the last one stopped.
REFRESH_OVERLAP = timedelta(minutes=5)
STATE_ID = 1

# What the dashboard calls a response without a comment, and one whose comment sentiment has not scored yet.
NO_COMMENT = "no comment"
NOT_SCORED = "not scored yet"


@dataclass(frozen=True)
class Group:
    """One line of a breakdown: its key (None: the segment attribute was not set) and its figures."""

    key: str | None
    figures: NpsFigures


class NpsViews:
    """The rollup and the queries over it, on one session (its transaction is the caller's)."""

    def __init__(self, session: Session, segment_attributes: Sequence[str]) -> None:
        self.session = session
        self.segment_attributes = tuple(segment_attributes)
        self.postgresql = session.get_bind().dialect.name == "postgresql"

    # --- Keeping the rollup up to date ----------------------------------------------------------------

    def refresh(self, now: datetime, rebuild: bool = False) -> int:
        """Recount the days whose responses or invitations changed since the last refresh.

        Never refreshed, built with other segment attributes, or asked to: rebuilt whole. Idempotent (a day
        is deleted and counted again, never incremented), one refresh at a time (the state row is locked).
        Returns how many days were counted.
        """
        state = self._locked_state()
        attributes = ",".join(self.segment_attributes)
        if rebuild or state.refreshed_through is None or state.attributes != attributes:
            self.session.execute(delete(NpsDaily))
            self._count(None)
            counted = self.session.scalar(select(func.count(func.distinct(NpsDaily.day)))) or 0
        else:
            days = self._days_changed_since(state.refreshed_through - REFRESH_OVERLAP)
            if days:
                self.session.execute(delete(NpsDaily).where(NpsDaily.day.in_(days)))
                self._count(days)
            counted = len(days)
        state.refreshed_through, state.attributes = now, attributes
        self.session.flush()
        return counted

    def _locked_state(self) -> NpsRollupState:
        query = select(NpsRollupState).where(NpsRollupState.id == STATE_ID)
        if self.postgresql:  # SQLite's BEGIN IMMEDIATE already lets one writer in at a time
            query = query.with_for_update()
        state = self.session.scalars(query).first()
        if state is None:  # the migration inserts it; a database built another way gets it here
            state = NpsRollupState(id=STATE_ID, refreshed_through=None, attributes="")
            self.session.add(state)
        return state

    def _days_changed_since(self, since: datetime) -> list[str]:
        answered = select(self._utc_day(Response.submitted_at)).where(Response.updated_at >= since)
        invited = select(self._utc_day(Invitation.created_at)).where(Invitation.created_at >= since)
        return sorted(set(self.session.scalars(answered.union(invited))))

    def _count(self, days: list[str] | None) -> None:
        """Insert the rollup rows of ``days`` (every day when None), for everyone and for each attribute.

        One pass over the answers and one over the invitations: each is first grouped by every segment
        attribute at once, then that small result is summed per attribute.
        """
        for base in (self._answered(days), self._invited(days)):
            self.session.execute(insert(NpsDaily).from_select(_ROLLUP_COLUMNS, self._per_attribute(base)))

    def _segments(self) -> list[ColumnElement[str]]:
        return [
            self._segment_value(name).label(f"segment_{n}") for n, name in enumerate(self.segment_attributes)
        ]

    def _segment_keys(self) -> list[str]:
        return [f"segment_{n}" for n in range(len(self.segment_attributes))]

    def _answered(self, days: list[str] | None):
        day = self._utc_day(Response.submitted_at)
        query = (
            select(
                day.label("day"),
                Invitation.touchpoint.label("touchpoint"),
                Response.channel.label("channel"),
                *self._segments(),
                literal(0).label("invitations"),
                func.count().label("responses"),
                _count_where(Response.score >= PROMOTER_MIN).label("promoters"),
                _count_where(and_(Response.score > DETRACTOR_MAX, Response.score < PROMOTER_MIN)).label(
                    "passives"
                ),
                _count_where(Response.score <= DETRACTOR_MAX).label("detractors"),
            )
            .join(Invitation, Invitation.id == Response.invitation_id)
            .where(*self._on_days(Response.submitted_at, day, days))
            .group_by("day", "touchpoint", "channel", *self._segment_keys())
        )
        return query.cte("answered")

    def _invited(self, days: list[str] | None):
        day = self._utc_day(Invitation.created_at)
        query = (
            select(
                day.label("day"),
                Invitation.touchpoint.label("touchpoint"),
                literal("", String).label("channel"),
                *self._segments(),
                func.count().label("invitations"),
                literal(0).label("responses"),
                literal(0).label("promoters"),
                literal(0).label("passives"),
                literal(0).label("detractors"),
            )
            .where(*self._on_days(Invitation.created_at, day, days))
            .group_by("day", "touchpoint", *self._segment_keys())
        )
        return query.cte("invited")

    def _per_attribute(self, base):
        """The rollup rows of ``base`` (a CTE grouped by every attribute): everyone's, then per attribute."""
        sums = [func.sum(base.c[name]) for name in _ROLLUP_COLUMNS[5:]]
        keys = [base.c.day, base.c.touchpoint, base.c.channel]
        selects = [select(*keys, literal("", String), literal("", String), *sums).group_by(*keys)]
        for attribute, segment in zip(self.segment_attributes, self._segment_keys(), strict=True):
            value = base.c[segment]
            selects.append(select(*keys, literal(attribute, String), value, *sums).group_by(*keys, value))
        return union_all(*selects)

    def _on_days(self, column, day: ColumnElement[str], days: list[str] | None) -> list[ColumnElement[bool]]:
        if days is None:
            return []
        # The range lets the timestamp's index find the rows; the list keeps only the changed days in it.
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
        return [column >= _midnight(first), column < _midnight(last + timedelta(days=1)), day.in_(days)]

    def _segment_value(self, attribute: str) -> ColumnElement[str]:
        if not attribute:
            return literal("", String)
        # The attribute as it was when the survey was sent: the invitation keeps the customer's attributes.
        text = cast(Invitation.properties[attribute].as_string(), String)
        return func.coalesce(func.substr(text, 1, 200), "")

    # --- Reading it ---------------------------------------------------------------------------------------

    def breakdown(
        self,
        by: Dimension | None,
        start: date,
        end: date,
        *,
        attribute: str | None = None,
        period: Period = Period.WEEK,
        touchpoint: str | None = None,
        channel: str | None = None,
    ) -> list[Group]:
        """The figures per group of ``by`` (one group, key None, when None) of the days start to end."""
        sums = [
            func.coalesce(func.sum(getattr(NpsDaily, name)), 0).label(name)
            for name in ("invitations", "responses", "promoters", "passives", "detractors")
        ]
        key = self._key(by, period)
        query = select(*([key.label("key")] if key is not None else []), *sums).where(
            NpsDaily.attribute == (attribute if by is Dimension.SEGMENT else ""),
            NpsDaily.day >= start.isoformat(),
            NpsDaily.day <= end.isoformat(),
        )
        if touchpoint:
            query = query.where(NpsDaily.touchpoint == touchpoint)
        # Invitations carry no channel: a breakdown by or filtered on the channel cannot count them.
        invitations_known = by is not Dimension.CHANNEL and not channel
        if not invitations_known:
            query = query.where(NpsDaily.channel == channel if channel else NpsDaily.channel != "")
        if key is not None:
            query = query.group_by("key").order_by("key")
        groups = []
        for row in self.session.execute(query):
            figures = NpsFigures(
                responses=row.responses,
                promoters=row.promoters,
                passives=row.passives,
                detractors=row.detractors,
                invitations=row.invitations if invitations_known else None,
            )
            group_key = row.key if key is not None else None
            groups.append(Group(group_key or None, figures))
        return groups

    def _key(self, by: Dimension | None, period: Period) -> ColumnElement[str] | None:
        if by is Dimension.TOUCHPOINT:
            return NpsDaily.touchpoint
        if by is Dimension.CHANNEL:
            return NpsDaily.channel
        if by is Dimension.SEGMENT:
            return NpsDaily.value
        if by is Dimension.PERIOD:
            return self._period_start(NpsDaily.day, period)
        return None

    def sentiment_spread(self, start: date, end: date) -> list[tuple[str, int]]:
        """How many responses of the days start to end read positive, neutral, negative... (by label)."""
        label = case(
            (Response.comment.is_(None), NO_COMMENT),
            (ResponseSentiment.label.is_(None), NOT_SCORED),
            else_=ResponseSentiment.label,
        )
        query = (
            # Named apart from the label column: PostgreSQL would group by that column, not by the CASE.
            select(label.label("reading"), func.count().label("responses"))
            .select_from(Response)
            .outerjoin(ResponseSentiment, ResponseSentiment.response_id == Response.id)
            .where(*_answered_between(start, end))
            .group_by("reading")
            .order_by("reading")
        )
        return [(row.reading, row.responses) for row in self.session.execute(query)]

    def detractor_key_phrases(self, start: date, end: date, limit: int = 10) -> list[tuple[str, int]]:
        """The key phrases most frequent in detractors' comments of the days start to end, the most first."""
        responses = func.count().label("responses")
        query = (
            select(ResponseKeyPhrase.phrase, responses)
            .join(Response, Response.id == ResponseKeyPhrase.response_id)
            .where(Response.score <= DETRACTOR_MAX, *_answered_between(start, end))
            .group_by(ResponseKeyPhrase.phrase)
            .order_by(responses.desc(), ResponseKeyPhrase.phrase)
            .limit(limit)
        )
        return [(row.phrase, row.responses) for row in self.session.execute(query)]

    # --- Where SQLite and PostgreSQL differ ------------------------------------------------------------

    def _utc_day(self, column) -> ColumnElement[str]:
        """A stored timestamp's UTC day as YYYY-MM-DD."""
        if self.postgresql:
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
        # SQLite keeps UTCDateTime as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: the day is its first 10 characters.
        return func.substr(column, 1, 10)

    def _period_start(self, day: ColumnElement[str], period: Period) -> ColumnElement[str]:
        """The first day (YYYY-MM-DD) of the day, ISO week or month a YYYY-MM-DD day falls in."""
        if period is Period.DAY:
            return day
        if self.postgresql:
            return func.to_char(func.date_trunc(period.value, cast(day, Date)), "YYYY-MM-DD")
        if period is Period.WEEK:
            # Six days back, then forward to the next Monday (weekday 1): the Monday on or before the day.
            return func.date(day, "-6 days", "weekday 1")
        return func.date(day, "start of month")


_ROLLUP_COLUMNS = [
    "day",
    "touchpoint",
    "channel",
    "attribute",
    "value",
    "invitations",
    "responses",
    "promoters",
    "passives",
    "detractors",
]


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _answered_between(start: date, end: date) -> list[ColumnElement[bool]]:
    return [
        Response.submitted_at >= _midnight(start),
        Response.submitted_at < _midnight(end + timedelta(days=1)),
    ]
