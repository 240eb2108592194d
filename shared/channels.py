"""The channels a customer can be reached on: one list for the events, the CRM intake and dispatch."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


CHANNELS: tuple[str, ...] = tuple(channel.value for channel in Channel)
