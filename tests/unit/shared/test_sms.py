"""The SMS rules every service writes by: billed segments, a GSM-7 spelling, the fewest segments."""

from __future__ import annotations

import pytest

from shared.sms import fewest_segments, gsm7_spelling, sms_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # the escape table counts twice: 160 units
        ("€" * 81, 2),
        ("ş" * 70, 1),  # one letter outside GSM-7 makes it UCS-2
        ("ş" * 71, 2),
        ("ş" + "a" * 69, 1),
        ("ş" + "a" * 70, 2),
    ],
)
def test_text_is_billed_by_gsm7_units_or_ucs2_characters(text, segments):
    assert sms_segments(text) == segments


def test_gsm7_spelling_writes_turkish_letters_without_their_marks_and_keeps_what_gsm7_has():
    spelled = gsm7_spelling("Işık, şeker, çiğdem, İstanbul; Ödül, ürün, Çay")
    assert spelled == "Isik, seker, cigdem, Istanbul; Ödül, ürün, Çay"
    assert sms_segments(spelled + "a" * 110) == 1


def test_fewest_segments_prefers_the_first_wording_among_the_cheapest():
    long, short = "a" * 200, "b" * 150
    assert fewest_segments([long, short]) == short
    assert fewest_segments(["c" * 100, short]) == "c" * 100


def test_fewest_segments_needs_a_wording():
    with pytest.raises(ValueError):
        fewest_segments([])
