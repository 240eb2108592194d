from __future__ import annotations

import pytest

from services.dispatch import domain
from services.dispatch.domain import DeliveryState, is_forward_transition
from shared.clock import utcnow

NOW = utcnow()


def test_preferred_channel_is_used_when_reachable():
    assert domain.choose_channel("sms", "a@example.com", "+15555550100") == ("sms", "+15555550100")


def test_falls_back_to_email_without_a_phone():
    assert domain.choose_channel("sms", "a@example.com", None) == ("email", "a@example.com")


def test_falls_back_when_the_preferred_channel_opted_out():
    assert domain.choose_channel("email", "a@example.com", "+15555550100", {"email"}) == (
        "sms",
        "+15555550100",
    )


def test_no_channel_when_every_reachable_one_opted_out():
    assert domain.choose_channel("email", "a@example.com", None, {"email"}) is None


def test_email_addresses_compare_without_case_and_phone_numbers_as_given():
    assert domain.normal_address("email", " Ada@Example.COM ") == "ada@example.com"
    assert domain.normal_address("sms", " +15555550100 ") == "+15555550100"


def test_deliveries_are_tried_six_times_then_given_up():
    assert domain.DELIVERY_RETRIES.next_attempt_at(5, NOW) is not None
    assert domain.DELIVERY_RETRIES.next_attempt_at(6, NOW) is None
    assert domain.DELIVERY_RETRIES.given_up == DeliveryState.FAILED


def test_eleven_score_links():
    links = domain.score_links("https://x.test/s/tok")
    assert [score for score, _ in links] == list(range(11))
    assert links[9][1] == "https://x.test/s/tok?score=9"


# --- Delivery states ------------------------------------------------------------------------------


def test_every_state_has_a_rank():
    assert {state: state.rank for state in DeliveryState}.keys() == set(DeliveryState)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("scheduled", "sending"),
        ("sending", "sent"),
        ("sent", "delivered"),
        ("sending", "delivered"),  # the provider's report can beat our own "sent" write
        ("sent", "bounced"),
        ("delivered", "bounced"),  # an asynchronous bounce after the receiving server accepted
        ("scheduled", "failed"),
        ("sent", "undelivered"),
        ("scheduled", "suppressed"),
    ],
)
def test_delivery_moves_forward(current: str, new: str) -> None:
    assert is_forward_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("bounced", "delivered"),  # a late delivered never overwrites a bounce
        ("dropped", "delivered"),
        ("undelivered", "delivered"),
        ("failed", "sent"),
        ("delivered", "delivered"),  # a repeat is not a transition
        ("delivered", "sent"),
        ("sent", "sending"),
        ("sending", "scheduled"),  # only a failed attempt's retry goes back, through DELIVERY_RETRIES
    ],
)
def test_delivery_never_moves_back_or_sideways(current: str, new: str) -> None:
    assert not is_forward_transition(current, new)


@pytest.mark.parametrize("first", sorted(domain.TERMINAL_FAILURE_STATES))
def test_the_first_terminal_failure_stays(first: DeliveryState) -> None:
    assert not any(is_forward_transition(first, later) for later in domain.TERMINAL_FAILURE_STATES)


def test_suppressed_is_terminal():
    assert not any(is_forward_transition(DeliveryState.SUPPRESSED, state) for state in DeliveryState)


def test_unknown_state_word_is_a_programming_error():
    with pytest.raises(ValueError):
        is_forward_transition("sent", "teleported")
