"""Delighted's rules with no I/O: its credentials, its integers, its identifiers, its cursors and its rate."""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from shared.nps import NpsCategory, NpsSummary, nps_category

# What Delighted's API lists per page unless told, and at most.
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# The survey type every Closeloop response is, in Delighted's words.
SURVEY_TYPE = "nps"
# The trigger rule a manager may store (PUT /v1/trigger-rules/delighted.person) to change the touchpoint,
# quarantines, expiry or switch Delighted's sends off; without one, DEFAULT_TOUCHPOINT with the default rule.
TRIGGER_EVENT_TYPE = "delighted.person"
DEFAULT_TOUCHPOINT = "purchase"
# The channel a response made through the API (or imported) was given on, as its response records it.
API_CHANNEL = "api"


class RequestStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class SuppressionKind(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"


def api_key_from_basic(authorization: str | None) -> str | None:
    """The API key of an ``Authorization: Basic`` header, or None.

    Delighted's Python client encodes the key alone (``base64(KEY)``), the others ``base64(KEY:)`` as HTTP
    Basic with an empty password; both are the same key. A non-empty password is not Delighted's scheme.
    """
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not credentials.strip():
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, _, password = decoded.partition(":")
    if password or not key:
        return None
    return key


def storable(text: str) -> bool:
    """Text the database can store and compare: no NUL character, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_json(value: object, depth: int = 0) -> bool:
    """Properties the database stores as JSON: storable text, finite numbers, at most 5 levels deep."""
    if depth > 5:
        return False
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(storable(str(k)) and storable_json(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(storable_json(item, depth + 1) for item in value)
    return value is None or isinstance(value, bool | int)


def unix(moment: datetime | None) -> int | None:
    """Delighted's timestamps: whole seconds since the epoch."""
    return None if moment is None else int(moment.timestamp())


def from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


@dataclass(frozen=True)
class Metrics:
    """Delighted's core metrics: every figure a whole number, percentages of all responses."""

    nps: int
    promoter_count: int
    promoter_percent: int
    passive_count: int
    passive_percent: int
    detractor_count: int
    detractor_percent: int
    response_count: int


def summary_of_counts(counts: dict[int, int]) -> NpsSummary:
    """An NPS summary from how many responses gave each score."""
    by_category = {category: 0 for category in NpsCategory}
    for score, count in counts.items():
        by_category[nps_category(score)] += count
    return NpsSummary(
        sum(by_category.values()),
        by_category[NpsCategory.PROMOTER],
        by_category[NpsCategory.PASSIVE],
        by_category[NpsCategory.DETRACTOR],
    )


def metrics(summary: NpsSummary) -> Metrics:
    """Rounded half up, as Delighted shows them: 32 promoters, 13 passives, 6 detractors -> 51, 63, 25, 12."""
    total = summary.responses

    def percent(count: int) -> int:
        return _half_up(100 * count / total) if total else 0

    nps = _half_up(100 * (summary.promoters - summary.detractors) / total) if total else 0
    return Metrics(
        nps=nps,
        promoter_count=summary.promoters,
        promoter_percent=percent(summary.promoters),
        passive_count=summary.passives,
        passive_percent=percent(summary.passives),
        detractor_count=summary.detractors,
        detractor_percent=percent(summary.detractors),
        response_count=total,
    )


@dataclass(frozen=True)
class PersonIdentifier:
    """How ``DELETE /people/{identifier}`` names a person: ``id``, ``email`` or ``phone_number``."""

    kind: str
    value: str


def person_identifier(text: str) -> PersonIdentifier:
    """``42``, ``email:jony@appleseed.com`` or ``phone_number:+17132746524`` (a ``.json`` suffix dropped)."""
    text = text.removesuffix(".json")
    kind, separator, value = text.partition(":")
    if separator and kind in ("email", "phone_number"):
        return PersonIdentifier(kind, value.strip())
    return PersonIdentifier("id", text.strip())


# A cursor is the (created_at, id) of the last person of a page, opaque to clients.
_CURSOR = re.compile(r"^(\d{1,20}):([0-9a-f-]{1,36})$")


def encode_cursor(created_at: datetime, person_id: str) -> str:
    micros = int(created_at.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}:{person_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The position a cursor names, or None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    match = _CURSOR.match(text)
    if match is None:
        return None
    micros = int(match.group(1))
    try:
        moment = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
    except (OverflowError, OSError, ValueError):
        return None
    return moment, match.group(2)


class RateLimiter:
    """At most ``per_minute`` requests per key in each minute of the clock; ``allow`` says how long to wait.

    Counted in this process: a deployment running several web processes allows each its own share.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None when the request may go on, else whole seconds until the next window (Retry-After)."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        window = int(now // 60)
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count <= self.per_minute:
            return None
        return max(1, math.ceil((window + 1) * 60 - now))
