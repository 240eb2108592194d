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


def test_response_carries_the_customers_contact_details_and_the_invitations_properties():
    customer = {**SUBMITTED["customer"], "email": "jane@example.com", "phone": "+15555550100"}
    envelope = new_event(
        "response.submitted", {**SUBMITTED, "customer": customer, "properties": {"amount": 42}}
    )

    _, data = parse_event(envelope, "response.submitted")
    assert (data["customer"]["email"], data["customer"]["phone"]) == ("jane@example.com", "+15555550100")
    assert data["properties"] == {"amount": 42} and envelope["version"] == 1


def test_response_written_before_contact_details_and_properties_were_added_still_loads_as_it_was():
    envelope = new_event("response.submitted", SUBMITTED)

    _, data = parse_event(envelope, "response.submitted")
    assert "properties" not in data and set(data["customer"]) == {"customer_id", "external_id", "name"}


def test_response_with_a_malformed_customer_email_breaks_the_contract():
    with pytest.raises(InvalidEvent) as error:
        new_event("response.submitted", {**SUBMITTED, "customer": {"customer_id": "c1", "email": "jane"}})
    assert "email" in error.value.errors["customer"]


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
