"""Dispatch rules with no I/O: a delivery's states, which channel, when to retry, what an invitation says."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from enum import StrEnum

from shared.channels import Channel
from shared.retries import RetrySchedule


class DeliveryKind(StrEnum):
    INVITATION = "invitation"


class DeliveryState(StrEnum):
    """Where a delivery is; the value is what its status column stores.

    A delivery is scheduled, claimed by a worker (sending, the attempt counted), then sent, delivered, or
    one of the terminal failures; suppressed when the customer opted out of every channel we could use.
    A failed attempt puts a sending delivery back to scheduled while attempts remain, else to failed
    (``DELIVERY_RETRIES``). Everything else, provider reports above all, only moves a delivery forward
    (``is_forward_transition``).
    """

    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    SUPPRESSED = "suppressed"

    @property
    def rank(self) -> int:
        """Position in the forward order; terminal states share the highest."""
        return _RANK[self]


TERMINAL_FAILURE_STATES = frozenset(
    {DeliveryState.BOUNCED, DeliveryState.DROPPED, DeliveryState.FAILED, DeliveryState.UNDELIVERED}
)
TERMINAL_STATES = TERMINAL_FAILURE_STATES | {DeliveryState.SUPPRESSED}

# Every terminal state shares the top rank: above "delivered", because a bounce can follow a "delivered"
# (the receiving server accepted, then bounced) and must win, while a late or repeated "delivered" must never
# undo a failure; and equal to each other, so the first one recorded stays.
_PROGRESS = (DeliveryState.SCHEDULED, DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.DELIVERED)
_RANK = {state: rank for rank, state in enumerate(_PROGRESS)} | dict.fromkeys(TERMINAL_STATES, len(_PROGRESS))


def is_forward_transition(current: str, new: str) -> bool:
    """True when a delivery in state ``current`` may move to ``new``: strictly forward only.

    A repeat is not a transition, a late "delivered" never overwrites a bounce, and the first terminal state
    stays. Raises ValueError for a word that is not a delivery state.
    """
    return DeliveryState(new).rank > DeliveryState(current).rank


# Attempts are counted when a worker claims a delivery; a claim older than the lease lost its worker.
DELIVERY_RETRIES = RetrySchedule(
    waiting=DeliveryState.SCHEDULED,
    in_flight=DeliveryState.SENDING,
    given_up=DeliveryState.FAILED,
    max_attempts=6,
    lease=timedelta(minutes=15),
)

# An SMS reply answers the latest invitation that reached that number within this window.
REPLY_WINDOW = timedelta(days=14)
# A reply proves the message reached the phone, even before the provider's answer to our send was recorded.
REPLYABLE_STATES = frozenset({DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.DELIVERED})

# Dispatch's own words in a message: survey sends the question, dispatch adds the footer.
FOOTER_TEXTS = {
    "en": {"unsubscribe": "Unsubscribe from these surveys"},
    "tr": {"unsubscribe": "Bu anketlerin aboneliğinden çık"},
}


def choose_channel(
    preferred: str, email: str | None, phone: str | None, opted_out: Collection[str] = ()
) -> tuple[Channel, str] | None:
    """(channel, address) by the customer's preference, falling back to the other channel.

    A channel without an address, or one the customer opted out of, is skipped; None when no channel is left.
    """
    addresses = {Channel.EMAIL: email, Channel.SMS: phone}
    order = [Channel(preferred), *(channel for channel in Channel if channel != preferred)]
    for channel in order:
        address = addresses[channel]
        if address and channel not in opted_out:
            return channel, address
    return None


def normal_address(channel: str, address: str) -> str:
    """An address as opt-outs and replies compare it: email without case, a phone number as given (E.164)."""
    return address.strip().lower() if channel == Channel.EMAIL else address.strip()


def score_links(answer_url: str) -> list[tuple[int, str]]:
    separator = "&" if "?" in answer_url else "?"
    return [(score, f"{answer_url}{separator}score={score}") for score in range(11)]


def invitation_email_text(greeting: str, question: str, low: str, high: str, answer_url: str) -> str:
    lines = [greeting, "", question, f"0 = {low}, 10 = {high}", ""]
    lines += [f"{score}: {url}" for score, url in score_links(answer_url)]
    return "\n".join(lines)
