"""Outbound webhooks and alerts, the rules with no I/O: which events there are, which addresses we call, when
we try again, and what a message looks like.

Messages follow Standard Webhooks (https://www.standardwebhooks.com) like the CRM events we receive: a JSON
body ``{"type", "timestamp", "data"}`` signed with the endpoint's ``whsec_`` secret in the ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` headers (``shared.signing``), so any standard verifier
accepts them. Alerts are Slack-compatible incoming-webhook messages (``{"text": ...}``), not signed.
"""

from __future__ import annotations

import codecs
import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.clock import as_utc
from shared.retries import RetrySchedule
from shared.signing import signed_headers

if TYPE_CHECKING:
    from .models import FollowupTask, ReferralRequest, TimelineEntry


class WebhookEventType(StrEnum):
    """Every event an endpoint may subscribe to: the one list the API, the page and the recorders use."""

    RESPONSE_RECEIVED = "response.received"
    RESPONSE_SCORED = "response.scored"
    FOLLOWUP_OPENED = "followup.opened"
    FOLLOWUP_UPDATED = "followup.updated"
    FOLLOWUP_RESOLVED = "followup.resolved"
    REFERRAL_REQUESTED = "referral.requested"
    REFERRAL_CONVERTED = "referral.converted"


EVENT_TYPES = tuple(event_type.value for event_type in WebhookEventType)


class DeliveryKind(StrEnum):
    WEBHOOK = "webhook"  # to a registered endpoint, signed
    ALERT = "alert"  # to the Slack-compatible alert URL of the settings, not signed


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


# --- When to try again -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JitteredRetrySchedule(RetrySchedule):
    """``RetrySchedule``'s exponential backoff, each delay stretched or shrunk by up to ``jitter``.

    Without jitter, every delivery that failed while a receiver was down would come back at the same
    moments and hit it all at once when it recovers.
    """

    jitter: float = 0.2
    # A number in [0, 1); tests pass a fixed one.
    draw: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def next_attempt_at(
        self, attempts: int, now: datetime, retry_after: float | None = None
    ) -> datetime | None:
        plain = super().next_attempt_at(attempts, now, retry_after)
        if plain is None:
            return None
        return now + jittered(plain - now, self.jitter, self.draw())


def jittered(delay: timedelta, jitter: float, draw: float) -> timedelta:
    """``delay`` times a factor between 1 - jitter and 1 + jitter, chosen by ``draw`` in [0, 1)."""
    return delay * (1 - jitter + 2 * jitter * draw)


# Attempts after 1, 2, 4 ... 256 minutes, then 8 hours twice: the twelfth and last attempt comes about 24.5
# hours after the first (each wait +-20%). A delivery still failing then fails, and its endpoint is disabled.
WEBHOOK_RETRIES = JitteredRetrySchedule(
    waiting=DeliveryStatus.SCHEDULED,
    in_flight=DeliveryStatus.SENDING,
    given_up=DeliveryStatus.FAILED,
    first_delay=timedelta(minutes=1),
    max_delay=timedelta(hours=8),
    max_attempts=12,
    # A batch of 50 calls of at most a few seconds each ends well within this.
    lease=timedelta(minutes=15),
)

# --- Which addresses we call -----------------------------------------------------------------------------

