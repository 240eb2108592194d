"""Follow-up surveys and referral attribution on PostgreSQL: due rows, row locks, the outbox, the API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.survey import service
from services.survey.app import create_app
from services.survey.models import FollowUpSurvey, Invitation, outbox
from services.survey.schemas import CrmEventSchema
from shared.clock import utcnow
from shared.events import new_event, parse_event
from shared.principal import Role
from tests.conftest import crm_event, signed_request, staff_client
from tests.survey_intake import accept_and_decide


def answered(survey, score, external_id="crm-42", properties=None):
    event = crm_event()
    event["customer"]["external_id"] = external_id
    event["properties"] = properties or {"order_id": "A-1001"}
    outcome = accept_and_decide(survey, CrmEventSchema().load(event))
    with survey.database.transaction() as session:
        token = session.get(Invitation, outcome.invitation_id).token
    service.submit_answer(survey, token, score, None)
    with survey.unit_of_work() as uow:
        return uow.responses.for_invitation(outcome.invitation_id).id


def followup_resolved(response_id, after_days=14, resolved_at=None):
    return new_event(
        "followup.resolved",
        {
            "task_id": f"task-{response_id}",
            "response_id": response_id,
            "invitation_id": "inv-1",
            "customer": {"customer_id": "c-1", "email": "jane@example.com", "preferred_channel": "email"},
            "locale": "en",
            "resolution_code": "contacted_resolved",
            "follow_up_survey_after_days": after_days,
        },
        occurred_at=resolved_at,
    )


def outbox_events(survey, event_type):
    with survey.database.transaction() as session:
        rows = session.execute(
            select(outbox.c.payload, outbox.c.consumer).where(outbox.c.event_type == event_type)
        )
        return [(row.consumer, parse_event(row.payload, event_type)[1]) for row in rows]


def test_follow_up_survey_waits_in_the_database_and_is_invited_once_when_due(survey):
    response_id = answered(survey, 3)
    resolved_at = utcnow()
    envelope = followup_resolved(response_id, 14, resolved_at)
    service.schedule_follow_up_survey(survey, envelope)
    service.schedule_follow_up_survey(survey, envelope)  # redelivered
    due = resolved_at + timedelta(days=14)

    assert service.invite_due_follow_ups(survey, now=due - timedelta(minutes=1)) == 0
    assert service.invite_due_follow_ups(survey, now=due) == 1
    assert service.invite_due_follow_ups(survey, now=due + timedelta(days=1)) == 0

    follow_ups = [
        data for _, data in outbox_events(survey, "invitation.requested") if data["touchpoint"] == "follow_up"
    ]
    [requested] = follow_ups
    assert "earlier feedback" in requested["message"]["question"]
    with survey.database.transaction() as session:
        invitation = session.get(Invitation, requested["invitation_id"])
        [follow_up] = session.scalars(select(FollowUpSurvey)).all()
    assert (invitation.follows_up_response_id, invitation.crm_event_id) == (response_id, None)
    assert (follow_up.status, follow_up.invitation_id, follow_up.due_at) == ("invited", invitation.id, due)


def test_follow_up_another_clock_holds_is_skipped_not_waited_for(survey):
    service.schedule_follow_up_survey(survey, followup_resolved(answered(survey, 3), 1, utcnow()))
    due = utcnow() + timedelta(days=2)

    with survey.unit_of_work() as other_clock:
        assert len(other_clock.follow_ups.claim_due(due, 10)) == 1  # holds the row lock until it ends
        assert service.invite_due_follow_ups(survey, now=due) == 0
    assert service.invite_due_follow_ups(survey, now=due) == 1


def test_follow_up_results_say_how_many_answered_and_improved(survey, survey_client):
    for external_id, before, after in (("crm-1", 3, 9), ("crm-2", 6, 6), ("crm-3", 2, None)):
        response_id = answered(survey, before, external_id)
        service.schedule_follow_up_survey(survey, followup_resolved(response_id, 1, utcnow()))
        service.invite_due_follow_ups(survey, now=utcnow() + timedelta(days=1))
        if after is not None:
            with survey.database.transaction() as session:
                token = session.scalars(
                    select(Invitation.token).where(Invitation.follows_up_response_id == response_id)
                ).one()
            service.submit_answer(survey, token, after, None)
    service.schedule_follow_up_survey(survey, followup_resolved(answered(survey, 1, "crm-4"), 30, utcnow()))

    response = survey_client.get("/v1/nps/follow-ups")

    assert response.status_code == 200
    assert response.get_json() == {
        "scheduled": 1,
        "invited": 3,
        "answered": 2,
        "improved": 1,
        "unchanged": 1,
        "worse": 0,
    }
    assert survey_client.get("/v1/nps", query_string={"touchpoint": "follow_up"}).get_json()["responses"] == 2


def test_follow_up_results_are_for_staff_only(survey):
    app = create_app(survey)
    assert app.test_client().get("/v1/nps/follow-ups").status_code == 401
    assert staff_client(app, survey.identity, Role.AGENT).get("/v1/nps/follow-ups").status_code == 200


def test_signed_crm_event_with_a_referral_code_tells_followup(survey, survey_client):
    event = crm_event("order-9")
    event["properties"] = {"order_id": "A-9", "referral_code": "Jk3pQ"}
    body, headers = signed_request(event)

    outcome = survey_client.post("/v1/events", data=body, headers=headers).get_json()
    assert outcome["status"] == "accepted" and outbox_events(survey, "referral.code_used") == []
    service.decide_received_events(survey)

    [(consumer, data)] = outbox_events(survey, "referral.code_used")
    assert consumer == "followup"
    assert (data["referral_code"], data["event_id"], data["event_type"]) == (
        "Jk3pQ",
        outcome["event_id"],
        "purchase.completed",
    )
