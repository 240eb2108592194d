"""Dispatch's settings for sending hours, time zones, reminders and HELP, read from the environment."""

from __future__ import annotations

import pytest

from closeloop.embedded import sandbox_sending_hours
from services.dispatch import service
from shared.settings import DEFAULT_SMS_HELP_TEXT, Settings

from .fakes import FakeDispatchUnitOfWork, fake_runtime


def test_every_channel_sends_from_eight_to_nine_by_default():
    settings = Settings.from_env({})
    assert settings.quiet_hours == {"email": "08:00-21:00", "sms": "08:00-21:00", "whatsapp": "08:00-21:00"}
    assert settings.default_timezone == "UTC"
    assert (settings.reminder_count, settings.reminder_delay_hours) == (1, 48.0)


def test_quiet_hours_for_every_channel_and_one_channel_apart():
    settings = Settings.from_env({"QUIET_HOURS": "09:00-20:00", "QUIET_HOURS_EMAIL": "off"})
    assert settings.quiet_hours == {"email": "off", "sms": "09:00-20:00", "whatsapp": "09:00-20:00"}


def test_a_sending_window_that_does_not_parse_stops_dispatch_at_start():
    runtime = fake_runtime(
        FakeDispatchUnitOfWork(), quiet_hours={"email": "off", "sms": "8 to 9", "whatsapp": "off"}
    )
    with pytest.raises(ValueError, match="QUIET_HOURS_SMS"):
        service.check_settings(runtime)


def test_an_unknown_default_time_zone_is_refused_at_start():
    with pytest.raises(ValueError, match="DEFAULT_TIMEZONE"):
        Settings.from_env({"DEFAULT_TIMEZONE": "Europe/Atlantis"})
    assert Settings.from_env({"DEFAULT_TIMEZONE": "Europe/Istanbul"}).default_timezone == "Europe/Istanbul"


def test_reminders_per_touchpoint_read_as_count_and_hours():
    settings = Settings.from_env({"REMINDERS_BY_TOUCHPOINT": "purchase=2/72, support_call=0"})
    assert settings.reminders_by_touchpoint == {"purchase": (2, 72.0), "support_call": (0, None)}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REMINDERS_BY_TOUCHPOINT", "purchase"),
        ("REMINDERS_BY_TOUCHPOINT", "purchase=9"),
        ("REMINDERS_BY_TOUCHPOINT", "purchase=1/0"),
        ("REMINDER_COUNT", "²"),
        ("REMINDER_COUNT", "6"),
        ("REMINDER_DELAY_HOURS", "0"),
        ("PROVIDER_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_reminder_and_timeout_settings_that_make_no_sense_are_refused(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_help_text_is_ours_unless_left_to_twilio():
    assert Settings.from_env({}).sms_help_text == DEFAULT_SMS_HELP_TEXT
    assert Settings.from_env({"SMS_HELP_TEXT": "none"}).sms_help_text is None
    assert Settings.from_env({"SMS_HELP_TEXT": "Acme: reply STOP"}).sms_help_text == "Acme: reply STOP"


def test_the_sandbox_sends_at_any_hour_unless_quiet_hours_are_asked_for():
    sandbox = Settings.from_env({})
    assert set(sandbox_sending_hours(sandbox, {}).quiet_hours.values()) == {"off"}
    asked = Settings.from_env({"QUIET_HOURS": "08:00-21:00"})
    assert sandbox_sending_hours(asked, {"QUIET_HOURS": "08:00-21:00"}).quiet_hours == asked.quiet_hours
    providers = Settings.from_env({"CLOSELOOP_TRANSPORT": "providers"})
    assert sandbox_sending_hours(providers, {}).quiet_hours == providers.quiet_hours


def test_the_sender_customers_see_is_the_brand_unless_named_apart():
    assert Settings.from_env({"BRAND_NAME": "Acme"}).sendgrid_from_name == "Acme"
    named = Settings.from_env({"BRAND_NAME": "Acme", "SENDGRID_FROM_NAME": "Acme Support"})
    assert named.sendgrid_from_name == "Acme Support"
