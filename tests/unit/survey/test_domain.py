from datetime import timedelta

import pytest

from services.survey import domain
from shared.clock import utcnow

NOW = utcnow()


def test_purchase_is_surveyed():
    decision = domain.decide_survey("purchase.completed", NOW - timedelta(hours=1), NOW, None)
    assert decision.invite and decision.reason == "purchase survey"


def test_customer_surveyed_within_thirty_days_is_not_asked_again():
    decision = domain.decide_survey("site.visited", NOW, NOW, last_invited_at=NOW - timedelta(days=29))
    assert not decision.invite and "30 days" in decision.reason


def test_customer_surveyed_over_thirty_days_ago_is_asked_again():
    assert domain.decide_survey("site.visited", NOW, NOW, last_invited_at=NOW - timedelta(days=31)).invite


def test_stale_event_is_not_surveyed():
    decision = domain.decide_survey("support_call.ended", NOW - timedelta(days=8), NOW, None)
    assert not decision.invite and "older" in decision.reason


def test_turkish_message_is_in_turkish_and_names_the_customer():
    message = domain.survey_message("tr", "support_call", "Ayşe Demir")
    assert message.greeting == "Merhaba Ayşe,"
    assert "Destek ekibimizle" in message.question
    assert "0 ile 10" in message.sms_body and "STOP" in message.sms_body


def _click(score, seconds):
    return domain.Click(score, NOW + timedelta(seconds=seconds))


def test_scanner_burst_of_every_link_is_not_a_person():
    clicks = [_click(score, score * 0.05) for score in range(11)]
    assert domain.human_clicks(clicks) == []
    assert domain.settled_score(clicks, NOW + timedelta(hours=1)) is None


def test_person_clicking_after_a_scanner_burst_is_kept():
    clicks = [_click(score, score * 0.05) for score in range(11)] + [_click(3, 120)]
    assert domain.settled_score(clicks, NOW + timedelta(hours=1)) == 3


def test_single_click_settles_only_after_the_quiet_period():
    clicks = [_click(9, 0)]
    assert domain.settled_score(clicks, NOW + timedelta(minutes=5)) is None
    assert domain.settled_score(clicks, NOW + timedelta(minutes=11)) == 9


def test_person_changing_their_mind_gets_the_last_score():
    clicks = [_click(6, 0), _click(8, 60)]
    assert domain.settled_score(clicks, NOW + timedelta(hours=1)) == 8


@pytest.mark.parametrize(
    ("body", "score", "comment"),
    [
        ("9", 9, None),
        (" 10 ", 10, None),
        ("9, great staff", 9, "great staff"),
        ("3 - the agent was rude", 3, "the agent was rude"),
        ("great staff", None, "great staff"),
        ("11", None, "11"),
        ("100 percent", None, "100 percent"),
    ],
)
def test_sms_answer_is_a_score_and_or_a_comment(body, score, comment):
    assert domain.parse_sms_answer(body) == domain.SmsAnswer(score, comment)


def test_comment_after_a_comment_is_appended():
    assert domain.merge_comment("late", "and rude") == "late\nand rude"
    assert domain.merge_comment(None, "late") == "late"
    assert domain.merge_comment("late", None) == "late"
