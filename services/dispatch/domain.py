"""Dispatch rules with no I/O: which channel, when to retry, what an invitation email says."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

MAX_ATTEMPTS = 6
# A claimed delivery whose attempt never reported back (its worker died mid-call) is tried again after this.
STALLED_AFTER = timedelta(minutes=15)

# Dispatch's own words in a message: survey sends the question, dispatch adds the footer.
FOOTER_TEXTS = {
    "en": {"unsubscribe": "Unsubscribe from these surveys"},
    "tr": {"unsubscribe": "Bu anketlerin aboneliğinden çık"},
}


def footer_texts(locale: str) -> dict[str, str]:
    return FOOTER_TEXTS.get(locale, FOOTER_TEXTS["en"])


def choose_channel(
    preferred: str, email: str | None, phone: str | None, opted_out: Collection[str] = ()
) -> tuple[str, str] | None:
    """(channel, address) by the customer's preference, falling back to the other channel.

    A channel without an address, or one the customer opted out of, is skipped; None when no channel is left.
    """
    addresses = {"email": email, "sms": phone}
    order = [preferred] + [channel for channel in ("email", "sms") if channel != preferred]
    for channel in order:
        if addresses.get(channel) and channel not in opted_out:
            return channel, addresses[channel]
    return None


def next_attempt_at(attempts: int, now: datetime, retry_after: float | None = None) -> datetime | None:
    """When to try again after ``attempts`` failed tries (30 s, 1, 2, 4, 8 min...); None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    backoff = timedelta(seconds=30 * 2 ** (attempts - 1))
    if retry_after is not None:
        backoff = max(backoff, timedelta(seconds=retry_after))
    return now + backoff


def score_links(answer_url: str) -> list[tuple[int, str]]:
    separator = "&" if "?" in answer_url else "?"
    return [(score, f"{answer_url}{separator}score={score}") for score in range(11)]


def invitation_email_text(greeting: str, question: str, low: str, high: str, answer_url: str) -> str:
    lines = [greeting, "", question, f"0 = {low}, 10 = {high}", ""]
    lines += [f"{score}: {url}" for score, url in score_links(answer_url)]
    return "\n".join(lines)
