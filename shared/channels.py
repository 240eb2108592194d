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
