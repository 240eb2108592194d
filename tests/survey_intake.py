"""CRM events in, decisions out, for tests: the intake answers at once and the decider decides right after.

In production the survey clock runs the decider as soon as an event is stored; here a test runs it itself
(the same use case the clock runs), then reads the decision as staff would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from services.survey import service
from services.survey.runtime import SurveyRuntime
from tests.conftest import signed_request, staff_client, wait_for


@dataclass(frozen=True)
class DecidedEvent:
    """The intake's answer and the decision taken right after (what POST /v1/events answered before)."""

    event_id: str
    duplicate: bool
    decision: str | None
    reason: str | None
    invitation_id: str | None
    # Details of the decision: left out of equality, as an outcome is the same when its decision is.
    reason_code: str | None = field(default=None, compare=False)
    due_at: datetime | None = field(default=None, compare=False)


def accept_and_decide(runtime: SurveyRuntime, event: dict[str, Any], source: str = "default") -> DecidedEvent:
    """``service.accept_crm_event``, then the decider the clock runs, then the event's decision."""
    receipt = service.accept_crm_event(runtime, event, source)
    service.decide_received_events(runtime)
    record = service.event_decision(runtime, receipt.event_id)
    return DecidedEvent(
        receipt.event_id,
        receipt.duplicate,
        record.decision,
        record.reason,
        record.invitation_id,
        record.reason_code,
        record.due_at,
    )


def post_and_decide(
    client: FlaskClient,
    runtime: SurveyRuntime,
    event: dict[str, Any],
    path: str = "/v1/events",
    **sign_options: Any,
) -> tuple[TestResponse, dict[str, Any]]:
    """POST a signed event, run the decider, and GET the event as staff (``client`` carries an API key).

    Returns the intake's answer and the event's decision (GET /v1/events/{id}).
    """
    body, headers = signed_request(event, **sign_options)
    answer = client.post(path, data=body, headers=headers)
    assert answer.status_code in (200, 202), answer.get_json()
    service.decide_received_events(runtime)
    return answer, decision_of(client, answer)


def decision_of(client: FlaskClient, answer: TestResponse) -> dict[str, Any]:
    """The event's decision, read where the intake's answer links to."""
    decision = client.get(answer.get_json()["links"]["event"])
    assert decision.status_code == 200, decision.get_json()
    return decision.get_json()


def post_and_wait_for_decision(system: Any, event: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
    """In a running system (its clock decides): POST a signed event, then poll GET /v1/events/{id} as staff
    until it is decided; returns the decision."""
    body, headers = signed_request(event)
    answer = system.apps["survey"].test_client().post("/v1/events", data=body, headers=headers)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    staff = staff_client(system.apps["survey"], system.runtimes["survey"].identity)

    def decided() -> dict[str, Any] | None:
        decision = decision_of(staff, answer)
        return decision if decision["status"] == "decided" else None

    return wait_for(decided, timeout, what=f"the decision about {event['id']}")
