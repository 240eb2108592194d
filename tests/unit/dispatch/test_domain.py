from __future__ import annotations

import pytest

from services.dispatch import domain
from services.dispatch.domain import DeliveryState, is_forward_transition
from shared.channels import normal_address
from shared.clock import utcnow
from shared.sms import sms_segments

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
    assert normal_address("email", " Ada@Example.COM ") == "ada@example.com"
    assert normal_address("sms", " +15555550100 ") == "+15555550100"


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
        ("quiet_hours", "sending"),
        ("quiet_hours", "cancelled"),  # a reminder the customer answered before
        ("unknown", "sent"),  # a provider report settles an unknown outcome
        ("unknown", "bounced"),
        ("delivered", "opened"),
        ("sent", "clicked"),  # a click implies the open a blocked image never reported
        ("clicked", "answered"),
        ("delivered", "answered"),
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
        ("sending", "quiet_hours"),
        ("scheduled", "quiet_hours"),  # both wait: the schedule, not a report, moves between them
        ("answered", "clicked"),  # a scanner's late click does not undo an answer
        ("answered", "delivered"),
        ("clicked", "opened"),
        ("sent", "unknown"),
        ("bounced", "opened"),
        ("cancelled", "sent"),
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


# --- Referral and review requests, close-the-loop messages ------------------------------------------------

REFERRAL_URL = "https://shop.example.com/r/Xk3p9QaZ"
REVIEW_URL = "https://g.page/r/CbX2Jk9Qz8/review"


def test_referral_message_greets_by_first_name_and_links_the_customers_own_referral_url():
    message = domain.referral_message("en", "Ada Lovelace", REFERRAL_URL)
    assert message.greeting == "Hello Ada,"
    assert message.link == domain.Link("Share your link", REFERRAL_URL)
    assert REFERRAL_URL in message.sms_body and message.sms_body.endswith("Reply STOP to opt out.")


def test_referral_message_in_turkish_is_written_in_turkish():
    message = domain.referral_message("tr", None, REFERRAL_URL)
    assert message.greeting == "Merhaba,"
    assert message.subject == "Bizi tavsiye ettiğiniz için teşekkürler"
    assert message.link.label == "Bağlantınızı paylaşın"


@pytest.mark.parametrize("locale", ["en", "tr"])
@pytest.mark.parametrize("url", [REFERRAL_URL, "https://shop.example.com/referrals/" + "x" * 40])
def test_referral_sms_fits_one_segment_with_a_usual_link(locale, url):
    sms = domain.referral_message(locale, "Ada", url).sms_body
    assert sms_segments(sms) == 1 and url in sms


def test_turkish_sms_is_spelled_in_gsm7_when_its_turkish_letters_would_cost_segments():
    sms = domain.referral_message("tr", "Ada", REFERRAL_URL).sms_body
    assert "teşekkür" not in sms and "tesekkür" in sms and sms.endswith("icin STOP.")


def test_sms_keeps_its_fullest_wording_while_that_fits_and_shortens_only_when_it_does_not():
    short_link = domain.referral_message("en", "Ada", "https://ex.am/r/1").sms_body
    long_link = domain.referral_message(
        "en", "Ada", "https://shop.example.com/referrals/" + "x" * 35
    ).sms_body
    assert short_link.startswith("Thank you for recommending us! Know someone")
    assert long_link.startswith("Thanks for recommending us! Your link to share:")
    assert sms_segments(long_link) == 1


@pytest.mark.parametrize("score", range(11))
def test_every_score_is_asked_for_a_review_with_the_same_link(score):
    # Review sites forbid gating: no score is left out or steered elsewhere.
    message = domain.review_message("en", "Ada", REVIEW_URL, score)
    assert message.link == domain.Link("Write a review", REVIEW_URL)
    assert REVIEW_URL in message.sms_body and sms_segments(message.sms_body) == 1


def test_review_request_thanks_each_kind_of_answer_in_its_own_words():
    thanks = {
        score: domain.review_message("en", None, REVIEW_URL, score).paragraphs[0] for score in (10, 7, 2)
    }
    assert thanks == {
        10: "Thank you for your great feedback.",
        7: "Thank you for your feedback.",
        2: "Thank you for your honest feedback.",
    }
    assert "positive" not in " ".join(domain.review_message("en", None, REVIEW_URL, 10).paragraphs)


def test_close_loop_message_is_the_teams_own_words_in_paragraphs_with_a_localized_subject():
    message = domain.close_loop_message(
        "tr", "Ada", "  Siparişinizi iade ettik.\n\nTekrar özür dileriz.\nEkip  "
    )
    assert (message.subject, message.greeting) == ("Geri bildiriminiz hakkında", "Merhaba Ada,")
    assert message.paragraphs == ("Siparişinizi iade ettik.", "Tekrar özür dileriz.\nEkip")
    assert message.link is None


def test_close_loop_sms_keeps_the_teams_spelling_and_adds_the_opt_out_line_when_it_costs_nothing():
    short = domain.close_loop_message("tr", None, "Siparişinizi iade ettik.").sms_body
    assert short == "Siparişinizi iade ettik. Çıkmak için STOP."


def test_close_loop_sms_drops_the_opt_out_line_when_it_would_cost_another_segment():
    text = "We refunded your order. " + "a" * (160 - 24)
    assert len(text) == 160
    assert domain.close_loop_message("en", None, text).sms_body == text


def test_close_loop_sms_spells_only_its_own_opt_out_line_in_gsm7_to_stay_in_one_segment():
    text = "Siparisinizi iade ettik, ozur dileriz. " + "a" * 100
    sms = domain.close_loop_message("tr", None, text).sms_body
    assert sms == f"{text} Çikmak icin STOP." and sms_segments(sms) == 1


def test_message_email_text_has_the_link_and_the_unsubscribe_address():
    message = domain.referral_message("en", "Ada", REFERRAL_URL)
    text = domain.message_email_text(
        message, "Unsubscribe from these messages", "http://d.test/unsubscribe/1"
    )
    assert text.startswith("Hello Ada,\n\nThank you for your kind words about us.")
    assert f"Share your link: {REFERRAL_URL}" in text
    assert text.endswith("Unsubscribe from these messages: http://d.test/unsubscribe/1")


def test_suppressed_delivery_says_whether_the_customer_opted_out_or_has_no_address():
    assert "opted out" in domain.suppression_reason("a@example.com", None)
    assert "no email address or phone number" in domain.suppression_reason(None, None)
