from datetime import timedelta

from services.dispatch import domain
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


def test_backoff_doubles_and_gives_up():
    assert domain.next_attempt_at(1, NOW) == NOW + timedelta(seconds=30)
    assert domain.next_attempt_at(3, NOW) == NOW + timedelta(minutes=2)
    assert domain.next_attempt_at(domain.MAX_ATTEMPTS, NOW) is None


def test_provider_retry_after_lengthens_the_wait():
    assert domain.next_attempt_at(1, NOW, retry_after=600) == NOW + timedelta(minutes=10)


def test_eleven_score_links():
    links = domain.score_links("https://x.test/s/tok")
    assert [score for score, _ in links] == list(range(11))
    assert links[9][1] == "https://x.test/s/tok?score=9"
