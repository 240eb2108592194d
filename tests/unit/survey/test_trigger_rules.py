"""Trigger rules as pure functions: each rule's decision and the reason it records, without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.survey import domain
from services.survey.domain import Condition, ConditionOperator, Decision, ReasonCode, TriggerRule
from shared.clock import utcnow

NOW = utcnow()
PURCHASE = domain.DEFAULT_RULES["purchase.completed"]


def decide(rule: TriggerRule = PURCHASE, **options):
    options.setdefault("occurred_at", NOW - timedelta(hours=1))
    options.setdefault("last_invited_at", None)
    return domain.decide_survey(rule.event_type, options.pop("occurred_at"), NOW, rule=rule, **options)


def rule(**fields) -> TriggerRule:
    return TriggerRule(**{"event_type": "purchase.completed", "touchpoint": "purchase", **fields})


def test_default_rules_invite_the_three_known_touchpoints_at_once():
    for event_type, touchpoint in domain.TOUCHPOINTS.items():
        decision = domain.decide_survey(event_type, NOW, NOW, None)
        assert (decision.outcome, decision.code, decision.reason) == (
            Decision.INVITED,
            ReasonCode.INVITED,
            f"{touchpoint} survey",
        )
        assert decision.due_at is None


def test_event_type_without_a_rule_is_skipped_as_having_no_rule():
    decision = domain.decide_survey("order.shipped", NOW, NOW, None)
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.NO_RULE)
    assert decision.reason == "no survey for order.shipped"


def test_disabled_rule_skips_with_rule_disabled():
    decision = decide(rule(enabled=False))
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.RULE_DISABLED)
    assert decision.reason == "the trigger rule for purchase.completed is disabled"


def test_event_older_than_the_rules_age_is_skipped_as_too_old_naming_its_date():
    occurred_at = NOW - timedelta(days=8)
    decision = decide(occurred_at=occurred_at)
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.EVENT_TOO_OLD)
    assert decision.reason == "event is older than 7 days"
    assert occurred_at.date().isoformat() in decision.explanation


def test_quarantine_after_an_invitation_names_the_invitations_date():
    invited_at = NOW - timedelta(days=29)
    decision = decide(last_invited_at=invited_at)
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.QUARANTINE_AFTER_INVITATION)
    assert decision.reason == "customer was surveyed in the last 30 days"
    assert decision.explanation == (
        f"quarantine since the invitation of {invited_at.date().isoformat()}: no survey within 30 days of one"
    )


def test_quarantine_after_an_invitation_is_the_rules_length():
    assert decide(
        rule(quarantine_after_invitation=timedelta(days=10)), last_invited_at=NOW - timedelta(days=11)
    ).invite


def test_quarantine_after_an_answer_names_the_answers_date():
    answered_at = NOW - timedelta(days=40)
    decision = decide(
        rule(quarantine_after_answer=timedelta(days=60)),
        last_invited_at=NOW - timedelta(days=45),
        last_answered_at=answered_at,
    )
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.QUARANTINE_AFTER_ANSWER)
    assert decision.reason == "customer answered a survey in the last 60 days"
    assert f"since the answer of {answered_at.date().isoformat()}" in decision.explanation


def test_an_answer_adds_no_quarantine_by_default():
    assert decide(last_invited_at=NOW - timedelta(days=31), last_answered_at=NOW - timedelta(days=1)).invite


def test_delay_waits_until_that_long_after_the_event():
    occurred_at = NOW - timedelta(hours=1)
    decision = decide(rule(delay=timedelta(days=2)), occurred_at=occurred_at)
    assert (decision.outcome, decision.code) == (Decision.DELAYED, ReasonCode.DELAYED)
    assert decision.due_at == occurred_at + timedelta(days=2)
    assert decision.reason == f"purchase survey delayed until {decision.due_at.isoformat()}"


def test_delay_already_over_when_the_event_arrives_invites_at_once():
    decision = decide(rule(delay=timedelta(hours=2)), occurred_at=NOW - timedelta(hours=3))
    assert (decision.outcome, decision.due_at) == (Decision.INVITED, None)


@pytest.mark.parametrize(
    ("condition", "properties", "holds"),
    [
        (Condition("amount", ConditionOperator.GTE, 100), {"amount": 120}, True),
        (Condition("amount", ConditionOperator.GTE, 100), {"amount": "99.5"}, False),
        (Condition("amount", ConditionOperator.GTE, 100), {"amount": "100.00"}, True),
        (Condition("amount", ConditionOperator.LTE, 100), {"amount": 100}, True),
        (Condition("amount", ConditionOperator.GTE, 100), {}, False),
        (Condition("amount", ConditionOperator.GTE, 100), {"amount": "lots"}, False),
        (Condition("status", ConditionOperator.EQ, "solved"), {"status": "solved"}, True),
        (Condition("status", ConditionOperator.EQ, "solved"), {"status": "open"}, False),
        (Condition("status", ConditionOperator.NE, "spam"), {"status": "open"}, True),
        (Condition("plan", ConditionOperator.IN, ["pro", "team"]), {"plan": "team"}, True),
        (Condition("plan", ConditionOperator.IN, ["pro", "team"]), {"plan": "free"}, False),
    ],
)
def test_condition_on_an_event_property(condition, properties, holds):
    assert condition.holds(properties) is holds


def test_condition_not_met_skips_naming_the_condition():
    amount_at_least = Condition("amount", ConditionOperator.GTE, 100)
    solved = Condition("status", ConditionOperator.EQ, "solved")
    decision = decide(
        rule(conditions=(amount_at_least, solved)), properties={"amount": 150, "status": "open"}
    )
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.CONDITION_NOT_MET)
    assert decision.reason == "condition not met: status eq 'solved'"


def test_sampling_is_the_same_for_the_same_customer_and_event():
    answers = {domain.sampled_in(0.5, "crm-42", "order-1") for _ in range(5)}
    assert len(answers) == 1


def test_sampling_rate_surveys_about_that_share_of_events():
    sampled = sum(domain.sampled_in(0.2, "crm-42", f"order-{n}") for n in range(2000))
    assert 300 < sampled < 500


def test_sampled_out_event_is_skipped_as_sampled_out():
    event_key = next(f"order-{n}" for n in range(100) if not domain.sampled_in(0.5, "crm-42", f"order-{n}"))
    decision = decide(rule(sampling_rate=0.5), customer_key="crm-42", event_key=event_key)
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.SAMPLED_OUT)
    assert decision.reason == "sampled out (the rule surveys 50% of events)"


def test_sampling_rate_zero_surveys_nobody_and_one_everybody():
    assert decide(rule(sampling_rate=0.0), customer_key="c", event_key="e").code == ReasonCode.SAMPLED_OUT
    assert decide(rule(sampling_rate=1.0), customer_key="c", event_key="e").invite


def test_only_a_strictly_higher_priority_replaces_a_pending_survey():
    site_visit = TriggerRule("site.visited", "site_visit", priority=1)
    support_call = TriggerRule("support_call.ended", "support_call", priority=5)
    assert domain.replaces_pending(support_call, site_visit)
    assert not domain.replaces_pending(site_visit, support_call)
    assert not domain.replaces_pending(site_visit, site_visit)


def test_superseded_decision_names_the_touchpoint_that_replaced_it():
    decision = domain.superseded("support_call.ended", "support_call")
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.SUPERSEDED)
    assert decision.reason == "superseded by a higher-priority support_call survey"


def test_delayed_survey_come_due_is_skipped_when_a_quarantine_began_meanwhile():
    invited_at = NOW - timedelta(hours=5)
    decision = domain.decide_when_due(PURCHASE, "purchase.completed", NOW, invited_at, None)
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.QUARANTINE_AFTER_INVITATION)


def test_delayed_survey_come_due_is_skipped_when_its_rule_was_disabled_meanwhile():
    decision = domain.decide_when_due(rule(enabled=False), "purchase.completed", NOW, None, None)
    assert (decision.outcome, decision.code) == (Decision.SKIPPED, ReasonCode.RULE_DISABLED)


def test_invitation_expires_after_the_rules_days_or_the_configured_default():
    expiring = rule(expires_after=timedelta(days=14))
    assert domain.invitation_expires_at(expiring, NOW, 30) == NOW + timedelta(days=14)
    assert domain.invitation_expires_at(PURCHASE, NOW, 30) == NOW + timedelta(days=30)
    assert domain.invitation_expires_at(None, NOW, 45) == NOW + timedelta(days=45)
