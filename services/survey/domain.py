"""Survey rules with no I/O: whether to survey, what to ask, which clicks are a person's, what an SMS says."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.locales import localized

TOUCHPOINTS = {
    "purchase.completed": "purchase",
    "support_call.ended": "support_call",
    "site.visited": "site_visit",
}

# The touchpoint of a follow-up survey: asked again after the success team acted on an earlier answer.
FOLLOW_UP_TOUCHPOINT = "follow_up"
SURVEYED_TOUCHPOINTS = (*TOUCHPOINTS.values(), FOLLOW_UP_TOUCHPOINT)

# A customer surveyed less than this long ago is not asked again (survey fatigue).
QUARANTINE = timedelta(days=30)
# An event this old describes an experience the customer no longer remembers well.
STALE_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class SurveyDecision:
    invite: bool
    reason: str


def decide_survey(
    event_type: str,
    occurred_at: datetime,
    now: datetime,
    last_invited_at: datetime | None,
) -> SurveyDecision:
    """Whether a CRM event leads to an invitation. Later: per-touchpoint rules, sampling, delays."""
    if event_type not in TOUCHPOINTS:
        return SurveyDecision(False, f"no survey for {event_type}")
    if now - occurred_at > STALE_AFTER:
        return SurveyDecision(False, "event is older than 7 days")
    if last_invited_at is not None and now - last_invited_at < QUARANTINE:
        return SurveyDecision(False, "customer was surveyed in the last 30 days")
    return SurveyDecision(True, f"{TOUCHPOINTS[event_type]} survey")


@dataclass(frozen=True)
class SurveyMessage:
    subject: str
    greeting: str
    question: str
    low_label: str
    high_label: str
    sms_body: str


_TEXTS = {
    "en": {
        "subject": "How did we do?",
        "greeting": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "question": "How likely are you to recommend us to a friend or colleague?",
        "low": "Not at all likely",
        "high": "Extremely likely",
        "sms": "{intro} How likely are you to recommend us to a friend? Reply 0 to 10 and tell us why. "
        "Reply STOP to opt out.",
        "intro": {
            "purchase": "Thank you for your purchase!",
            "support_call": "Thank you for talking to our support team.",
            "site_visit": "Thank you for visiting us.",
            FOLLOW_UP_TOUCHPOINT: "Thanks for your earlier feedback; we followed up on it.",
        },
    },
    "tr": {
        "subject": "Deneyiminiz nasıldı?",
        "greeting": "Merhaba {name},",
        "greeting_anonymous": "Merhaba,",
        "question": "Bizi bir arkadaşınıza veya iş arkadaşınıza tavsiye etme olasılığınız nedir?",
        "low": "Hiç olası değil",
        "high": "Çok olası",
        "sms": "{intro} Bizi bir arkadaşınıza tavsiye eder misiniz? 0 ile 10 arası bir sayıyla yanıtlayın, "
        "nedenini de yazabilirsiniz. Çıkmak için STOP.",
        "intro": {
            "purchase": "Alışverişiniz için teşekkür ederiz!",
            "support_call": "Destek ekibimizle görüştüğünüz için teşekkür ederiz.",
            "site_visit": "Bizi ziyaret ettiğiniz için teşekkür ederiz.",
            FOLLOW_UP_TOUCHPOINT: "Önceki geri bildiriminiz için teşekkürler; ekibimiz bununla ilgilendi.",
        },
    },
}


def survey_message(locale: str, touchpoint: str, customer_name: str | None) -> SurveyMessage:
    texts = localized(_TEXTS, locale)
    first_name = (customer_name or "").split(" ")[0]
    intro = texts["intro"][touchpoint]
    return SurveyMessage(
        subject=texts["subject"],
        greeting=texts["greeting"].format(name=first_name) if first_name else texts["greeting_anonymous"],
        question=f"{intro} {texts['question']}",
        low_label=texts["low"],
        high_label=texts["high"],
        sms_body=texts["sms"].format(intro=intro),
    )


# --- Follow-up surveys: asking again once the success team has acted -----------------------------------


class FollowUpStatus(StrEnum):
    SCHEDULED = "scheduled"  # waits for its due time
    INVITED = "invited"  # its invitation was requested


def follow_up_due_at(resolved_at: datetime, after_days: int) -> datetime:
    """When to ask again: ``after_days`` after the task was resolved, however late we heard of it."""
    return resolved_at + timedelta(days=after_days)


@dataclass(frozen=True)
class FollowUpSummary:
    """Whether customers answered their follow-up survey, and whether their score rose since."""

    scheduled: int
    invited: int
    answered: int
    improved: int
    unchanged: int
    worse: int


def follow_up_summary(scheduled: int, scores: Iterable[tuple[int, int | None]]) -> FollowUpSummary:
    """``scores``: per follow-up invitation, the earlier score and the answer's (None when unanswered)."""
    invited = answered = improved = unchanged = 0
    for earlier, later in scores:
        invited += 1
        if later is None:
            continue
        answered += 1
        improved += later > earlier
        unchanged += later == earlier
    return FollowUpSummary(scheduled, invited, answered, improved, unchanged, answered - improved - unchanged)


# --- Referral attribution ----------------------------------------------------------------------------

REFERRAL_CODE_PROPERTY = "referral_code"


def referral_code(properties: Mapping[str, Any]) -> str | None:
    """The code of the referral link a CRM event's customer came through, when it carries a usable one.

    A CRM may send it as a number; anything else that is not a short text is no code.
    """
    code = properties.get(REFERRAL_CODE_PROPERTY)
    if isinstance(code, bool) or not isinstance(code, str | int):
        return None
    code = str(code).strip()
    return code if 0 < len(code) <= 200 else None


# --- One-click score links and the scanners that fetch them ---------------------------------------

# Security scanners fetch every link of a message within a second or two; a person clicks one.
SCANNER_BURST = timedelta(seconds=5)
# A click not confirmed on the answer page becomes the answer once the clicks have stopped this long.
SETTLE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Click:
    score: int
    clicked_at: datetime


def human_clicks(clicks: Iterable[Click]) -> list[Click]:
    """Drops every click that has a click on a different score within ``SCANNER_BURST`` of it."""
    ordered = sorted(clicks, key=lambda click: click.clicked_at)
    return [
        click
        for click in ordered
        if not any(
            other.score != click.score and abs(other.clicked_at - click.clicked_at) <= SCANNER_BURST
            for other in ordered
        )
    ]


def settled_score(clicks: Sequence[Click], now: datetime) -> int | None:
    """The score a person chose by link alone, once the clicks have settled; None if none is a person's."""
    if not clicks or now - max(click.clicked_at for click in clicks) < SETTLE_AFTER:
        return None
    people = human_clicks(clicks)
    return people[-1].score if people else None


# --- SMS replies ------------------------------------------------------------------------------------

_SMS_SCORE = re.compile(r"^\s*(10|[0-9])(?![0-9])[\s,.;:!/-]*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class SmsAnswer:
    score: int | None
    comment: str | None


def parse_sms_answer(body: str) -> SmsAnswer:
    """'9' -> score 9; '9, great staff' -> 9 and a comment; 'great staff' -> a comment alone."""
    text = body.strip()
    match = _SMS_SCORE.match(text)
    if match:
        comment = match.group(2).strip()
        return SmsAnswer(int(match.group(1)), comment or None)
    return SmsAnswer(None, text or None)


def merge_comment(existing: str | None, addition: str | None) -> str | None:
    if not addition:
        return existing
    return f"{existing}\n{addition}" if existing else addition
