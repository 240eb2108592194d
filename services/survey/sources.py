"""CRM event sources in vendors' own webhook formats: their signatures, and their payloads as our events.

Each source (``CLOSELOOP_SOURCES``) has a name, a format and its own secret. A vendor's payload becomes a
CRM event (``id``, ``type``, ``occurred_at``, ``customer``, ``properties``), then goes through the same
validation and the same ``service.accept_crm_event`` as our own format, so decisions and de-duplication are
the same. No I/O here.

- Shopify (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries): ``X-Shopify-Hmac-Sha256`` is
  base64(HMAC-SHA256(app secret, raw body)); ``X-Shopify-Webhook-Id`` identifies the delivery and is our
  de-duplication key; ``X-Shopify-Topic`` names the event. The signature has no timestamp.
- Zendesk (https://developer.zendesk.com/documentation/webhooks/verifying/): ``X-Zendesk-Webhook-Signature``
  is base64(HMAC-SHA256(signing secret, timestamp + body)) with the timestamp of
  ``X-Zendesk-Webhook-Signature-Timestamp``; payloads are the event subscriptions' (``zen:event-type:...``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.signing import TOLERANCE, WebhookVerificationError


class SourceFormat(StrEnum):
    STANDARD = "standard"
    SHOPIFY = "shopify"
    ZENDESK = "zendesk"


def _hmac_base64(secret: str, message: bytes) -> bytes:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())


# --- Shopify ---------------------------------------------------------------------------------------------

SHOPIFY_SIGNATURE = "X-Shopify-Hmac-Sha256"
SHOPIFY_TOPIC = "X-Shopify-Topic"
SHOPIFY_WEBHOOK_ID = "X-Shopify-Webhook-Id"
SHOPIFY_TRIGGERED_AT = "X-Shopify-Triggered-At"
SHOPIFY_SHOP_DOMAIN = "X-Shopify-Shop-Domain"

# Shopify topics that are a finished purchase; any other topic is acknowledged and not surveyed.
SHOPIFY_EVENT_TYPES = {
    "orders/paid": "purchase.completed",
    "orders/fulfilled": "purchase.completed",
}


def verify_shopify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check the HMAC of the raw body; returns the webhook id (the de-duplication key)."""
    signature = headers.get(SHOPIFY_SIGNATURE)
    webhook_id = headers.get(SHOPIFY_WEBHOOK_ID)
    if not signature or not webhook_id or not headers.get(SHOPIFY_TOPIC):
        raise WebhookVerificationError(
            f"missing {SHOPIFY_SIGNATURE}, {SHOPIFY_TOPIC} or {SHOPIFY_WEBHOOK_ID} header"
        )
    if not hmac.compare_digest(signature.strip().encode(), _hmac_base64(secret, body)):
        raise WebhookVerificationError(f"{SHOPIFY_SIGNATURE} does not match the body")
    return webhook_id


@dataclass(frozen=True)
class Ignored:
    """A vendor event we acknowledge without surveying (a topic or status not mapped to an event type)."""

    reason: str


def shopify_event(
    source: str, headers: Mapping[str, str], order: Mapping[str, Any]
) -> dict[str, Any] | Ignored:
    """An order webhook as a CRM event; values are left as sent, for the event schema to check and name."""
    topic = headers.get(SHOPIFY_TOPIC, "")
    event_type = SHOPIFY_EVENT_TYPES.get(topic)
    if event_type is None:
        return Ignored(f"Shopify topic {topic} is not surveyed")
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    email = customer.get("email") or order.get("email") or order.get("contact_email")
    phone = customer.get("phone") or order.get("phone")
    name = " ".join(str(part) for part in (customer.get("first_name"), customer.get("last_name")) if part)
    # The shop's customer id, unique within the shop: prefixed by the source, as two shops may share one.
    # A guest checkout without a customer is known by its email.
    customer_key = customer.get("id") or email
    return {
        "id": headers.get(SHOPIFY_WEBHOOK_ID),
        "type": event_type,
        "occurred_at": headers.get(SHOPIFY_TRIGGERED_AT)
        or order.get("processed_at")
        or order.get("updated_at")
        or order.get("created_at"),
        "customer": _without_none(
            {
                "external_id": f"{source}:{customer_key}" if customer_key else None,
                "email": email,
                "phone": phone,
                "name": name or None,
                "locale": order.get("customer_locale"),
            }
        ),
        "properties": _without_none(
            {
                "order_id": order.get("id"),
                "order_number": order.get("order_number"),
                "order_name": order.get("name"),
                "amount": _amount(order.get("total_price")),
                "currency": order.get("currency"),
                "financial_status": order.get("financial_status"),
                "fulfillment_status": order.get("fulfillment_status"),
                "shopify_topic": topic,
                "shop_domain": headers.get(SHOPIFY_SHOP_DOMAIN),
            }
        ),
    }


