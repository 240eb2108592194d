"""The dispatch paths that leave the app, written once: Flask routes requests by them, and messages, provider
callbacks and providers' consoles carry URLs built from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Route:
    rule: str  # in Flask's rule syntax: "/unsubscribe/<delivery_id>"

    def url(self, base_url: str, query: Mapping[str, str] | None = None, **values: str) -> str:
        """The absolute URL under ``base_url``, with ``values`` in the rule's parts and ``query`` after."""
        path = self.rule
        for name, value in values.items():
            path = path.replace(f"<{name}>", quote(value, safe=""))
        if "<" in path:
            raise ValueError(f"{self.rule} needs a value for each of its parts")
        return base_url + path + (f"?{urlencode(query)}" if query else "")


UNSUBSCRIBE = Route("/unsubscribe/<delivery_id>")
TWILIO_INBOUND_SMS = Route("/webhooks/twilio/sms")
TWILIO_STATUS = Route("/webhooks/twilio/status")
SENDGRID_EVENTS = Route("/webhooks/sendgrid/events")

# Twilio's status callback carries no reference of ours, so its URL does.
TWILIO_STATUS_REFERENCE = "delivery_id"
