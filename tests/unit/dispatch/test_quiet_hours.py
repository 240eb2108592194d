"""The sending window in the customer's time zone, at its edges and across DST changes: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from services.dispatch.quiet_hours import SendingWindow, customer_zone, is_time_zone, next_sending_time

DAY = SendingWindow.parse("08:00-21:00")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ISTANBUL = ZoneInfo("Europe/Istanbul")


def local(zone: ZoneInfo, *parts: int) -> datetime:
    """A local wall-clock time in ``zone``, as the UTC moment the code is given."""
    return datetime(*parts, tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(
    ("hour", "minute", "open_now"),
    [(20, 59, True), (21, 0, False), (7, 59, False), (8, 0, True), (12, 0, True), (23, 30, False)],
)
def test_the_window_opens_at_eight_and_closes_at_nine_in_the_evening(hour, minute, open_now):
    now = local(ISTANBUL, 2026, 7, 15, hour, minute)
    assert (next_sending_time(now, ISTANBUL, DAY) == now) is open_now


def test_at_nine_in_the_evening_the_message_waits_for_eight_the_next_morning():
    now = local(ISTANBUL, 2026, 7, 15, 21, 0)
    assert next_sending_time(now, ISTANBUL, DAY) == local(ISTANBUL, 2026, 7, 16, 8, 0)


def test_at_one_minute_to_eight_it_waits_one_minute():
    now = local(BERLIN, 2026, 7, 15, 7, 59)
    assert next_sending_time(now, BERLIN, DAY) == local(BERLIN, 2026, 7, 15, 8, 0)


def test_istanbul_has_no_dst_and_stays_three_hours_ahead_of_utc_all_year():
    for month in (1, 7):
        now = datetime(2026, month, 15, 19, 0, tzinfo=UTC)  # 22:00 in Istanbul, winter and summer
        assert next_sending_time(now, ISTANBUL, DAY) == datetime(2026, month, 16, 5, 0, tzinfo=UTC)


def test_new_york_spring_forward_night_opens_at_eight_daylight_time():
    # 2026-03-08: clocks go from 02:00 EST to 03:00 EDT. 21:30 EST the evening before is 02:30 UTC.
    now = local(NEW_YORK, 2026, 3, 7, 21, 30)
    opening = next_sending_time(now, NEW_YORK, DAY)
    assert opening == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT, not 13:00 UTC (08:00 EST)
    assert opening.astimezone(NEW_YORK).time() == time(8, 0)


def test_new_york_fall_back_night_opens_at_eight_standard_time():
    # 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST.
    now = local(NEW_YORK, 2026, 10, 31, 22, 0)
    opening = next_sending_time(now, NEW_YORK, DAY)
    assert opening == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert opening.astimezone(NEW_YORK).time() == time(8, 0)


def test_berlin_spring_forward_night_opens_at_eight_summer_time():
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
    now = local(BERLIN, 2026, 3, 28, 23, 0)
    assert next_sending_time(now, BERLIN, DAY) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_berlin_fall_back_night_opens_at_eight_winter_time():
    # 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET.
    now = local(BERLIN, 2026, 10, 24, 23, 0)
    assert next_sending_time(now, BERLIN, DAY) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_a_window_opening_inside_the_skipped_hour_opens_just_after_the_gap():
    window = SendingWindow.parse("02:30-21:00")
    now = local(NEW_YORK, 2026, 3, 7, 22, 0)
    opening = next_sending_time(now, NEW_YORK, window)
    assert opening == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT, 02:30 never happened


def test_the_window_is_open_from_the_first_minute_after_a_dst_change():
    # 08:00 EDT on the spring-forward day is 12:00 UTC; one minute before is 07:59 EDT.
    assert next_sending_time(datetime(2026, 3, 8, 12, 0, tzinfo=UTC), NEW_YORK, DAY) == datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )
    assert next_sending_time(datetime(2026, 3, 8, 11, 59, tzinfo=UTC), NEW_YORK, DAY) == datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )


def test_a_window_over_midnight_is_open_late_and_early():
    night = SendingWindow.parse("22:00-06:00")
    assert night.is_open_at(time(23, 0)) and night.is_open_at(time(5, 59))
    assert not night.is_open_at(time(6, 0)) and not night.is_open_at(time(21, 59))
    now = local(BERLIN, 2026, 7, 15, 12, 0)
    assert next_sending_time(now, BERLIN, night) == local(BERLIN, 2026, 7, 15, 22, 0)


def test_a_window_to_midnight_is_written_24_00():
    window = SendingWindow.parse("09:00-24:00")
    assert window.is_open_at(time(23, 59)) and not window.is_open_at(time(8, 59))


@pytest.mark.parametrize("text", ["off", "OFF", "none", " always "])
def test_off_means_no_quiet_hours(text):
    now = local(BERLIN, 2026, 7, 15, 3, 0)
    assert SendingWindow.parse(text) is None
    assert next_sending_time(now, BERLIN, None) == now


@pytest.mark.parametrize(
    "text", ["8-21", "08:00", "25:00-26:00", "08:00-08:00", "08:00-24:30", "", "08:60-21:00"]
)
def test_a_window_that_does_not_read_as_one_is_refused(text):
    with pytest.raises(ValueError):
        SendingWindow.parse(text)


def test_an_unknown_time_zone_falls_back_to_the_default_and_is_logged(caplog):
    zone, theirs = customer_zone("Mars/Olympus_Mons", "Europe/Istanbul")
    assert (zone.key, theirs) == ("Europe/Istanbul", False)
    assert "unknown time zone" in caplog.text


@pytest.mark.parametrize("name", [None, "", "../../etc/passwd", "Europe/Berlin\x00"])
def test_a_missing_or_malformed_time_zone_falls_back_without_raising(name):
    zone, theirs = customer_zone(name, "UTC")
    assert (zone.key, theirs) == ("UTC", False)


def test_a_known_time_zone_is_the_customers():
    assert customer_zone("America/New_York", "UTC") == (NEW_YORK, True)
    assert is_time_zone("Europe/Istanbul") and not is_time_zone("Europe/Atlantis")
