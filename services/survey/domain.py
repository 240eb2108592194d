"""Survey rules with no I/O: whether to survey, when an invitation expires, follow-ups, referral codes.

Reading customers' answers is ``answers``; what a survey says (templates, brand) is ``wording``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.channels import Channel
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


# --- Trigger rules and the decisions they take ------------------------------------------------------


class ConditionOperator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GTE = "gte"
    LTE = "lte"
    IN = "in"


@dataclass(frozen=True)
class Condition:
    """A test on one event property: ``amount gte 100``, ``status eq solved``, ``plan in [pro, team]``."""

    property: str
    operator: ConditionOperator
    value: Any

    def holds(self, properties: Mapping[str, Any]) -> bool:
        if self.property not in properties:
            return False
        actual = properties[self.property]
        match self.operator:
            case ConditionOperator.EQ:
                return actual == self.value
            case ConditionOperator.NE:
                return actual != self.value
            case ConditionOperator.IN:
                return isinstance(self.value, list) and actual in self.value
            case _:
                # A CRM may send an amount as "120.50": compare numbers as numbers, never text with a number.
                number, limit = _number(actual), _number(self.value)
                if number is None or limit is None:
                    return False
                return number >= limit if self.operator == ConditionOperator.GTE else number <= limit

    def describe(self) -> str:
        return f"{self.property} {self.operator.value} {self.value!r}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class TriggerRule:
    """Whether, when and as which touchpoint an event type is surveyed. The defaults are today's behaviour."""

    event_type: str
    touchpoint: str
    enabled: bool = True
    delay: timedelta = timedelta(0)
    quarantine_after_invitation: timedelta = QUARANTINE
    # Zero: an answer adds no quarantine of its own beyond the invitation's.
    quarantine_after_answer: timedelta = timedelta(0)
    # Higher wins: a pending delayed survey of a lower priority gives way to this one.
    priority: int = 0
    sampling_rate: float = 1.0
    conditions: tuple[Condition, ...] = ()
    max_event_age: timedelta = STALE_AFTER
    # None: the configured default (SURVEY_INVITATION_EXPIRY_DAYS) applies.
    expires_after: timedelta | None = None


DEFAULT_RULES = {
    event_type: TriggerRule(event_type, touchpoint) for event_type, touchpoint in TOUCHPOINTS.items()
}


class Decision(StrEnum):
    INVITED = "invited"
    DELAYED = "delayed"  # waits for its due time; invited or skipped then
    SKIPPED = "skipped"


class ReasonCode(StrEnum):
    """Why a decision was taken, for machines; the sentence beside it is for people."""

    INVITED = "invited"
    DELAYED = "delayed"
    NO_RULE = "no_rule"
    RULE_DISABLED = "rule_disabled"
    EVENT_TOO_OLD = "event_too_old"
    CONDITION_NOT_MET = "condition_not_met"
    SAMPLED_OUT = "sampled_out"
    QUARANTINE_AFTER_INVITATION = "quarantine_after_invitation"
    QUARANTINE_AFTER_ANSWER = "quarantine_after_answer"
    # A delayed survey of the same or a higher priority is already waiting for this customer.
    SURVEY_PENDING = "survey_pending"
    SUPERSEDED = "superseded"
    # Every channel the customer has an address for was opted out of (dispatch's opt-out events).
    OPTED_OUT = "opted_out"
    # The customer withdrew consent to surveys (PUT /v1/customers), or we have no address at all.
    NO_CONSENT = "no_consent"
    NO_CONTACT = "no_contact"


@dataclass(frozen=True)
class SurveyDecision:
    outcome: Decision
    code: ReasonCode
    # The short sentence the CRM gets back from POST /v1/events.
    reason: str
    # The whole story for staff: which rule, since when, until when.
    explanation: str
    due_at: datetime | None = None

    @property
    def invite(self) -> bool:
        return self.outcome == Decision.INVITED


def _skipped(code: ReasonCode, reason: str, explanation: str | None = None) -> SurveyDecision:
    return SurveyDecision(Decision.SKIPPED, code, reason, explanation or reason)


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:g} day{'' if days == 1 else 's'}"


# --- Whether the customer can be asked at all ------------------------------------------------------


@dataclass(frozen=True)
class Reachability:
    """How a customer can be reached: channels with an address, those of them opted out, and consent."""

    channels: frozenset[str]
    opted_out: frozenset[str] = frozenset()
    # None: never said; False: withdrew consent to being surveyed.
    consent: bool | None = None


