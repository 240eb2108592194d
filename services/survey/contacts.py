"""Customers' contact details as survey stores them, whoever sent them: the CRM, a vendor or staff.

Phone numbers are kept in E.164 (``+905321234567``), whatever spacing or punctuation they came with; time
zones are IANA names. No I/O here: the schemas and the vendor mappings call these.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class InvalidContact(ValueError):
    """A phone number or time zone that cannot be stored as one; the message says what is expected."""


def normal_phone(text: str, region: str | None = None) -> str:
    """``text`` in E.164; without ``region`` (an ISO country code) the number must start with + and its
    country code.

    "Possible", not "valid": phonenumbers' validity refuses reserved ranges such as the fictional +1 555
    numbers, which demos and tests use, and ranges assigned after the library's data was published.
    """
    # Loaded with the first phone number: its metadata is a megabyte many processes never need.
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as error:
        raise InvalidContact(
            "Not a phone number in international form, such as +14155550123."
        ) from error
    if not phonenumbers.is_possible_number(number):
        raise InvalidContact("Not a possible phone number for its country, such as +14155550123.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidContact("Not an IANA time zone, such as Europe/Istanbul.") from error
    return name
