"""Demo data for the embedded process: customers and CRM events posted through the real, signed API."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Any

from services.dispatch import service as dispatch_service
from services.dispatch.domain import REPLYABLE_STATES
from services.followup import service as followup_service
from services.followup.domain import StaffMember
from services.survey import service as survey_service
from services.survey.domain import TOUCHPOINTS
from shared.channels import Channel
from shared.clock import utcnow
from shared.principal import Role
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


# The demo's staff: sign in as the admin; the agents share the customer-care queue, round-robin.
DEMO_ADMIN = ("admin@example.com", "closeloop-demo-admin", "Demo Admin")
DEMO_PASSWORD = "closeloop-demo-agent"
DEMO_AGENTS = (("ana@example.com", "Ana Agent"), ("ben@example.com", "Ben Agent"))
DEMO_TEAM = "Customer care"


def load_demo(system: System) -> tuple[str, str]:
    """Staff, then the demo events (after a restart they add nothing), then two SMS answers.

    Returns the demo admin's email and password, for the start banner.
    """
    admin = _load_demo_staff(system)
    receipts = {key: post_signed_event(system, demo_event(key, *rest)) for key, *rest in DEMO_CUSTOMERS}
    # The survey clock decides each event right after it was accepted; these wait for their invitation.
    answers = {
        receipts[key]["event_id"]: body
        for key, body in DEMO_SMS_ANSWERS.items()
        if receipts[key]["status"] == "accepted"
    }
    if answers and system.settings.transport == "sandbox":
        threading.Thread(
            target=_reply_by_sms, args=(system, answers), name="closeloop-demo", daemon=True
        ).start()
    return admin[0], admin[1]


def _load_demo_staff(system: System) -> tuple[str, str, str]:
    identity = system.runtimes["followup"].identity
    known = {user.email: user for user in identity.list_users()}
    if DEMO_ADMIN[0] in known:
        return DEMO_ADMIN
    admin = identity.create_user(DEMO_ADMIN[0], DEMO_ADMIN[1], Role.ADMIN, DEMO_ADMIN[2])
    agents = [identity.create_user(email, DEMO_PASSWORD, Role.AGENT, name) for email, name in DEMO_AGENTS]
    acting = identity.principal_for_user(admin.id)
    followup = system.runtimes["followup"]
    members = [StaffMember(agent.id, agent.name or agent.email) for agent in agents]
    followup_service.create_team(followup, acting, DEMO_TEAM, sorted(set(TOUCHPOINTS.values())), members)
    return DEMO_ADMIN


def _reply_by_sms(system: System, by_event: dict[str, str], timeout: float = 60.0) -> None:
    """Reply as the customer would, once each event's SMS invitation has been sent (what /sandbox's form
    does); ``by_event``: the reply to each CRM event's invitation."""
    dispatch, survey = system.runtimes["dispatch"], system.runtimes["survey"]
    answers: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while (by_event or answers) and time.monotonic() < deadline:
        for event_id, body in list(by_event.items()):
            decision = survey_service.event_decision(survey, event_id)
            if decision.status == "decided":
                del by_event[event_id]
                if decision.invitation_id:
                    answers[decision.invitation_id] = body
        for invitation_id, body in list(answers.items()):
            sent = [
                delivery
                for delivery in dispatch_service.deliveries_for(dispatch, invitation_id)
                if delivery.channel == Channel.SMS and delivery.status in REPLYABLE_STATES
            ]
            if sent:
                message_sid = "SMdemo" + secrets.token_hex(16)
                dispatch_service.receive_sms(dispatch, message_sid, sent[0].address, body)
                del answers[invitation_id]
        time.sleep(0.3)
    if answers:
        log.warning("demo: %d SMS invitations were not sent within %.0f s", len(answers), timeout)