MAX_URL_LENGTH = 2000
# Cloud providers' instance metadata services: never a webhook receiver, whatever the settings allow.
# (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS ECS: 169.254.170.2; AWS over IPv6: fd00:ec2::254;
# Alibaba: 100.100.100.200; Azure's wire server: 168.63.129.16, a public address.)
METADATA_ADDRESSES = frozenset(
    ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_NAT64 = ip_address("64:ff9b::")
IPAddress = IPv4Address | IPv6Address


class RefusedUrl(ValueError):
    """A webhook URL we do not call; the message says why, in words for the person who entered it."""


@dataclass(frozen=True)
class WebhookTarget:
    """A URL that passed the rules of its form: where to connect and what the request names."""

    url: str
    scheme: str
    host: str  # a name or an address, without IPv6 brackets
    port: int


def check_url(url: str, allow_private: bool = False) -> WebhookTarget:
    """The target ``url`` names, or RefusedUrl: not http(s), no host, credentials in it, or a refused address.

    A host name is only checked once it is resolved (``check_addresses``), at registration and again at
    every attempt: what a name resolves to can change.
    """
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"A webhook URL has at most {MAX_URL_LENGTH} characters.")
    if any(ord(character) <= 0x20 or ord(character) == 0x7F for character in url):
        raise RefusedUrl("A webhook URL has no spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as invalid:
        raise RefusedUrl(f"This is not a valid URL: {invalid}.") from invalid
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedUrl("A webhook URL starts with https:// (or http://).")
    if not parts.hostname:
        raise RefusedUrl("A webhook URL names a host.")
    if parts.username is not None or parts.password is not None:
        # Our signature is the authentication; credentials in a URL end up in logs and on pages.
        raise RefusedUrl("A webhook URL carries no user name or password: receivers check our signature.")
    host = parts.hostname
    literal = _literal_address(host)
    reason = None if literal is None else address_refusal(literal, allow_private)
    if reason is not None:
        raise RefusedUrl(f"{host} is {reason}: webhooks go to public addresses only.")
    return WebhookTarget(url, scheme, host, port or (443 if scheme == "https" else 80))


def check_addresses(host: str, addresses: Iterable[str], allow_private: bool = False) -> None:
    """RefusedUrl when ``host`` resolved to nothing, or to any address we do not call.

    Any, not all: a name with one public and one private address could be answered by either.
    """
    addresses = list(addresses)
    if not addresses:
        raise RefusedUrl(f"{host} does not resolve to any address.")
    for address in addresses:
        reason = address_refusal(ip_address(address), allow_private)
        if reason is not None:
            raise RefusedUrl(
                f"{host} resolves to {address}, which is {reason}: webhooks go to public addresses only."
            )


def address_refusal(address: IPAddress, allow_private: bool = False) -> str | None:
    """Why we do not call ``address`` (a loopback address...), or None when we do.

    ``allow_private`` (CLOSELOOP_WEBHOOKS_ALLOW_PRIVATE, for local development) lets loopback, private and
    link-local addresses through; cloud metadata addresses are refused even then.
    """
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = address_refusal(embedded, allow_private)
        if reason is not None:
            return reason
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), which is where it really goes."""
    if not isinstance(address, IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) >> 32 == int(_NAT64) >> 32:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


# --- What an attempt did ---------------------------------------------------------------------------------

# What the delivery log keeps of a receiver's answer: enough to read an error, never a whole page.
RESPONSE_EXCERPT_BYTES = 256
MAX_ERROR_LENGTH = 500


def is_delivered(status_code: int) -> bool:
    """Only a 2xx answer delivers; a redirect is not followed, so a 3xx fails like a 4xx or 5xx."""
    return 200 <= status_code < 300


def failure_text(status_code: int, location: str | None = None) -> str:
    if 300 <= status_code < 400:
        where = f" to {location[:200]}" if location else ""
        return f"The receiver answered HTTP {status_code}, a redirect{where}; redirects are not followed."
    return f"The receiver answered HTTP {status_code}."


def excerpt(body: bytes) -> str:
    """The start of a receiver's answer as storable text: no NUL character, broken UTF-8 replaced, and no
    half of a character where the cut fell."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(body[:RESPONSE_EXCERPT_BYTES], final=False).replace("\x00", "\ufffd")


def error_text(error: str) -> str:
    return error.replace("\x00", "\ufffd")[:MAX_ERROR_LENGTH]


# --- Messages --------------------------------------------------------------------------------------------


