"""Closing the loop in survey: follow-up surveys after resolved tasks, and referral codes reported."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.survey import domain, service
from services.survey.domain import FollowUpSummary
from services.survey.runtime import SurveyRuntime
from services.survey.schemas import CrmEventSchema
from shared.clock import utcnow
from shared.events import new_event
from shared.sms import sms_segments
from tests.conftest import crm_event
from tests.survey_intake import DecidedEvent, accept_and_decide

from .fakes import FakeSurveyUnitOfWork, fake_runtime

# The invitations of these tests are made at the wall clock's time: the resolutions come right after.
RESOLVED_AT = utcnow().replace(microsecond=0) + timedelta(minutes=1)


@pytest.fixture
def uow() -> FakeSurveyUnitOfWork:
    return FakeSurveyUnitOfWork()


@pytest.fixture
def survey(uow: FakeSurveyUnitOfWork) -> SurveyRuntime:
    return fake_runtime(uow)


def accept(survey: SurveyRuntime, event: dict[str, Any]) -> DecidedEvent:
    return accept_and_decide(survey, CrmEventSchema().load(event))


def answered(
    survey: SurveyRuntime, uow: FakeSurveyUnitOfWork, score: int, external_id: str = "crm-42"
) -> str:
    """A customer invited by a purchase, who answered ``score``; returns the response id."""
    event = crm_event()
    event["customer"]["external_id"] = external_id
    outcome = accept(survey, event)
    service.submit_answer(survey, uow.invitations.get(outcome.invitation_id).token, score, None)
    return uow.responses.for_invitation(outcome.invitation_id).id


def followup_resolved(
    response_id: str,
    after_days: int | None = 14,
    task_id: str = "task-1",
    resolved_at: datetime = RESOLVED_AT,
) -> dict[str, Any]:
    return new_event(
        "followup.resolved",
        {
            "task_id": task_id,
            "response_id": response_id,
            "invitation_id": "inv-unused-here",
            "customer": {"customer_id": "c-1", "email": "jane@example.com", "preferred_channel": "email"},
            "locale": "en",
            "resolution_code": "contacted_resolved",
            "follow_up_survey_after_days": after_days,
        },
        occurred_at=resolved_at,
    )


def follow_up_invitations(uow: FakeSurveyUnitOfWork) -> list[dict[str, Any]]:
    return [data for data in uow.emitted("invitation.requested") if data["touchpoint"] == "follow_up"]


# --- Scheduling ------------------------------------------------------------------------------------------


def test_resolved_task_asking_for_a_follow_up_schedules_it_that_many_days_after_the_resolution(survey, uow):
    response_id = answered(survey, uow, 3)

    service.schedule_follow_up_survey(survey, followup_resolved(response_id, after_days=14))

    [follow_up] = uow.follow_ups.rows.values()
    assert (follow_up.response_id, follow_up.task_id, follow_up.status) == (
        response_id,
        "task-1",
        "scheduled",
    )
    assert follow_up.due_at == RESOLVED_AT + timedelta(days=14)
    assert follow_up.customer_id == uow.responses.get(response_id).customer_id
    assert follow_up_invitations(uow) == []  # a due time in the database, nothing sent yet


def test_resolved_task_without_a_follow_up_survey_schedules_nothing(survey, uow):
    envelope = followup_resolved(answered(survey, uow, 3), after_days=None)
    service.schedule_follow_up_survey(survey, envelope)
    assert uow.follow_ups.rows == {} and (envelope["id"], "schedule_follow_up_survey") in uow.consumed


def test_follow_up_of_an_unknown_response_is_acknowledged_and_schedules_nothing(survey, uow):
    envelope = followup_resolved("no-such-response")
    service.schedule_follow_up_survey(survey, envelope)
    assert uow.follow_ups.rows == {} and (envelope["id"], "schedule_follow_up_survey") in uow.consumed


def test_redelivered_resolution_schedules_one_follow_up(survey, uow):
    envelope = followup_resolved(answered(survey, uow, 3))
    service.schedule_follow_up_survey(survey, envelope)
    service.schedule_follow_up_survey(survey, envelope)
    assert len(uow.follow_ups.rows) == 1


def test_task_resolved_again_before_the_follow_up_moves_its_day(survey, uow):
    response_id = answered(survey, uow, 3)
    service.schedule_follow_up_survey(survey, followup_resolved(response_id, after_days=14))
    later = RESOLVED_AT + timedelta(days=3)
    service.schedule_follow_up_survey(survey, followup_resolved(response_id, 7, "task-2", resolved_at=later))

    [follow_up] = uow.follow_ups.rows.values()
    assert (follow_up.task_id, follow_up.due_at) == ("task-2", later + timedelta(days=7))


def test_task_resolved_again_after_the_follow_up_was_sent_asks_nothing_more(survey, uow):
    response_id = answered(survey, uow, 3)
    service.schedule_follow_up_survey(survey, followup_resolved(response_id, after_days=1))
    service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=1))
    service.schedule_follow_up_survey(survey, followup_resolved(response_id, 1, "task-2"))

    assert service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=30)) == 0
    assert len(follow_up_invitations(uow)) == 1 and len(uow.follow_ups.rows) == 1


# --- Inviting when due -------------------------------------------------------------------------------------


def test_due_follow_up_invites_the_customer_again_despite_the_quarantine(survey, uow):
    response_id = answered(survey, uow, 3)
    earlier = uow.responses.get(response_id)
    service.schedule_follow_up_survey(survey, followup_resolved(response_id, after_days=14))

    due = RESOLVED_AT + timedelta(days=14)
    assert service.invite_due_follow_ups(survey, now=due - timedelta(seconds=1)) == 0
    # Within 30 days of the first invitation: a CRM event would be quarantined, the follow-up is not.
    last_invited_at = uow.invitations.last_invited_at(earlier.customer_id)
    assert not domain.decide_survey("purchase.completed", due, due, last_invited_at).invite
    assert service.invite_due_follow_ups(survey, now=due) == 1

    [requested] = follow_up_invitations(uow)
    invitation = uow.invitations.get(requested["invitation_id"])
    assert (invitation.follows_up_response_id, invitation.crm_event_id) == (response_id, None)
    assert invitation.customer_id == earlier.customer_id
    assert invitation.properties == {"order_id": "A-1001"}
    assert requested["message"]["question"] == (
        "Thanks for your earlier feedback; we followed up on it. "
        "How likely are you to recommend Closeloop to a friend or colleague?"
    )
    assert requested["contact"]["email"] == "jane@example.com"
    [follow_up] = uow.follow_ups.rows.values()
    assert (follow_up.status, follow_up.invitation_id) == ("invited", invitation.id)


def test_follow_up_invites_once_however_often_the_job_runs(survey, uow):
    service.schedule_follow_up_survey(survey, followup_resolved(answered(survey, uow, 3), after_days=1))
    due = RESOLVED_AT + timedelta(days=2)
    assert [service.invite_due_follow_ups(survey, now=due) for _ in range(3)] == [1, 0, 0]
    assert len(follow_up_invitations(uow)) == 1


def test_follow_up_another_clock_holds_is_left_to_it(survey, uow):
    service.schedule_follow_up_survey(survey, followup_resolved(answered(survey, uow, 3), after_days=1))
    uow.follow_ups.held_by_another_clock = set(uow.follow_ups.rows)

    assert service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=2)) == 0
    assert follow_up_invitations(uow) == []


def test_turkish_follow_up_says_it_follows_up_the_earlier_feedback_in_turkish(survey, uow):
    event = crm_event()
    event["customer"]["locale"] = "tr"
    outcome = accept(survey, event)
    service.submit_answer(survey, uow.invitations.get(outcome.invitation_id).token, 2, None)
    response_id = uow.responses.for_invitation(outcome.invitation_id).id
    service.schedule_follow_up_survey(survey, followup_resolved(response_id, after_days=1))
    service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=1))

    [requested] = follow_up_invitations(uow)
    assert requested["locale"] == "tr"
    assert requested["message"]["question"].startswith("Önceki geri bildiriminiz için teşekkürler")


def test_english_follow_up_sms_fits_one_segment(survey, uow):
    service.schedule_follow_up_survey(survey, followup_resolved(answered(survey, uow, 3), after_days=1))
    service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=1))
    [requested] = follow_up_invitations(uow)
    assert "earlier feedback" in requested["message"]["sms_body"]
    assert sms_segments(requested["message"]["sms_body"]) == 1


def test_answer_page_of_a_follow_up_asks_the_follow_up_question(survey, uow):
    service.schedule_follow_up_survey(survey, followup_resolved(answered(survey, uow, 3), after_days=1))
    service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=1))
    [requested] = follow_up_invitations(uow)

    page = service.answer_page(survey, uow.invitations.get(requested["invitation_id"]).token)
    assert page.question.startswith("Thanks for your earlier feedback")


# --- What follow-ups achieved ------------------------------------------------------------------------------


def answer_follow_up(
    survey: SurveyRuntime, uow: FakeSurveyUnitOfWork, response_id: str, score: int | None
) -> None:
    service.schedule_follow_up_survey(
        survey, followup_resolved(response_id, after_days=1, task_id=response_id)
    )
    service.invite_due_follow_ups(survey, now=RESOLVED_AT + timedelta(days=1))
    if score is not None:
        invitation = next(i for i in uow.invitations.rows.values() if i.follows_up_response_id == response_id)
        service.submit_answer(survey, invitation.token, score, None)


def test_follow_up_results_count_answers_and_whether_the_score_rose(survey, uow):
    answer_follow_up(survey, uow, answered(survey, uow, 3, "crm-1"), 8)  # improved
    answer_follow_up(survey, uow, answered(survey, uow, 5, "crm-2"), 9)  # improved
    answer_follow_up(survey, uow, answered(survey, uow, 6, "crm-3"), 6)  # unchanged
    answer_follow_up(survey, uow, answered(survey, uow, 4, "crm-4"), 2)  # worse
    answer_follow_up(survey, uow, answered(survey, uow, 1, "crm-5"), None)  # not answered
    waiting = answered(survey, uow, 2, "crm-6")
    service.schedule_follow_up_survey(survey, followup_resolved(waiting, after_days=30, task_id="task-6"))

    assert service.follow_up_results(survey) == FollowUpSummary(
        scheduled=1, invited=5, answered=4, improved=2, unchanged=1, worse=1
    )


def test_follow_up_results_compare_with_the_earlier_answers_latest_score(survey, uow):
    response_id = answered(survey, uow, 3)
    earlier = uow.responses.get(response_id)
    service.submit_answer(survey, uow.invitations.get(earlier.invitation_id).token, 7, None)  # revised
    answer_follow_up(survey, uow, response_id, 6)

    assert service.follow_up_results(survey).worse == 1


def test_follow_up_results_without_follow_ups_are_all_zero(survey):
    assert service.follow_up_results(survey) == FollowUpSummary(0, 0, 0, 0, 0, 0)


# --- Referral attribution ---------------------------------------------------------------------------------


def test_crm_event_with_a_referral_code_tells_followup_who_came_through_the_link(survey, uow):
    event = crm_event("order-7")
    event["properties"] = {"order_id": "A-7", "referral_code": "  Jk3pQ "}
    outcome = accept(survey, event)

    stored = uow.crm_events.rows[outcome.event_id]
    assert uow.emitted("referral.code_used") == [
        {
            "referral_code": "Jk3pQ",
            "event_id": outcome.event_id,
            "event_type": "purchase.completed",
            "customer_id": stored.customer_id,
            "occurred_at": stored.occurred_at.isoformat(),
        }
    ]


def test_referral_code_is_reported_even_when_the_customer_is_not_surveyed(survey, uow):
    accept(survey, crm_event("order-1"))
    event = crm_event("order-2")
    event["properties"] = {"referral_code": 12345}
    outcome = accept(survey, event)

    assert outcome.decision == "skipped"
    assert [data["referral_code"] for data in uow.emitted("referral.code_used")] == ["12345"]


def test_repeated_crm_event_reports_its_referral_code_once(survey, uow):
    event = crm_event("order-7")
    event["properties"] = {"referral_code": "Jk3pQ"}
    accept(survey, event)
    assert accept(survey, event).duplicate
    assert len(uow.emitted("referral.code_used")) == 1


@pytest.mark.parametrize("code", [None, "", "   ", True, {"code": "x"}, ["x"], "x" * 201])
def test_crm_event_without_a_usable_referral_code_reports_none(survey, uow, code):
    event = crm_event()
    event["properties"] = {"referral_code": code}
    outcome = accept(survey, event)
    assert outcome.decision == "invited" and uow.emitted("referral.code_used") == []
