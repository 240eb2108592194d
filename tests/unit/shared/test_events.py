import pytest

from shared.events import EVENTS, InvalidEvent, new_event, parse_event

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


# --- Closing the loop: the contracts followup produces, and the one survey produces for it -------------

CONTACT = {"customer_id": "c1", "name": "Jane", "email": "jane@example.com", "preferred_channel": "email"}
REFERRAL = {
    "referral_id": "ref-1",
    "customer": CONTACT,
    "referral_url": "https://shop.example.com/r/Jk3pQ",
    "locale": "tr",
}
REVIEW = {
    "review_request_id": "rev-1",
    "customer": CONTACT,
    "review_url": "https://g.page/r/shop/review",
    "score": 4,
    "locale": "en",
}
RESOLVED = {
    "task_id": "t1",
    "response_id": "r1",
    "invitation_id": "i1",
    "customer": CONTACT,
    "locale": "en",
    "resolution_code": "contacted_resolved",
}
CODE_USED = {
    "referral_code": "Jk3pQ",
    "event_id": "e1",
    "event_type": "purchase.completed",
    "customer_id": "c2",
    "occurred_at": "2026-11-25T10:00:00+00:00",
}


def test_closing_the_loop_events_go_from_followup_to_dispatch_and_survey_and_referrals_back_to_followup():
    routes = {
        name: (EVENTS[name].producer, EVENTS[name].consumers)
        for name in ("referral.requested", "review.requested", "followup.resolved", "referral.code_used")
    }
    assert routes == {
        "referral.requested": ("followup", ("dispatch",)),
        "review.requested": ("followup", ("dispatch",)),
        "followup.resolved": ("followup", ("dispatch", "survey")),
        "referral.code_used": ("survey", ("followup",)),
    }


def test_referral_request_carries_what_dispatch_needs_to_reach_the_customer():
    phone_only = {"customer_id": "c1", "phone": "+905321234567", "preferred_channel": "sms"}
    _, data = parse_event(
        new_event("referral.requested", {**REFERRAL, "customer": phone_only}), "referral.requested"
    )
    assert data["customer"] == {
        "customer_id": "c1",
        "name": None,
        "email": None,
        "phone": "+905321234567",
        "timezone": None,
        "preferred_channel": "sms",
    }
    assert (data["referral_url"], data["locale"]) == ("https://shop.example.com/r/Jk3pQ", "tr")


def test_review_request_and_resolved_task_and_referral_code_round_trip_through_their_contracts():
    resolved = {**RESOLVED, "close_loop_message": "We refunded you.", "follow_up_survey_after_days": 14}
    _, review = parse_event(new_event("review.requested", REVIEW), "review.requested")
    _, task = parse_event(new_event("followup.resolved", resolved), "followup.resolved")
    _, code = parse_event(new_event("referral.code_used", CODE_USED), "referral.code_used")

    assert (review["review_url"], review["score"]) == ("https://g.page/r/shop/review", 4)
    assert (task["close_loop_message"], task["follow_up_survey_after_days"]) == ("We refunded you.", 14)
    assert (code["referral_code"], code["occurred_at"].isoformat()) == ("Jk3pQ", "2026-11-25T10:00:00+00:00")


def test_resolved_task_without_a_message_or_a_follow_up_survey_asks_for_neither():
    _, data = parse_event(new_event("followup.resolved", RESOLVED), "followup.resolved")
    assert (data["close_loop_message"], data["follow_up_survey_after_days"]) == (None, None)


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("referral.requested", {**REFERRAL, "referral_code": "Jk3pQ"}, "referral_code"),
        ("review.requested", {**REVIEW, "rating": 5}, "rating"),
        ("followup.resolved", {**RESOLVED, "note": "called back"}, "note"),
        ("referral.code_used", {**CODE_USED, "referrer_id": "c1"}, "referrer_id"),
    ],
)
def test_closing_the_loop_contracts_refuse_unknown_fields(event_type, data, field):
    with pytest.raises(InvalidEvent) as error:
        new_event(event_type, data)
    assert field in error.value.errors


def test_consumer_refuses_an_unknown_field_in_the_customer_of_a_referral_request():
    envelope = new_event("referral.requested", REFERRAL)
    envelope["data"]["customer"]["locale"] = "tr"
    with pytest.raises(InvalidEvent) as error:
        parse_event(envelope, "referral.requested")
    assert "locale" in error.value.errors["customer"]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://shop.example.com/r/Jk3pQ",
        "data:text/html,hi",
        "/r/Jk3pQ",
        "shop.example.com",
    ],
)
def test_referral_and_review_links_are_http_or_https_only(url):
    with pytest.raises(InvalidEvent) as referral:
        new_event("referral.requested", {**REFERRAL, "referral_url": url})
    with pytest.raises(InvalidEvent) as review:
        new_event("review.requested", {**REVIEW, "review_url": url})
    assert "referral_url" in referral.value.errors and "review_url" in review.value.errors


def test_link_to_a_local_host_is_a_valid_link_for_development():
    _, data = parse_event(
        new_event("referral.requested", {**REFERRAL, "referral_url": "http://localhost:8000/r/Jk3pQ"}),
        "referral.requested",
    )
    assert data["referral_url"] == "http://localhost:8000/r/Jk3pQ"


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({**CONTACT, "phone": "0532 123 45 67"}, "phone"),
        ({**CONTACT, "email": "jane"}, "email"),
        ({**CONTACT, "preferred_channel": "pigeon"}, "preferred_channel"),
        ({key: value for key, value in CONTACT.items() if key != "preferred_channel"}, "preferred_channel"),
        ({key: value for key, value in CONTACT.items() if key != "customer_id"}, "customer_id"),
    ],
)
def test_customer_of_a_request_must_be_reachable_as_dispatch_understands_it(customer, field):
    with pytest.raises(InvalidEvent) as error:
        new_event("referral.requested", {**REFERRAL, "customer": customer})
    assert field in error.value.errors["customer"]


@pytest.mark.parametrize("score", [11, -1, "9", 9.5, None])
def test_review_request_score_is_an_integer_from_0_to_10(score):
    with pytest.raises(InvalidEvent) as error:
        new_event("review.requested", {**REVIEW, "score": score})
    assert "score" in error.value.errors


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("follow_up_survey_after_days", 0),
        ("follow_up_survey_after_days", 366),
        ("follow_up_survey_after_days", "14"),
        ("close_loop_message", ""),
        ("close_loop_message", "x" * 1001),
        ("close_loop_message", "We called\x00you"),
        ("response_id", "r" * 37),
    ],
)
def test_resolved_task_with_an_unusable_value_breaks_the_contract(field, value):
    with pytest.raises(InvalidEvent) as error:
        new_event("followup.resolved", {**RESOLVED, field: value})
    assert field in error.value.errors


def test_referral_code_use_needs_the_time_it_happened_with_its_zone():
    with pytest.raises(InvalidEvent) as error:
        new_event("referral.code_used", {**CODE_USED, "occurred_at": "2026-11-25T10:00:00"})
    assert "occurred_at" in error.value.errors
