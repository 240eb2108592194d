"""SMS rules every service writes by: the numbers we text, and how many billed segments a text costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from marshmallow import validate

# Survey takes numbers in this form from the CRM, and the events carry them on as they are.
# \Z, not $: "$" also matches before a trailing newline; [0-9], not \d, which takes other scripts' digits.
E164 = validate.Regexp(
    r"\+[1-9][0-9]{6,14}\Z", error="Not a phone number in E.164 form, such as +14155550123."
)

# GSM 03.38 basic set (the escape-table characters count as two); anything else makes the SMS UCS-2.
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_ESCAPED = set("^{}\\[~]|€")

# Turkish letters outside GSM-7, spelled as Turkish SMS commonly are; ö, ü and Ç are GSM-7 already.
_TURKISH_IN_GSM7 = str.maketrans("ıİşŞğĞçâÂîÎûÛ", "iIsSgGcaAiIuU")


# The Turkish national language single shift table (3GPP TS 23.038, A.2.1): these letters cost two septets
# (escape + letter) instead of forcing UCS-2, but every part then carries a 3-octet header naming the table,
# and only where the sender and the handset's network support it (Twilio does not promise it).
_TURKISH_SINGLE_SHIFT = set("ĞİŞçğış€^{}\\[~]|")


@dataclass(frozen=True)
class SmsCount:
    """How a text is sent: its encoding, its length in that encoding's units, and the parts billed."""

    encoding: str  # "GSM-7", "GSM-7 (Turkish shift)" or "UCS-2"
    units: int
    segments: int


def _parts(units: int, single: int, multi: int) -> int:
    return 1 if units <= single else -(-units // multi)


def sms_count(text: str, turkish_shift: bool = False) -> SmsCount:
    """The honest count: GSM-7 (160 a part, 153 when split; escaped characters take 2), else UCS-2 (70/67
    UTF-16 units; an emoji takes 2). ``turkish_shift``: count with the Turkish single shift table, 155/149.
    """
    if all(char in _GSM7 or char in _GSM7_ESCAPED for char in text):
        units = sum(2 if char in _GSM7_ESCAPED else 1 for char in text)
        return SmsCount("GSM-7", units, _parts(units, 160, 153))
    if turkish_shift and all(char in _GSM7 or char in _TURKISH_SINGLE_SHIFT for char in text):
        units = sum(2 if char in _TURKISH_SINGLE_SHIFT else 1 for char in text)
        # The shift header (3 octets) rides in each part's user data header: 155 septets, 149 when split.
        return SmsCount("GSM-7 (Turkish shift)", units, _parts(units, 155, 149))
    units = len(text.encode("utf-16-le")) // 2
    return SmsCount("UCS-2", units, _parts(units, 70, 67))


def sms_segments(text: str) -> int:
    """How many SMS a text is billed as: 160/153 GSM-7 units, or 70/67 UCS-2 characters when it needs them."""
    return sms_count(text).segments


def gsm7_spelling(text: str) -> str:
    """``text`` with Turkish letters that force UCS-2 written without their marks ("teşekkür" -> "tesekkür").

    One ``ş`` makes a whole SMS UCS-2, cutting a segment from 160 characters to 70.
    """
    return text.translate(_TURKISH_IN_GSM7)


def fewest_segments(variants: Sequence[str]) -> str:
    """The first of ``variants`` (the preferred wording first) among those billed as the fewest segments."""
    if not variants:
        raise ValueError("no wording to choose from")
    return min(variants, key=sms_segments)
