"""The SMS rules every service writes by: billed segments, a GSM-7 spelling, the fewest segments."""

from __future__ import annotations

import pytest

from shared.sms import SmsCount, fewest_segments, gsm7_spelling, sms_count, sms_segments


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


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),  # split: 153 a part
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # the extension table: two septets each
        ("[" * 81, "GSM-7", 162, 2),
        ("ş" + "a" * 69, "UCS-2", 70, 1),  # one Turkish letter makes the whole text UCS-2
        ("ş" + "a" * 70, "UCS-2", 71, 2),  # split: 67 a part
        ("😀" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_sms_count_is_the_encoding_its_units_and_the_parts_billed(text, encoding, units, segments):
    assert sms_count(text) == SmsCount(encoding, units, segments)


def test_with_the_turkish_shift_table_turkish_letters_cost_two_septets_and_a_header():
    text = "Teşekkürler, iyi günler Ayşe! Ğ İ ı ç"
    assert sms_count(text).encoding == "UCS-2"
    counted = sms_count(text, turkish_shift=True)
    assert counted.encoding == "GSM-7 (Turkish shift)"
    assert counted.units == len(text) + sum(text.count(c) for c in "şŞğĞıİç")
    assert sms_count("ş" * 77 + "a", turkish_shift=True).segments == 1  # 155 septets fit
    assert sms_count("ş" * 78, turkish_shift=True).segments == 2  # 156 do not: the header takes 5
    # Letters outside both tables still need UCS-2: â, î, û, emoji.
    assert sms_count("Hâlâ bekliyorum", turkish_shift=True).encoding == "UCS-2"
