"""Standard Webhooks signatures (https://www.standardwebhooks.com), for CRM events in and webhooks out.

``webhook-signature`` is ``v1,`` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")),
where the key is the base64 part of a ``whsec_`` secret. Several space-separated signatures may be
sent while a secret is being rotated; one match is enough.
"""

from __future__ import annotations

import base64
import functools
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.clock import utcnow

SECRET_PREFIX = "whsec_"
TOLERANCE = timedelta(minutes=5)


class WebhookVerificationError(Exception):
    """The request was not signed by someone holding the secret, or too long ago."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# Decoded once per secret, not per request (issue 19); a malformed one raises each time (not cached).
@functools.lru_cache(maxsize=64)
def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secrets start with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.digest(_key(secret), signed, "sha256")  # one-shot: no HMAC object per request
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secret: str, body: bytes, message_id: str | None = None, now: datetime | None = None
) -> dict:
    message_id = message_id or "msg_" + secrets.token_urlsafe(16)
    timestamp = int((now or utcnow()).timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime | None = None, tolerance=TOLERANCE
) -> str:
    """Check the three headers; returns the webhook id or raises ``WebhookVerificationError``."""
    message_id = headers.get("webhook-id")
    timestamp_text = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not timestamp_text or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(timestamp_text)
    except ValueError as error:
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds") from error
    age = (now or utcnow()).timestamp() - timestamp
    if abs(age) > tolerance.total_seconds():
        raise WebhookVerificationError("webhook-timestamp is outside the five-minute tolerance")
    expected = sign(secret, message_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return message_id
    raise WebhookVerificationError("no webhook-signature matches")
