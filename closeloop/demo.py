"""Demo data for the embedded process: customers and CRM events posted through the real, signed API."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from shared.clock import utcnow
from shared.signing import signed_headers

from .system import System

log = logging.getLogger(__name__)

DEMO_CUSTOMERS = [
    ("ada", "purchase.completed", {"name": "Ada Lovelace", "email": "ada@example.com", "locale": "en"}),
    (
        "mehmet",
        "support_call.ended",
        {"name": "Mehmet Yılmaz", "email": "mehmet@example.com", "locale": "tr"},
    ),
    ("grace", "site.visited", {"name": "Grace Hopper", "email": "grace@example.com", "locale": "en-US"}),
    (
        "alan",
        "support_call.ended",
        {"name": "Alan Turing", "phone": "+15555550101", "preferred_channel": "sms"},
    ),
    (
        "ayse",
        "purchase.completed",
        {
            "name": "Ayşe Demir",
            "phone": "+905555550102",
            "preferred_channel": "sms",
            "locale": "tr",
            "timezone": "Europe/Istanbul",
        },
    ),
    (
        "linus",
        "support_call.ended",
        {
            "name": "Linus Pauling",
            "phone": "+15555550103",
            "preferred_channel": "sms",
            "email": "linus@example.com",
        },
    ),
]
# Two SMS customers answer by themselves, so the task queue and the referrals have something at once.
DEMO_SMS_ANSWERS = {
    "alan": "2 The technician never showed up and nobody called to say why. Very disappointing.",
    "ayse": "10 Harika hizmet, kargo çok hızlı geldi, teşekkürler",
}


def demo_event(key: str, event_type: str, customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"demo-{key}",
        "type": event_type,
        "occurred_at": utcnow().isoformat(),
        "customer": {"external_id": f"crm-{key}", **customer},
        "properties": {"source": "demo"},
    }


def post_signed_event(system: System, event: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(event).encode()
    client = system.apps["survey"].test_client()
    headers = {"Content-Type": "application/json", **signed_headers(system.settings.webhook_secret, body)}
    return client.post("/v1/events", data=body, headers=headers).get_json()


def load_demo(system: System) -> None:
    """Post the demo events (after a restart they are duplicates and add nothing), then answer two SMS."""
    outcomes = {key: post_signed_event(system, demo_event(key, *rest)) for key, *rest in DEMO_CUSTOMERS}
    answers = {
        outcomes[key]["invitation_id"]: body
        for key, body in DEMO_SMS_ANSWERS.items()
        if not outcomes[key]["duplicate"] and outcomes[key]["invitation_id"]
    }
    if answers and system.settings.transport == "sandbox":
        threading.Thread(
            target=_reply_by_sms, args=(system, answers), name="closeloop-demo", daemon=True
        ).start()


def _reply_by_sms(system: System, answers: dict[str, str], timeout: float = 60.0) -> None:
    """Reply on the sandbox page, as a person would, once each SMS invitation has been sent."""
    client = system.apps["dispatch"].test_client()
    deadline = time.monotonic() + timeout
    while answers and time.monotonic() < deadline:
        for invitation_id, body in list(answers.items()):
            deliveries = client.get(
                "/v1/deliveries", query_string={"invitation_id": invitation_id}
            ).get_json()
            sent = [d for d in deliveries if d["channel"] == "sms" and d["status"] in ("sent", "delivered")]
            if sent:
                client.post(f"/sandbox/sms/{sent[0]['id']}/reply", data={"body": body})
                del answers[invitation_id]
        time.sleep(0.3)
    if answers:
        log.warning("demo: %d SMS invitations were not sent within %.0f s", len(answers), timeout)
