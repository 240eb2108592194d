"""Survey's settings: the invitation expiry's default and the SMS segment budget, from the environment."""

from __future__ import annotations

import pytest

from shared.settings import Settings


def test_defaults_are_30_days_and_3_segments():
    settings = Settings.from_env({})
    assert (settings.survey_invitation_expiry_days, settings.survey_sms_max_segments) == (30, 3)


def test_both_are_read_from_the_environment():
    settings = Settings.from_env({"SURVEY_INVITATION_EXPIRY_DAYS": "14", "SURVEY_SMS_MAX_SEGMENTS": "1"})
    assert (settings.survey_invitation_expiry_days, settings.survey_sms_max_segments) == (14, 1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SURVEY_INVITATION_EXPIRY_DAYS", "0"),
        ("SURVEY_INVITATION_EXPIRY_DAYS", "²"),
        ("SURVEY_INVITATION_EXPIRY_DAYS", "400"),
        ("SURVEY_SMS_MAX_SEGMENTS", "0"),
        ("SURVEY_SMS_MAX_SEGMENTS", "11"),
        ("SURVEY_SMS_MAX_SEGMENTS", "٣"),
    ],
)
def test_a_value_out_of_range_is_refused_at_start(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})