def reachability(
    email: str | None,
    phone: str | None,
    opted_out: Iterable[str] = (),
    consent: bool | None = None,
    preferred_channel: str | None = None,
) -> Reachability:
    """An email reaches the email channel, a phone number the SMS channel (and WhatsApp, where preferred)."""
    channels = {
        channel
        for channel, address in channel_addresses(email, phone, preferred_channel).items()
        if address
    }
    return Reachability(frozenset(channels), frozenset(opted_out) & frozenset(channels), consent)


def channel_addresses(
    email: str | None, phone: str | None, preferred_channel: str | None = None
) -> dict[str, str | None]:
    addresses = {Channel.EMAIL.value: email, Channel.SMS.value: phone}
    # Dispatch sends WhatsApp only to those who prefer it, so only for them is it a way to reach them.
    if preferred_channel == Channel.WHATSAPP:
        addresses[Channel.WHATSAPP.value] = phone
    return addresses


def unreachable(reach: Reachability) -> SurveyDecision | None:
    """The skip called for when nobody could be asked: no consent, no address, or every channel opted out."""
    if reach.consent is False:
        return _skipped(ReasonCode.NO_CONSENT, "customer has not consented to surveys")
    if not reach.channels:
        return _skipped(ReasonCode.NO_CONTACT, "no email or phone number for this customer")
    if reach.channels <= reach.opted_out:
        return _skipped(
            ReasonCode.OPTED_OUT,
            "opted out of every channel",
            f"opted out of every channel it could be reached on ({', '.join(sorted(reach.channels))})",
        )
    return None


def sampled_in(rate: float, customer_key: str, event_key: str) -> bool:
    """Deterministic per customer and event: a retried event gets the same answer, whatever the process."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{customer_key}\x1f{event_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def decide_survey(
    event_type: str,
    occurred_at: datetime,
    now: datetime,
    last_invited_at: datetime | None,
    *,
    rule: TriggerRule | None = None,
    last_answered_at: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    customer_key: str = "",
    event_key: str = "",
    reach: Reachability | None = None,
) -> SurveyDecision:
    """Whether, and when, a CRM event leads to an invitation, and why; ``rule`` defaults to the built-in one.

    Checked in this order, so the reason named is the first rule that stopped it: rule, reachability
    (consent, an address, opt-outs; when ``reach`` is given), age, conditions, sampling, quarantines, delay.
    """
    rule = rule or DEFAULT_RULES.get(event_type)
    if rule is None:
        return _skipped(
            ReasonCode.NO_RULE, f"no survey for {event_type}", f"no trigger rule for {event_type}"
        )
    if not rule.enabled:
        return _skipped(ReasonCode.RULE_DISABLED, f"the trigger rule for {event_type} is disabled")
    skip = unreachable(reach) if reach is not None else None
    if skip is not None:
        return skip
    if now - occurred_at > rule.max_event_age:
        return _skipped(
            ReasonCode.EVENT_TOO_OLD,
            f"event is older than {_days(rule.max_event_age)}",
            f"event of {_day(occurred_at)} is older than {_days(rule.max_event_age)}",
        )
    for condition in rule.conditions:
        if not condition.holds(properties or {}):
            return _skipped(ReasonCode.CONDITION_NOT_MET, f"condition not met: {condition.describe()}")
    if not sampled_in(rule.sampling_rate, customer_key, event_key):
        return _skipped(
            ReasonCode.SAMPLED_OUT, f"sampled out (the rule surveys {rule.sampling_rate:.0%} of events)"
        )
    quarantine = quarantined(rule, now, last_invited_at, last_answered_at)
    if quarantine is not None:
        return quarantine
    if rule.delay > timedelta(0):
        due_at = occurred_at + rule.delay
        if due_at > now:
            return SurveyDecision(
                Decision.DELAYED,
                ReasonCode.DELAYED,
                f"{rule.touchpoint} survey delayed until {due_at.isoformat()}",
                f"{rule.touchpoint} survey delayed until {due_at.isoformat()}, "
                f"{_days(rule.delay)} after the event",
                due_at,
            )
    return SurveyDecision(
        Decision.INVITED, ReasonCode.INVITED, f"{rule.touchpoint} survey", f"{rule.touchpoint} survey"
    )


def quarantined(
    rule: TriggerRule, now: datetime, last_invited_at: datetime | None, last_answered_at: datetime | None
) -> SurveyDecision | None:
    """The skip a quarantine calls for, if any; checked again when a delayed survey comes due."""
    if last_invited_at is not None and now - last_invited_at < rule.quarantine_after_invitation:
        days = _days(rule.quarantine_after_invitation)
        return _skipped(
            ReasonCode.QUARANTINE_AFTER_INVITATION,
            f"customer was surveyed in the last {days}",
            f"quarantine since the invitation of {_day(last_invited_at)}: no survey within {days} of one",
        )
    if last_answered_at is not None and now - last_answered_at < rule.quarantine_after_answer:
        days = _days(rule.quarantine_after_answer)
        return _skipped(
            ReasonCode.QUARANTINE_AFTER_ANSWER,
            f"customer answered a survey in the last {days}",
            f"quarantine since the answer of {_day(last_answered_at)}: no survey within {days} of one",
        )
    return None


def decide_when_due(
    rule: TriggerRule | None,
    event_type: str,
    now: datetime,
    last_invited_at: datetime | None,
    last_answered_at: datetime | None,
    reach: Reachability | None = None,
) -> SurveyDecision:
    """A delayed survey come due: invited, unless its rule was disabled, the customer opted out of every
    channel or a quarantine began meanwhile."""
    if rule is None or not rule.enabled:
        return _skipped(
            ReasonCode.RULE_DISABLED, f"the trigger rule for {event_type} was disabled while it waited"
        )
    skip = unreachable(reach) if reach is not None else None
    skip = skip or quarantined(rule, now, last_invited_at, last_answered_at)
    if skip is not None:
        return skip
    return SurveyDecision(
        Decision.INVITED,
        ReasonCode.INVITED,
        f"{rule.touchpoint} survey",
        f"{rule.touchpoint} survey, invited when due",
    )


def replaces_pending(new: TriggerRule, pending: TriggerRule) -> bool:
    """True when the new event's survey replaces the pending delayed one: only a strictly higher priority."""
    return new.priority > pending.priority


