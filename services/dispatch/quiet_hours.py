"""When a message may reach a customer: the sending window of each channel in the customer's own time zone.

Pure rules, no I/O. A window is local wall-clock time ("08:00-21:00"); the moment it opens is found by the
calendar in the customer's zone, never by adding hours to a UTC time, so it stays right across DST changes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# What a setting says to send at any hour.
ALWAYS = frozenset({"off", "none", "always"})


@dataclass(frozen=True)
class SendingWindow:
    """Messages go out from ``opens`` (included) to ``closes`` (excluded), local time.

    A window that closes before it opens runs over midnight ("22:00-06:00"); ``closes`` may be 24:00.
    """

    opens: time
    closes: time | None  # None: 24:00, the end of the day

    @classmethod
    def parse(cls, text: str) -> SendingWindow | None:
        """``"08:00-21:00"`` as a window; None (no quiet hours) for "off". Raises ValueError otherwise."""
        value = text.strip().lower()
        if value in ALWAYS:
            return None
        match = _WINDOW.match(value)
        if not match or match.group(3) == "24" and match.group(4) != "00":
            raise ValueError(f"not a sending window such as 08:00-21:00, or off: {text!r}")
        opens = time(int(match.group(1)), int(match.group(2)))
        closes = None if match.group(3) == "24" else time(int(match.group(3)), int(match.group(4)))
        if closes == opens:
            raise ValueError(f"a sending window must not open and close at the same time: {text!r}")
        return cls(opens, closes)

    def is_open_at(self, local: time) -> bool:
        if self.closes is None:
            return local >= self.opens
        if self.opens < self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes  # over midnight


def next_sending_time(now: datetime, zone: tzinfo, window: SendingWindow | None) -> datetime:
    """``now`` when the window is open in ``zone``, else the moment it next opens (aware, in UTC's terms).

    The opening is the local wall-clock time on the right day. Should a DST change skip that time (a window
    opening at 02:30 on the night clocks go forward), the first moment after the gap is used.
    """
    if window is None:
        return now
    local = now.astimezone(zone)
    if window.is_open_at(local.time().replace(tzinfo=None)):
        return now
    day = local.date()
    for _ in range(3):
        opening = _wall_clock(day, window.opens, zone)
        if opening > now:
            return opening.astimezone(now.tzinfo)
        day += timedelta(days=1)
    raise AssertionError("a sending window opens at least once a day")  # pragma: no cover


def _wall_clock(day, at: time, zone: tzinfo) -> datetime:
    moment = datetime.combine(day, at, tzinfo=zone)
    # A time a DST change skipped does not survive the round trip through UTC; step past the gap.
    round_trip = moment.astimezone(ZoneInfo("UTC")).astimezone(zone)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        return round_trip
    return moment


def customer_zone(name: str | None, default: str) -> tuple[ZoneInfo, bool]:
    """The customer's IANA zone, or ``default`` when it is missing or unknown; and whether theirs was used.

    An unknown name from an event is logged and replaced, never raised: a worker must not crash on it.
    """
    if name:
        try:
            return ZoneInfo(name), True
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r in an event: using %s", name[:64], default)
    return ZoneInfo(default), False


def is_time_zone(name: str) -> bool:
    """True for an IANA time zone name this machine knows ("Europe/Istanbul")."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
