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


# How Twilio names a WhatsApp user: "whatsapp:" and their number.
WHATSAPP_PREFIX = "whatsapp:"


def normal_address(channel: str, address: str) -> str:
    """An address as opt-outs and replies compare it: an email without case, a phone number as given
    (E.164), a WhatsApp user by their number."""
    address = address.strip()
    if channel == Channel.WHATSAPP:
        return address.removeprefix(WHATSAPP_PREFIX)
    return address.lower() if channel == Channel.EMAIL else address
