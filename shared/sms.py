"""SMS rules every service writes by: the numbers we text, and how many billed segments a text costs."""

from __future__ import annotations

from collections.abc import Sequence

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


def sms_segments(text: str) -> int:
    """How many SMS a text is billed as: 160/153 GSM-7 units, or 70/67 UCS-2 characters when it needs them."""
    if all(char in _GSM7 or char in _GSM7_ESCAPED for char in text):
        units, single, multi = sum(2 if char in _GSM7_ESCAPED else 1 for char in text), 160, 153
    else:
        units, single, multi = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // multi)


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
