import pytest

from shared.events import InvalidEvent, new_event, parse_event

SUBMITTED = {
    "response_id": "r1",
    "invitation_id": "i1",
    "revision": 1,
    "score": 4,
    "comment": "slow",
    "locale": "en",
    "touchpoint": "purchase",
    "channel": "sms",
    "customer": {"customer_id": "c1", "external_id": "crm-1", "name": "Jane"},
    "submitted_at": "2026-11-25T10:00:00+00:00",
}


def test_event_round_trips_through_its_contract():
    envelope = new_event("response.submitted", SUBMITTED)
    assert envelope["type"] == "response.submitted" and envelope["version"] == 1
    _, data = parse_event(envelope, "response.submitted")
    assert data["score"] == 4 and data["customer"]["name"] == "Jane"


def test_publisher_cannot_emit_an_event_that_breaks_the_contract():
    with pytest.raises(InvalidEvent) as error:
        new_event("response.submitted", {**SUBMITTED, "score": 11})
    assert "score" in error.value.errors


def test_consumer_refuses_an_unknown_field():
    envelope = new_event("response.submitted", SUBMITTED)
    envelope["data"]["surprise"] = True
    with pytest.raises(InvalidEvent):
        parse_event(envelope, "response.submitted")


def test_consumer_refuses_an_event_of_another_type():
    envelope = new_event("response.submitted", SUBMITTED)
    with pytest.raises(InvalidEvent, match="expected"):
        parse_event(envelope, "response.scored")