def message(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """A Standard Webhooks message: what happened, when, and the object it happened to."""
    return {"type": event_type, "timestamp": _iso(occurred_at), "data": dict(data)}


def encode(body: Mapping[str, Any]) -> bytes:
    """The bytes sent and signed; names and comments as written, not as \\u escapes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def new_message_id(delivery_id: str) -> str:
    """A message's ``webhook-id``: the same on each retry and when sent again, so receivers de-duplicate."""
    return "msg_" + delivery_id.replace("-", "")


def request_headers(secret: str | None, message_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """Headers of one attempt; signed with ``secret`` (None: an alert, not signed).

    ``webhook-timestamp`` is the attempt's time, not the event's: receivers refuse a timestamp older than
    a few minutes, and a retry comes hours later.
    """
    headers = {"Content-Type": "application/json", "User-Agent": "Closeloop-Webhooks/1"}
    if secret is not None:
        headers.update(signed_headers(secret, body, message_id, now))
    return headers


def task_data(task: FollowupTask, change: TimelineEntry | None = None) -> dict[str, Any]:
    """``data`` of the followup.* events: the task as it is now and, for an update, what changed."""
    data: dict[str, Any] = {
        "task": {
            "id": task.id,
            "response_id": task.response_id,
            "invitation_id": task.invitation_id,
            "customer": {
                "customer_id": task.customer_id,
                "external_id": task.customer_external_id,
                "name": task.customer_name,
            },
            "touchpoint": task.touchpoint,
            "score": task.score,
            "comment": task.comment,
            "mismatch": task.mismatch,
            "priority": task.priority,
            "status": task.status,
            "owner": {"id": task.owner_id, "name": task.owner_name} if task.owner_id else None,
            "team_id": task.team_id,
            "due_at": _iso(task.due_at),
            "resolved_at": _iso(task.resolved_at),
            "resolution_code": task.resolution_code,
            "resolution_note": task.resolution_note,
            "close_loop_message": task.close_loop_message,
            "created_at": _iso(task.created_at),
            "updated_at": _iso(task.updated_at),
        }
    }
    if change is not None:
        data["change"] = {
            "kind": change.kind,
            "at": _iso(change.at),
            "actor": {"id": change.actor_id, "name": change.actor_name} if change.actor_id else None,
            "from_status": change.from_status,
            "to_status": change.to_status,
            "assignee": (
                {"id": change.assignee_id, "name": change.assignee_name} if change.assignee_id else None
            ),
            "note": change.body,
        }
    return data


def response_data(response: Mapping[str, Any], scored: bool) -> dict[str, Any]:
    """``data`` of response.received (``scored`` False) and response.scored, from the event followup got.

    The customer is named by the ids the CRM knows; their email and phone stay out of the message.
    """
    customer = response["customer"]
    answer: dict[str, Any] = {
        "id": response["response_id"],
        "invitation_id": response["invitation_id"],
        "revision": response["revision"],
        "score": response["score"],
        "comment": response["comment"],
        "touchpoint": response["touchpoint"],
        "channel": response["channel"],
        "locale": response["locale"],
        "customer": {
            "customer_id": customer["customer_id"],
            "external_id": customer.get("external_id"),
            "name": customer.get("name"),
        },
        "properties": response.get("properties"),
        "submitted_at": _iso(response["submitted_at"]),
    }
    if scored:
        sentiment = response["sentiment"]
        answer["sentiment"] = (
            None
            if sentiment is None
            else {key: sentiment.get(key) for key in ("label", "polarity", "subjectivity", "language")}
        )
    return {"response": answer}


def referral_data(request: ReferralRequest, conversion: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``data`` of referral.requested and, with what the attribution found, referral.converted."""
    data: dict[str, Any] = {
        "referral_request": {
            "id": request.id,
            "response_id": request.response_id,
            "invitation_id": request.invitation_id,
            # What the CRM will find in its events' properties.referral_code when the link works.
            "code": request.code,
            "customer": {"customer_id": request.customer_id, "name": request.customer_name},
            "score": request.score,
            "status": request.status,
            "created_at": _iso(request.created_at),
        }
    }
    if conversion is not None:
        data["conversion"] = dict(conversion)
    return data


# --- Alerts ----------------------------------------------------------------------------------------------

ALERT_COMMENT_LENGTH = 200


def alert_message(customer: str, score: int, comment: str | None, task_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook message for a new high-priority task.

    Slack reads ``<...>`` as links and mentions and ``&`` as an entity: a customer named ``<!channel>`` must
    not page everyone, so what customers wrote is escaped.
    """
    text = f":rotating_light: High-priority follow-up: *{_slack(customer)}* scored {score}/10"
    if comment:
        short = comment if len(comment) <= ALERT_COMMENT_LENGTH else comment[: ALERT_COMMENT_LENGTH - 1] + "…"
        text += "\n> " + _slack(" ".join(short.split()))
    text += f"\n<{task_url}|Open the task>"
    return {"text": text}


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _iso(moment: datetime | str | None) -> str | None:
    if moment is None or isinstance(moment, str):
        return moment
    return as_utc(moment).isoformat()