def superseded(by_event_type: str, by_touchpoint: str) -> SurveyDecision:
    return _skipped(
        ReasonCode.SUPERSEDED,
        f"superseded by a higher-priority {by_touchpoint} survey",
        f"superseded by a higher-priority {by_touchpoint} survey ({by_event_type})",
    )


def survey_pending(pending_touchpoint: str, due_at: datetime) -> SurveyDecision:
    return _skipped(
        ReasonCode.SURVEY_PENDING,
        f"a {pending_touchpoint} survey is already pending for this customer",
        f"a {pending_touchpoint} survey of the same or a higher priority is due on {due_at.isoformat()}",
    )


def invitation_expires_at(rule: TriggerRule | None, invited_at: datetime, default_days: int) -> datetime:
    """The rule's expiry when it sets one, else the configured default (SURVEY_INVITATION_EXPIRY_DAYS)."""
    if rule is not None and rule.expires_after is not None:
        return invited_at + rule.expires_after
    return invited_at + timedelta(days=default_days)


@dataclass(frozen=True)
class SurveyLabels:
    """The words around the question (greeting, the scale's ends); the question itself is a template's."""

    greeting: str
    low_label: str
    high_label: str


_LABELS = {
    "en": {"greeting": "Hello {name},", "greeting_anonymous": "Hello,", "low": "Not at all likely",
           "high": "Extremely likely"},
    "tr": {"greeting": "Merhaba {name},", "greeting_anonymous": "Merhaba,", "low": "Hiç olası değil",
           "high": "Çok olası"},
}  # fmt: skip


def survey_labels(locale: str, customer_name: str | None) -> SurveyLabels:
    texts = localized(_LABELS, locale)
    first_name = (customer_name or "").split(" ")[0]
    return SurveyLabels(
        greeting=texts["greeting"].format(name=first_name) if first_name else texts["greeting_anonymous"],
        low_label=texts["low"],
        high_label=texts["high"],
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


# --- One-click score links and the scanners that open them ------------------------------------------
# A link's GET counts for nothing: email security scanners fetch every link. The answer page's script posts
# the click (scanners that only fetch never do), then confirms it once CLICK_BURST has passed. Scanners that
# run scripts open every link of the email within a second or two: a click with a click for another score
# that close to it is theirs, and does not count.

CLICK_BURST = timedelta(seconds=2)


@dataclass(frozen=True)
class Click:
    score: int
    clicked_at: datetime


def click_counts(click: Click, clicks: Iterable[Click]) -> bool:
    """True unless a click for a different score was posted within CLICK_BURST of ``click``."""
    return not any(
        other.score != click.score and abs(other.clicked_at - click.clicked_at) <= CLICK_BURST
        for other in clicks
    )


def click_confirmable(click: Click, now: datetime) -> bool:
    """A click is judged once every click of a burst around it has arrived."""
    return now - click.clicked_at >= CLICK_BURST
