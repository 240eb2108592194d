"""What the followup unit tests build their cases from: scored-response events, staff, a hand-moved clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.followup.models import FollowupTask
from shared.events import new_event

from .fakes import ANA as ANA
from .fakes import BEN as BEN
from .fakes import MAYA as MAYA
from .fakes import FakeFollowupUnitOfWork

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NEGATIVE = {
    "polarity": -0.6,
    "subjectivity": 0.5,
    "label": "negative",
    "language": "en",
    "key_phrases": ["hung"],
    "analyzer": "test",
}
NEUTRAL = {**NEGATIVE, "polarity": 0.0, "label": "neutral", "key_phrases": []}


def scored(
    score: int,
    revision: int = 1,
    comment: str | None = None,
    sentiment: dict[str, Any] | None = None,
    response_id: str = "r-1",
    touchpoint: str = "support_call",
    **extra: Any,
) -> dict[str, Any]:
    """A response.scored event as sentiment emits it; ``extra`` replaces fields of its data."""
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": f"i-{response_id}",
            "revision": revision,
            "score": score,
            "comment": comment,
            "locale": "en",
            "touchpoint": touchpoint,
            "channel": "sms",
            "customer": {
                "customer_id": "c-1",
                "external_id": "crm-1",
                "name": "Jane Doe",
                "email": "jane@example.com",
                "phone": "+15555550100",
            },
            "submitted_at": START.isoformat(),
            "properties": {"order_id": "A-1001", "amount": 129.5},
            "sentiment": sentiment,
            **extra,
        },
    )


def the_task(uow: FakeFollowupUnitOfWork, response_id: str = "r-1") -> FollowupTask:
    task = uow.tasks.for_response(response_id)
    assert task is not None, f"no task for {response_id}"
    return task
