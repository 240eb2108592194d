"""Trigger rules and recorded decisions on the in-memory unit of work: what each event decides and why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.survey import service
from services.survey.runtime import SurveyRuntime
from services.survey.schemas import CrmEventSchema, TriggerRuleSchema
from shared.clock import utcnow
from shared.http import NotFoundError
from tests.conftest import crm_event
from tests.survey_intake import DecidedEvent, accept_and_decide

from .fakes import FakeSurveyUnitOfWork, fake_runtime


@pytest.fixture
def uow() -> FakeSurveyUnitOfWork:
    return FakeSurveyUnitOfWork()


@pytest.fixture
def survey(uow: FakeSurveyUnitOfWork) -> SurveyRuntime:
    return fake_runtime(uow)


def set_rule(survey: SurveyRuntime, event_type: str, **fields: Any) -> dict[str, Any]:
    return service.put_trigger_rule(survey, event_type, TriggerRuleSchema().load(fields))


def accept(
    survey: SurveyRuntime,
    event_id: str,
    event_type: str = "purchase.completed",
    occurred_at: datetime | None = None,
    properties: dict[str, Any] | None = None,
    external_id: str = "crm-42",
) -> DecidedEvent:
    event = CrmEventSchema().load(crm_event(event_id, external_id=external_id))
    # Loaded as the API does, then given a type the schema only accepts inside the app (custom ones).
    event.update(type=event_type, properties=properties or {})
    if occurred_at is not None:
        event["occurred_at"] = occurred_at
    return accept_and_decide(survey, event)


def test_every_decision_records_its_reason_code_sentence_and_explanation(survey):
    invited = accept(survey, "order-1")
    skipped = accept(survey, "call-2", "support_call.ended")

    first = service.event_decision(survey, invited.event_id)
    assert (first.decision, first.reason_code, first.reason) == ("invited", "invited", "purchase survey")
    second = service.event_decision(survey, skipped.event_id)
    assert (second.decision, second.reason_code) == ("skipped", "quarantine_after_invitation")
    assert second.explanation.startswith(f"quarantine since the invitation of {utcnow().date().isoformat()}")
    assert (skipped.reason_code, skipped.due_at) == ("quarantine_after_invitation", None)


def test_customer_decisions_are_listed_newest_first(survey):
    accept(survey, "order-1")
    accept(survey, "call-2", "support_call.ended")
    accept(survey, "visit-3", "site.visited", occurred_at=utcnow() - timedelta(days=9))

    decisions = service.customer_decisions(survey, "crm-42")

    assert [(d.external_id, d.reason_code) for d in decisions] == [
        ("visit-3", "event_too_old"),
        ("call-2", "quarantine_after_invitation"),
        ("order-1", "invited"),
    ]


def test_decisions_of_an_unknown_customer_or_event_are_not_found(survey):
    with pytest.raises(NotFoundError):
        service.customer_decisions(survey, "nobody")
    with pytest.raises(NotFoundError):
        service.event_decision(survey, "no-such-event")


def test_rules_list_the_three_defaults_until_one_is_changed(survey):
    assert [(r["event_type"], r["is_default"]) for r in service.list_trigger_rules(survey)] == [
        ("purchase.completed", True),
        ("site.visited", True),
        ("support_call.ended", True),
    ]
    default = service.get_trigger_rule(survey, "purchase.completed")
    assert (
        default["delay_hours"],
        default["quarantine_after_invitation_days"],
        default["sampling_rate"],
    ) == (
        0,
        30,
        1.0,
    )

    set_rule(survey, "purchase.completed", touchpoint="purchase", delay_hours=48)

    [purchase] = [r for r in service.list_trigger_rules(survey) if r["event_type"] == "purchase.completed"]
    assert (purchase["is_default"], purchase["delay_hours"]) == (False, 48)


def test_disabled_rule_skips_the_event_and_says_so(survey, uow):
    set_rule(survey, "site.visited", touchpoint="site_visit", enabled=False)

    outcome = accept(survey, "visit-1", "site.visited")

    assert (outcome.decision, outcome.reason_code) == ("skipped", "rule_disabled")
    assert uow.emitted("invitation.requested") == []


def test_delayed_survey_waits_as_a_row_and_is_invited_when_due(survey, uow):
    set_rule(survey, "purchase.completed", touchpoint="purchase", delay_hours=48)
    occurred_at = utcnow() - timedelta(hours=1)

    outcome = accept(survey, "order-1", occurred_at=occurred_at)

    due = occurred_at + timedelta(hours=48)
    assert (outcome.decision, outcome.reason_code, outcome.due_at, outcome.invitation_id) == (
        "delayed",
        "delayed",
        due,
        None,
    )
    assert uow.emitted("invitation.requested") == []
    assert service.invite_due_surveys(survey, now=due - timedelta(minutes=1)) == 0
    assert service.invite_due_surveys(survey, now=due) == 1
    assert service.invite_due_surveys(survey, now=due + timedelta(hours=1)) == 0

    [requested] = uow.emitted("invitation.requested")
    decision = service.event_decision(survey, outcome.event_id)
    assert (decision.decision, decision.reason_code, decision.invitation_id) == (
        "invited",
        "invited",
        requested["invitation_id"],
    )
    assert requested["touchpoint"] == "purchase"


def test_delayed_survey_whose_rule_was_disabled_while_it_waited_is_skipped_when_due(survey, uow):
    set_rule(survey, "site.visited", touchpoint="site_visit", delay_hours=24, priority=10)
    visit = accept(survey, "visit-1", "site.visited")
    set_rule(survey, "site.visited", touchpoint="site_visit", enabled=False)
    accept(survey, "visit-2", "site.visited")  # a disabled rule takes no part in the pending check

    assert service.invite_due_surveys(survey, now=utcnow() + timedelta(days=2)) == 0

    decision = service.event_decision(survey, visit.event_id)
    assert (decision.decision, decision.reason_code) == ("skipped", "rule_disabled")
    assert uow.emitted("invitation.requested") == []


def test_higher_priority_touchpoint_supersedes_a_pending_delayed_survey(survey, uow):
    set_rule(survey, "site.visited", touchpoint="site_visit", delay_hours=24, priority=1)
    set_rule(survey, "support_call.ended", touchpoint="support_call", priority=5)
    visit = accept(survey, "visit-1", "site.visited")

    call = accept(survey, "call-2", "support_call.ended")

    assert call.decision == "invited"
    superseded = service.event_decision(survey, visit.event_id)
    assert (superseded.decision, superseded.reason_code) == ("skipped", "superseded")
    assert superseded.reason == "superseded by a higher-priority support_call survey"
    assert service.invite_due_surveys(survey, now=utcnow() + timedelta(days=2)) == 0
    assert [data["touchpoint"] for data in uow.emitted("invitation.requested")] == ["support_call"]


def test_lower_priority_event_gives_way_to_a_pending_survey(survey, uow):
    set_rule(survey, "support_call.ended", touchpoint="support_call", delay_hours=24, priority=5)
    call = accept(survey, "call-1", "support_call.ended")

    visit = accept(survey, "visit-2", "site.visited")

    assert (visit.decision, visit.reason_code) == ("skipped", "survey_pending")
    assert service.event_decision(survey, call.event_id).decision == "delayed"


def test_custom_event_type_with_a_condition_is_surveyed_only_when_it_holds(survey, uow):
    set_rule(
        survey,
        "ticket.updated",
        touchpoint="support_call",
        conditions=[{"property": "status", "operator": "eq", "value": "solved"}],
    )

    open_ticket = accept(survey, "t-1", "ticket.updated", properties={"status": "open"})
    solved = accept(survey, "t-2", "ticket.updated", properties={"status": "solved"})

    assert (open_ticket.decision, open_ticket.reason_code) == ("skipped", "condition_not_met")
    assert open_ticket.reason == "condition not met: status eq 'solved'"
    assert (solved.decision, solved.reason_code) == ("invited", "invited")
    assert [data["touchpoint"] for data in uow.emitted("invitation.requested")] == ["support_call"]


def test_amount_at_least_condition_compares_numbers(survey):
    set_rule(
        survey,
        "purchase.completed",
        touchpoint="purchase",
        quarantine_after_invitation_days=0,
        conditions=[{"property": "amount", "operator": "gte", "value": 100}],
    )

    small = accept(survey, "order-1", properties={"amount": 20})
    large = accept(survey, "order-2", properties={"amount": "250.00"})

    assert (small.reason_code, large.reason_code) == ("condition_not_met", "invited")


def test_sampling_decides_the_same_for_the_same_customer_and_event_in_any_process():
    decisions = set()
    for _ in range(3):
        runtime = fake_runtime(FakeSurveyUnitOfWork())
        set_rule(runtime, "purchase.completed", touchpoint="purchase", sampling_rate=0.5)
        decisions.add(tuple(accept(runtime, f"order-{n}").decision for n in range(20)))
    [only] = decisions
    assert set(only) == {"invited", "skipped"}


def test_sampled_out_event_records_sampled_out(survey):
    set_rule(survey, "purchase.completed", touchpoint="purchase", sampling_rate=0.0)
    outcome = accept(survey, "order-1")
    assert (outcome.decision, outcome.reason_code) == ("skipped", "sampled_out")


def test_quarantine_after_an_answer_spans_touchpoints(survey):
    set_rule(
        survey,
        "site.visited",
        touchpoint="site_visit",
        quarantine_after_invitation_days=0,
        quarantine_after_answer_days=60,
    )
    outcome = accept(survey, "order-1")
    with survey.unit_of_work() as uow:
        token = uow.invitations.get(outcome.invitation_id).token
    service.submit_answer(survey, token, 9, None)

    visit = accept(survey, "visit-2", "site.visited")

    assert (visit.decision, visit.reason_code) == ("skipped", "quarantine_after_answer")
    assert "since the answer of" in service.event_decision(survey, visit.event_id).explanation


def test_expired_invitation_takes_no_answer_and_its_page_says_so(survey, uow):
    set_rule(survey, "purchase.completed", touchpoint="purchase", invitation_expiry_days=14)
    outcome = accept(survey, "order-1")
    invitation = uow.invitations.get(outcome.invitation_id)
    assert invitation.expires_at == invitation.created_at + timedelta(days=14)

    assert service.answer_page(survey, invitation.token).expired is False
    invitation.expires_at = utcnow() - timedelta(seconds=1)
    page = service.submit_answer(survey, invitation.token, 9, "great")

    assert (page.expired, page.answered) == (True, False)
    assert service.answer_page(survey, invitation.token, 7).expired is True
    assert service.record_click(survey, invitation.token, 7, None).page.expired is True
    assert uow.emitted("response.submitted") == [] and uow.score_clicks.rows == []
