"""Dispatch rules with no I/O: a delivery's states, which channel, when to retry, what each message says."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.channels import CHANNELS, WHATSAPP_PREFIX, Channel
from shared.locales import localized
from shared.nps import NpsCategory, nps_category
from shared.retries import RetrySchedule
from shared.sms import fewest_segments, gsm7_spelling


class DeliveryKind(StrEnum):
    """What a delivery carries; with the id of what asked for it (its source), it names one message."""

    INVITATION = "invitation"  # source: survey's invitation
    REMINDER = "reminder"  # source: "<invitation id>:reminder-<n>"; its invitation_id is the invitation's
    REFERRAL = "referral"  # source: followup's referral request
    REVIEW = "review"  # source: followup's review request
    CLOSE_LOOP = "close_loop"  # source: followup's resolved task
    REPROMPT = "reprompt"  # source: survey's re-prompt of an unreadable SMS reply; answers its invitation


# An SMS reply to one of these answers the survey invitation the delivery belongs to.
ANSWERED_BY_REPLY = frozenset({DeliveryKind.INVITATION, DeliveryKind.REMINDER, DeliveryKind.REPROMPT})


class DeliveryState(StrEnum):
    """Where a delivery is; the value is what its status column stores.

    ``scheduled`` (queued) or ``quiet_hours`` (waiting for the customer's sending window) until due; claimed
    by a worker (``sending``, the attempt counted); then ``sent`` (the provider took it), ``delivered``,
    ``opened``, ``clicked``, ``answered``; or one of the ends: ``undelivered``, ``bounced``, ``dropped``,
    ``failed``, ``suppressed`` (opted out), ``cancelled`` (a reminder no longer needed). ``unknown``: the
    provider may or may not have taken it and cannot be asked; it is shown, never sent again silently.

    The retry schedule moves a delivery between the waiting states and ``sending``; everything else, provider
    reports above all, only moves it forward (``is_forward_transition``), so they apply in any order.
    """

    SCHEDULED = "scheduled"
    QUIET_HOURS = "quiet_hours"
    SENDING = "sending"
    UNKNOWN = "unknown"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    ANSWERED = "answered"
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"

    @property
    def rank(self) -> int:
        """Position in the forward order; terminal states share the highest."""
        return _RANK[self]


TERMINAL_FAILURE_STATES = frozenset(
    {DeliveryState.BOUNCED, DeliveryState.DROPPED, DeliveryState.FAILED, DeliveryState.UNDELIVERED}
)
TERMINAL_STATES = TERMINAL_FAILURE_STATES | {DeliveryState.SUPPRESSED, DeliveryState.CANCELLED}
WAITING_STATES = frozenset({DeliveryState.SCHEDULED, DeliveryState.QUIET_HOURS})

# Every terminal state shares the top rank: above "delivered", because a bounce can follow a "delivered"
# (the receiving server accepted, then bounced) and must win, while a late or repeated "delivered" must never
# undo a failure; and equal to each other, so the first one recorded stays. "unknown" sits below "sent": a
# provider report about the message settles it.
_PROGRESS = (
    (DeliveryState.SCHEDULED, DeliveryState.QUIET_HOURS),
    (DeliveryState.SENDING,),
    (DeliveryState.UNKNOWN,),
    (DeliveryState.SENT,),
    (DeliveryState.DELIVERED,),
    (DeliveryState.OPENED,),
    (DeliveryState.CLICKED,),
    (DeliveryState.ANSWERED,),
)
_RANK = {state: rank for rank, states in enumerate(_PROGRESS) for state in states} | dict.fromkeys(
    TERMINAL_STATES, len(_PROGRESS)
)


def is_forward_transition(current: str, new: str) -> bool:
    """True when a delivery in state ``current`` may move to ``new``: strictly forward only.

    A repeat is not a transition, a late "delivered" never overwrites a bounce, and the first terminal state
    stays. Raises ValueError for a word that is not a delivery state.
    """
    return DeliveryState(new).rank > DeliveryState(current).rank


# Attempts are counted when a worker claims a delivery; a claim older than the lease lost its worker (the
# lease is the DELIVERY_LEASE_SECONDS setting, ``service.delivery_lease``; this one is its default).
# A delivery waiting for its sending window is claimed like a queued one once the window opens.
DELIVERY_RETRIES = RetrySchedule(
    waiting=DeliveryState.SCHEDULED,
    in_flight=DeliveryState.SENDING,
    given_up=DeliveryState.FAILED,
    max_attempts=6,
    lease=timedelta(minutes=15),
    also_waiting=(DeliveryState.QUIET_HOURS,),
)

# An SMS reply answers the latest invitation that reached that number within this window.
REPLY_WINDOW = timedelta(days=14)
# A reply proves the message reached the phone, even before the provider's answer to our send was recorded.
REPLYABLE_STATES = frozenset(
    {
        DeliveryState.SENDING,
        DeliveryState.UNKNOWN,
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
        DeliveryState.OPENED,
        DeliveryState.CLICKED,
        DeliveryState.ANSWERED,
    }
)
# The kinds an SMS reply can answer a survey through.
SURVEY_KINDS = frozenset({DeliveryKind.INVITATION, DeliveryKind.REMINDER})

# Dispatch's own words in a message: survey sends the question, dispatch adds the footer.
FOOTER_TEXTS = {
    "en": {
        "unsubscribe": "Unsubscribe from these surveys",
        "why": "{brand} asks you this because you are its customer.",
    },
    "tr": {
        "unsubscribe": "Bu anketlerin aboneliğinden çık",
        "why": "Bu mesajı {brand} müşterisi olduğunuz için aldınız.",
    },
}
# The footer of the messages dispatch words itself; the link opts the address out of every kind.
MESSAGE_FOOTER_TEXTS = {
    "en": {
        "unsubscribe": "Unsubscribe from these messages",
        "why": "{brand} sends you this because you are its customer.",
    },
    "tr": {
        "unsubscribe": "Bu mesajların aboneliğinden çık",
        "why": "Bu mesajı {brand} müşterisi olduğunuz için aldınız.",
    },
}
# The unsubscribe page, in the language of the message its link came in.
UNSUBSCRIBE_PAGE_TEXTS = {
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop {brand}'s emails to {address}?",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done": "{brand} will not email {address} any more.",
    },
    "tr": {
        "title": "Abonelikten çık",
        "ask": "{brand}, {address} adresine e-posta göndermeyi bıraksın mı?",
        "button": "Abonelikten çık",
        "done_title": "Abonelikten çıktınız",
        "done": "{brand} artık {address} adresine e-posta göndermeyecek.",
    },
}


@dataclass(frozen=True)
class Brand:
    """Who the customer hears from: the name, its colour, and a text colour readable on that colour."""

    name: str
    color: str
    text_on_color: str

    @classmethod
    def of(cls, name: str, color: str) -> Brand:
        return cls(name, color, readable_text_on(color))


def readable_text_on(color: str) -> str:
    """Black or white, whichever reads better on the CSS hex ``color`` (WCAG relative luminance)."""
    hex_digits = color.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(digit * 2 for digit in hex_digits)
    channels = [int(hex_digits[index : index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with white is 1.05 / (L + 0.05), with black (L + 0.05) / 0.05: equal at L ~ 0.179.
    return "#ffffff" if luminance < 0.179 else "#1b1f24"


NO_CHANNEL_LEFT = "the customer has opted out of every channel we have an address for"
NO_ADDRESS = "the customer has no email address or phone number"
OPTED_OUT_WHILE_WAITING = "The customer opted out of this channel before the message was due."
CANCELLED_ANSWERED = "The customer answered; the message was not needed."
CANCELLED_EXPIRED = "The survey expired before the reminder was due."

# What a reminder adds to the invitation survey worded: it says it is one.
REMINDER_TEXTS = {
    "en": {
        "subject": "Reminder",
        "sms": "Reminder:",
        "text": "A reminder: we would still love to hear from you.",
    },
    "tr": {
        "subject": "Hatırlatma",
        "sms": "Hatırlatma:",
        "text": "Bir hatırlatma: görüşlerinizi hâlâ duymak isteriz.",
    },
}

# Whose sentences explain a failure on a channel (``failures.failure_reason``).
_PROVIDERS = {Channel.EMAIL: "sendgrid", Channel.SMS: "twilio", Channel.WHATSAPP: "twilio"}


def provider_of(channel: str) -> str | None:
    return _PROVIDERS.get(channel)


def waiting_state(now: datetime, due: datetime) -> DeliveryState:
    """Queued when it may go now, else waiting for the customer's sending window."""
    return DeliveryState.SCHEDULED if due <= now else DeliveryState.QUIET_HOURS


def reached_customer(state: str) -> bool:
    """The provider took the message (or may have): an answer proves it reached the customer."""
    return DeliveryState(state).rank >= DeliveryState.UNKNOWN.rank and state not in TERMINAL_STATES


def reminder_source(invitation_id: str, number: int) -> str:
    """The source id of an invitation's ``number``-th reminder: one delivery each, however often asked."""
    return f"{invitation_id}:reminder-{number}"


def reminder_number(source_id: str) -> int:
    """Which reminder a reminder's source id names (a fallback's source id adds its channel after it)."""
    match = re.search(r":reminder-(\d+)", source_id)
    return int(match.group(1)) if match else 1


def choose_channel(
    preferred: str,
    email: str | None,
    phone: str | None,
    opted_out: Collection[str] = (),
    available: Collection[str] = (Channel.EMAIL, Channel.SMS),
) -> tuple[Channel, str] | None:
    """(channel, address) by the customer's preference, falling back to the other channels; None when none is
    left. See ``channel_order``."""
    order = channel_order(preferred, email, phone, opted_out, available)
    return order[0] if order else None


# WhatsApp only where the customer prefers it; then SMS, then email, as the issue of reach goes.
_FALLBACK_ORDER = (Channel.WHATSAPP, Channel.SMS, Channel.EMAIL)


def channel_order(
    preferred: str,
    email: str | None,
    phone: str | None,
    opted_out: Collection[str] = (),
    available: Collection[str] = (Channel.EMAIL, Channel.SMS),
) -> list[tuple[Channel, str]]:
    """Every (channel, address) to try, in order: the preferred channel, then SMS, then email (WhatsApp only
    when preferred). A channel without an address, one the customer opted out of, or one not ``available``
    (WhatsApp unconfigured, or for a message it has no template for) is skipped."""
    addresses = {Channel.EMAIL: email, Channel.SMS: phone, Channel.WHATSAPP: phone}
    preferred_channel = Channel(preferred) if preferred in CHANNELS else Channel.EMAIL
    rest = [channel for channel in _FALLBACK_ORDER if channel not in (preferred_channel, Channel.WHATSAPP)]
    order = []
    for channel in [preferred_channel, *rest]:
        address = addresses[channel]
        if address and channel not in opted_out and channel in available:
            order.append((channel, address))
    return order


def fallback_source(source_id: str, channel: str) -> str:
    """The source id of the delivery that falls back to ``channel`` when the one for ``source_id`` failed."""
    return f"{source_id}:{channel}"


def suppression_reason(email: str | None, phone: str | None) -> str:
    """Why ``choose_channel`` found nothing: shown on the suppressed delivery."""
    return NO_CHANNEL_LEFT if email or phone else NO_ADDRESS


def inbound_channel(sender: str) -> tuple[Channel, str]:
    """The channel and number of an inbound message's ``From``: "whatsapp:+1555..." is WhatsApp."""
    sender = sender.strip()
    if sender.startswith(WHATSAPP_PREFIX):
        return Channel.WHATSAPP, sender.removeprefix(WHATSAPP_PREFIX)
    return Channel.SMS, sender


def whatsapp_variables(greeting: str, question: str, answer_url: str) -> dict[str, str]:
    """The approved template's variables: {{1}} the greeting, {{2}} the question, {{3}} the survey link."""
    return {"1": greeting, "2": question, "3": answer_url}


def score_links(answer_url: str) -> list[tuple[int, str]]:
    separator = "&" if "?" in answer_url else "?"
    return [(score, f"{answer_url}{separator}score={score}") for score in range(11)]


def invitation_email_text(
    greeting: str, question: str, low: str, high: str, answer_url: str, reminder: str | None = None
) -> str:
    """The plain-text part of an invitation: the question, then one link per score."""
    lines = [greeting, "", *([reminder, ""] if reminder else []), question, f"0 = {low}, 10 = {high}", ""]
    lines += [f"{score}: {url}" for score, url in score_links(answer_url)]
    return "\n".join(lines)


# --- The messages dispatch words itself: referral and review requests, close-the-loop messages -------------


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class CustomerMessage:
    """One message in the customer's language: an email (subject, greeting, paragraphs, a link) or an SMS."""

    subject: str
    greeting: str
    paragraphs: tuple[str, ...]
    link: Link | None
    sms_body: str


_MESSAGE_TEXTS = {
    "en": {
        "greeting": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "sms_opt_out": "Reply STOP to opt out.",
        "referral": {
            "subject": "Thank you for recommending us",
            "paragraphs": (
                "Thank you for your kind words about us.",
                "If you know someone who would like us too, please share your personal link with them.",
            ),
            "link": "Share your link",
            "sms": (
                "Thank you for recommending us! Know someone who would like us too? Share your link: {url}",
                "Thanks for recommending us! Your link to share: {url}",
            ),
        },
        # Review sites forbid gating and asking for good reviews only: every score is asked to share its
        # experience as it was; only the thanks, and how hard we ask, differ.
        "review": {
            "subject": "Would you share your experience?",
            "thanks": {
                NpsCategory.PROMOTER: "Thank you for your great feedback.",
                NpsCategory.PASSIVE: "Thank you for your feedback.",
                NpsCategory.DETRACTOR: "Thank you for your honest feedback.",
            },
            "ask": "Would you share your experience in a review? It helps others know what to expect.",
            "ask_detractor": "If you like, you can share your experience in a review as well.",
            "link": "Write a review",
            "sms": (
                "{thanks} Would you share your experience in a review? {url}",
                "Would you review us? {url}",
            ),
            "sms_detractor": (
                "{thanks} If you like, share your experience in a review: {url}",
                "You can review us here: {url}",
            ),
        },
        "close_loop": {"subject": "About your feedback"},
    },
    "tr": {
        "greeting": "Merhaba {name},",
        "greeting_anonymous": "Merhaba,",
        "sms_opt_out": "Çıkmak için STOP.",
        "referral": {
            "subject": "Bizi tavsiye ettiğiniz için teşekkürler",
            "paragraphs": (
                "Hakkımızdaki güzel sözleriniz için teşekkür ederiz.",
                "Bizi sevecek birini tanıyorsanız size özel bağlantınızı onunla paylaşabilirsiniz.",
            ),
            "link": "Bağlantınızı paylaşın",
            "sms": (
                "Bizi tavsiye ettiğiniz için teşekkürler! Bizi sevecek birini tanıyorsanız bağlantınızı "
                "paylaşın: {url}",
                "Tavsiyeniz için teşekkürler! Paylaşmanız için bağlantınız: {url}",
            ),
        },
        "review": {
            "subject": "Deneyiminizi paylaşır mısınız?",
            "thanks": {
                NpsCategory.PROMOTER: "Güzel geri bildiriminiz için teşekkür ederiz.",
                NpsCategory.PASSIVE: "Geri bildiriminiz için teşekkür ederiz.",
                NpsCategory.DETRACTOR: "Açık geri bildiriminiz için teşekkür ederiz.",
            },
            "ask": "Deneyiminizi bir yorumla paylaşır mısınız? Başkalarına ne bekleyeceklerini gösterir.",
            "ask_detractor": "Dilerseniz deneyiminizi bir yorumla da paylaşabilirsiniz.",
            "link": "Yorum yazın",
            "sms": (
                "{thanks} Deneyiminizi bir yorumla paylaşır mısınız? {url}",
                "Bizi yorumlar mısınız? {url}",
            ),
            "sms_detractor": (
                "{thanks} Dilerseniz deneyiminizi bir yorumla paylaşın: {url}",
                "Dilerseniz bizi yorumlayın: {url}",
            ),
        },
        "close_loop": {"subject": "Geri bildiriminiz hakkında"},
    },
}


def referral_message(locale: str, name: str | None, referral_url: str) -> CustomerMessage:
    texts = localized(_MESSAGE_TEXTS, locale)
    words = texts["referral"]
    return CustomerMessage(
        subject=words["subject"],
        greeting=_greeting(texts, name),
        paragraphs=words["paragraphs"],
        link=Link(words["link"], referral_url),
        sms_body=_our_sms(texts, [sms.format(url=referral_url) for sms in words["sms"]]),
    )


def review_message(locale: str, name: str | None, review_url: str, score: int) -> CustomerMessage:
    texts = localized(_MESSAGE_TEXTS, locale)
    words = texts["review"]
    category = nps_category(score)
    detractor = category is NpsCategory.DETRACTOR
    thanks = words["thanks"][category]
    return CustomerMessage(
        subject=words["subject"],
        greeting=_greeting(texts, name),
        paragraphs=(thanks, words["ask_detractor"] if detractor else words["ask"]),
        link=Link(words["link"], review_url),
        sms_body=_our_sms(
            texts,
            [
                sms.format(thanks=thanks, url=review_url)
                for sms in words["sms_detractor" if detractor else "sms"]
            ],
        ),
    )


def close_loop_message(locale: str, name: str | None, text: str) -> CustomerMessage:
    """The success team's own words, as written: paragraphs by blank lines, the line breaks kept."""
    texts = localized(_MESSAGE_TEXTS, locale)
    written = text.strip()
    return CustomerMessage(
        subject=texts["close_loop"]["subject"],
        greeting=_greeting(texts, name),
        paragraphs=tuple(part.strip() for part in re.split(r"\n\s*\n", written) if part.strip()),
        link=None,
        # A person's words are not respelled, only ours; the opt-out line goes when it would cost a segment.
        sms_body=fewest_segments(
            [
                f"{written} {opt_out}"
                for opt_out in (texts["sms_opt_out"], gsm7_spelling(texts["sms_opt_out"]))
            ]
            + [written]
        ),
    )


def message_email_text(message: CustomerMessage, unsubscribe_label: str, unsubscribe_url: str) -> str:
    """The plain-text part of a message's email."""
    parts = [message.greeting, *message.paragraphs]
    if message.link:
        parts.append(f"{message.link.label}: {message.link.url}")
    parts.append(f"{unsubscribe_label}: {unsubscribe_url}")
    return "\n\n".join(parts)


def _greeting(texts: dict, name: str | None) -> str:
    first_name = (name or "").strip().split(" ")[0]
    return texts["greeting"].format(name=first_name) if first_name else texts["greeting_anonymous"]


def _our_sms(texts: dict, wordings: Sequence[str]) -> str:
    """One segment where any wording allows it: the longer wording first, then the shorter; and in a GSM-7
    spelling, for a Turkish letter makes the whole SMS UCS-2, 70 characters a segment instead of 160."""
    worded = [f"{wording} {texts['sms_opt_out']}" for wording in wordings]
    return fewest_segments(list(dict.fromkeys([*worded, *(gsm7_spelling(sms) for sms in worded)])))
