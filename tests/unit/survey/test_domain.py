from datetime import timedelta

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


def test_turkish_labels_are_in_turkish_and_greet_the_customer_by_first_name():
    labels = domain.survey_labels("tr", "Ayşe Demir")
    assert labels.greeting == "Merhaba Ayşe,"
    assert (labels.low_label, labels.high_label) == ("Hiç olası değil", "Çok olası")
    assert domain.survey_labels("de", None).greeting == "Hello,"


def _click(score, seconds):
    return domain.Click(score, NOW + timedelta(seconds=seconds))


def test_a_lone_click_counts_once_its_burst_window_has_passed():
    mine = _click(9, 0)
    assert domain.click_counts(mine, [mine])
    assert not domain.click_confirmable(mine, NOW + timedelta(seconds=1.9))
    assert domain.click_confirmable(mine, NOW + timedelta(seconds=2))


def test_clicks_for_other_scores_within_two_seconds_are_a_scanners_burst():
    burst = [_click(score, score * 0.1) for score in range(11)]
    assert not any(domain.click_counts(click, burst) for click in burst)


def test_a_click_three_seconds_after_a_burst_counts_and_the_same_score_again_is_no_burst():
    burst = [_click(score, score * 0.1) for score in range(11)]
    mine = _click(9, 4)
    assert domain.click_counts(mine, [*burst, mine])
    assert domain.click_counts(_click(9, 0), [_click(9, 0), _click(9, 0.5)])


def test_whatsapp_reaches_only_a_customer_who_prefers_it():
    # STOP by SMS leaves a phone-only customer unreachable, unless they prefer WhatsApp (tried first).
    sms_only = domain.reachability(None, "+905551112233", opted_out={"sms"}, preferred_channel="sms")
    assert domain.unreachable(sms_only).reason == "opted out of every channel"

    whatsapp = domain.reachability(None, "+905551112233", opted_out={"sms"}, preferred_channel="whatsapp")
    assert whatsapp.channels == {"sms", "whatsapp"} and domain.unreachable(whatsapp) is None

    everything = domain.reachability(None, "+905551112233", {"sms", "whatsapp"}, preferred_channel="whatsapp")
    assert domain.unreachable(everything).reason == "opted out of every channel"