def _amount(price: Any) -> float | None:
    """Shopify sends money as text ("403.00"); a number lets a trigger rule test ``amount gte 100``."""
    try:
        return float(price)
    except (TypeError, ValueError):
        return None


# --- Zendesk ---------------------------------------------------------------------------------------------

ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
ZENDESK_STATUS_CHANGED = "zen:event-type:ticket.status_changed"


def verify_zendesk(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime, tolerance: timedelta = TOLERANCE
) -> None:
    """Check the HMAC of timestamp + body, and that the timestamp is within five minutes of ``now``."""
    signature, timestamp = headers.get(ZENDESK_SIGNATURE), headers.get(ZENDESK_TIMESTAMP)
    if not signature or not timestamp:
        raise WebhookVerificationError(f"missing {ZENDESK_SIGNATURE} or {ZENDESK_TIMESTAMP} header")
    signed_at = _zendesk_time(timestamp)
    if abs((now - signed_at).total_seconds()) > tolerance.total_seconds():
        raise WebhookVerificationError(f"{ZENDESK_TIMESTAMP} is outside the five-minute tolerance")
    if not hmac.compare_digest(signature.strip().encode(), _hmac_base64(secret, timestamp.encode() + body)):
        raise WebhookVerificationError(f"{ZENDESK_SIGNATURE} does not match the timestamp and body")


def _zendesk_time(timestamp: str) -> datetime:
    """Zendesk sends an ISO 8601 time (2024-04-17T17:18:10Z); seconds since the epoch are taken too."""
    try:
        if timestamp.isascii() and timestamp.isdigit():
            return datetime.fromtimestamp(int(timestamp), UTC)
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as error:
        raise WebhookVerificationError(f"{ZENDESK_TIMESTAMP} is not a time") from error
    if moment.tzinfo is None:
        raise WebhookVerificationError(f"{ZENDESK_TIMESTAMP} has no time zone")
    return moment


def zendesk_event(source: str, payload: Mapping[str, Any]) -> dict[str, Any] | Ignored:
    """A ticket solved (a status change to solved) as support_call.ended; other events are ignored.

    Zendesk's event names the requester by id only: the customer is ``<source>:<requester id>``, reached
    at the address a CRM event or PUT /v1/customers gave them (or skipped, saying no address is known).
    """
    event_type = payload.get("type")
    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
    change = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    current = change.get("current")
    status = current.get("status") if isinstance(current, dict) else current
    if event_type != ZENDESK_STATUS_CHANGED or str(status).lower() != "solved":
        return Ignored(f"Zendesk event {event_type} ({status}) is not surveyed")
    requester = detail.get("requester_id")
    return {
        "id": payload.get("id"),
        "type": "support_call.ended",
        "occurred_at": payload.get("time"),
        "customer": {"external_id": f"{source}:{requester}" if requester not in (None, "") else None},
        "properties": _without_none(
            {
                "ticket_id": detail.get("id"),
                "status": "solved",
                "priority": detail.get("priority"),
                "ticket_type": detail.get("type"),
                "via_channel": (detail.get("via") or {}).get("channel")
                if isinstance(detail.get("via"), dict)
                else None,
                "brand_id": detail.get("brand_id"),
                "group_id": detail.get("group_id"),
                "assignee_id": detail.get("assignee_id"),
                "zendesk_event": event_type,
            }
        ),
    }


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}
