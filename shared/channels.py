"""The channels a customer can be reached on: one list for the events, the CRM intake and dispatch."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    # Through Twilio, with an approved template; used only where the customer prefers it, falling back to SMS,
    # then email.
    WHATSAPP = "whatsapp"


CHANNELS: tuple[str, ...] = tuple(channel.value for channel in Channel)


def normal_address(channel: str, address: str) -> str:
    """An address as opt-outs compare it: an email without case, a phone number as given (E.164)."""
    return address.strip().lower() if channel == Channel.EMAIL else address.strip()
