"""Answers on PostgreSQL: the answer page, scanners' clicks, SMS replies and response revisions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from services.survey import service
from services.survey.models import Response, ScoreClick, outbox
from services.survey.schemas import CrmEventSchema
from shared.clock import utcnow
from shared.events import new_event
from tests.conftest import crm_event


def invite(survey, **customer):
    outcome = service.accept_crm_event(survey, CrmEventSchema().load(crm_event(**customer)))
    with survey.database.transaction() as session:
        row = session.execute(select(outbox.c.payload)).all()[-1]
    return outcome.invitation_id, row.payload["data"]["message"]["answer_url"].rsplit("/", 1)[1]


def submitted_events(survey):
    """Each response.submitted once (the outbox keeps a row per consumer: sentiment's)."""
    with survey.database.transaction() as session:
        query = select(outbox.c.payload).where(outbox.c.consumer == "sentiment").order_by(outbox.c.created_at)
        rows = session.execute(query).all()
    return [row.payload["data"] for row in rows if row.payload["type"] == "response.submitted"]


def test_score_link_alone_records_a_click_not_an_answer(survey, survey_client):
    _, token = invite(survey)
    page = survey_client.get(f"/s/{token}?score=7")
    assert page.status_code == 200
    assert 'value="7" checked' in page.get_data(as_text=True)
    assert submitted_events(survey) == []


def test_confirmed_answer_with_comment_is_submitted(survey, survey_client):
    invitation_id, token = invite(survey)
    response = survey_client.post(f"/s/{token}", data={"score": "4", "comment": "  Too slow  "})
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    [event] = submitted_events(survey)
    assert event["invitation_id"] == invitation_id
    assert (event["score"], event["comment"], event["revision"]) == (4, "Too slow", 1)


def test_answer_without_a_score_is_refused_with_a_message(survey, survey_client):
    _, token = invite(survey)
    response = survey_client.post(f"/s/{token}", data={"comment": "hi", "score": "12"})
    assert response.status_code == 422
    assert "0 to 10" in response.get_data(as_text=True)


def test_unknown_token_is_not_found(survey_client):
    assert survey_client.get("/s/not-a-token?score=5").status_code == 404


def test_turkish_customer_gets_a_turkish_page(survey, survey_client):
    _, token = invite(survey, locale="tr-TR")
    page = survey_client.get(f"/s/{token}").get_data(as_text=True)
    assert 'lang="tr"' in page and "Gönder" in page


def test_scanner_clicks_never_become_an_answer_but_a_person_click_settles(survey, survey_client):
    _, scanned = invite(survey, external_id="scanned", email="scanned@example.com")
    for score in range(11):
        survey_client.get(f"/s/{scanned}?score={score}")
    _, clicked = invite(survey, external_id="person", email="person@example.com")
    survey_client.get(f"/s/{clicked}?score=9")

    assert service.settle_clicked_answers(survey) == 0  # too early for both
    assert service.settle_clicked_answers(survey, now=utcnow() + timedelta(minutes=11)) == 1

    [event] = submitted_events(survey)
    assert event["score"] == 9
    with survey.database.transaction() as session:
        remaining = session.scalars(select(ScoreClick.score)).all()
    assert remaining == [9]  # the scanner's clicks are forgotten


def sms_received(invitation_id, body, sid):
    return new_event(
        "sms.received",
        {
            "message_sid": sid,
            "invitation_id": invitation_id,
            "body": body,
            "received_at": utcnow().isoformat(),
        },
    )


def test_sms_score_then_comment_makes_two_revisions(survey):
    invitation_id, _ = invite(survey, phone="+15555550100", preferred_channel="sms")
    first = sms_received(invitation_id, "9", "SM1")
    service.record_sms_answer(survey, first)
    service.record_sms_answer(survey, first)  # redelivered
    service.record_sms_answer(survey, sms_received(invitation_id, "Friendly and fast", "SM2"))

    events = submitted_events(survey)
    assert [(e["revision"], e["score"], e["comment"]) for e in events] == [
        (1, 9, None),
        (2, 9, "Friendly and fast"),
    ]
    with survey.database.transaction() as session:
        response = session.scalars(select(Response)).one()
    assert response.channel == "sms" and response.revision == 2


def test_sms_comment_before_any_score_records_nothing(survey):
    invitation_id, _ = invite(survey, phone="+15555550100", preferred_channel="sms")
    service.record_sms_answer(survey, sms_received(invitation_id, "who is this?", "SM1"))
    assert submitted_events(survey) == []


def test_nps_endpoint_counts_answers(survey, survey_client):
    for n, score in enumerate([10, 9, 3]):
        _, token = invite(survey, external_id=f"c{n}", email=f"c{n}@example.com")
        survey_client.post(f"/s/{token}", data={"score": str(score)})
    assert survey_client.get("/v1/nps").get_json() == {
        "responses": 3,
        "promoters": 2,
        "passives": 0,
        "detractors": 1,
        "nps": 33.3,
    }
    assert survey_client.get("/v1/nps?touchpoint=nowhere").status_code == 422


def test_two_clocks_settling_at_once_make_one_answer(survey, survey_client):
    _, token = invite(survey)
    survey_client.get(f"/s/{token}?score=8")
    later = utcnow() + timedelta(minutes=11)
    with ThreadPoolExecutor(3) as pool:
        settled = list(pool.map(lambda _: service.settle_clicked_answers(survey, now=later), range(3)))

    assert sum(settled) == 1
    assert [event["score"] for event in submitted_events(survey)] == [8]
