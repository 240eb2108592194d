"""Answers on PostgreSQL: the answer page, scanners' clicks, SMS replies and response revisions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.survey import service
from services.survey.bootstrap import periodic_jobs
from services.survey.models import Response, outbox
from services.survey.schemas import CrmEventSchema
from shared.clock import utcnow
from shared.events import new_event
from tests.clock import Clock
from tests.conftest import crm_event
from tests.survey_intake import accept_and_decide


def invite(survey, **customer):
    outcome = accept_and_decide(survey, CrmEventSchema().load(crm_event(**customer)))
    with survey.database.transaction() as session:
        row = session.execute(select(outbox.c.payload)).all()[-1]
    return outcome.invitation_id, row.payload["data"]["message"]["answer_url"].rsplit("/", 1)[1]


def submitted_events(survey):
    """Each response.submitted once (the outbox keeps a row per consumer: sentiment's)."""
    with survey.database.transaction() as session:
        query = select(outbox.c.payload).where(outbox.c.consumer == "sentiment").order_by(outbox.c.created_at)
        rows = session.execute(query).all()
    return [row.payload["data"] for row in rows if row.payload["type"] == "response.submitted"]


@pytest.fixture
def clock(monkeypatch):
    """Survey's now, moved by hand: the 10-minute settle of old and scanners' pauses, without sleeping."""
    clock = Clock()
    monkeypatch.setattr("services.survey.service.utcnow", clock)
    return clock


def run_survey_clock(survey):
    """Every periodic job survey's clock runs, as it would once the time came."""
    for job in periodic_jobs(survey):
        job.run()


def responses(survey):
    with survey.database.transaction() as session:
        return [(row.score, row.comment) for row in session.scalars(select(Response))]


def test_score_link_alone_records_nothing_and_shows_the_score_chosen(survey, survey_client):
    _, token = invite(survey)
    page = survey_client.get(f"/s/{token}?score=7")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert 'value="7" checked' in html
    # The page's script posts the click, once rendered: that is what counts, not the GET.
    assert f"/s/{token}/click" in html and "saved when you press Send" in html
    assert submitted_events(survey) == [] and responses(survey) == []


def test_scanner_fetching_only_the_score_0_link_records_no_answer(survey, survey_client, clock):
    _, token = invite(survey)

    survey_client.get(f"/s/{token}?score=0")
    clock.advance(minutes=11)
    run_survey_clock(survey)
    clock.advance(days=1)
    run_survey_clock(survey)

    assert responses(survey) == [] and submitted_events(survey) == []


def test_scanner_fetching_the_11_links_6_seconds_apart_records_no_answer(survey, survey_client, clock):
    _, token = invite(survey)

    for score in range(11):
        survey_client.get(f"/s/{token}?score={score}", headers={"User-Agent": "SafeLinks"})
        clock.advance(seconds=6)
    clock.advance(minutes=11)
    run_survey_clock(survey)

    assert responses(survey) == [] and submitted_events(survey) == []


def test_person_clicking_9_three_seconds_after_a_scanners_burst_is_the_answer(survey, survey_client, clock):
    _, token = invite(survey)
    for score in range(11):
        survey_client.get(f"/s/{token}?score={score}", headers={"User-Agent": "SafeLinks"})
        clock.advance(seconds=0.05)
    clock.advance(seconds=3)

    page = survey_client.get(f"/s/{token}?score=9")
    saved = script_click(survey_client, token, 9, clock)

    assert page.status_code == 200 and saved == {"saved": True, "score": 9}
    assert responses(survey) == [(9, None)]
    assert [(e["score"], e["revision"]) for e in submitted_events(survey)] == [(9, 1)]
    clock.advance(minutes=11)
    run_survey_clock(survey)
    assert responses(survey) == [(9, None)]


def script_click(client, token, score, clock):
    """What the answer page's script does: post the click, wait as told, confirm it."""
    posted = client.post(f"/s/{token}/click", data={"score": str(score)})
    assert posted.status_code == 202
    click = posted.get_json()
    assert client.post(click["confirm_url"]).status_code == 425  # too early: a burst may still come
    clock.advance(seconds=click["confirm_after_ms"] / 1000)
    confirmed = client.post(click["confirm_url"])
    assert confirmed.status_code == 200
    return confirmed.get_json()


def test_scanner_running_the_pages_scripts_for_every_link_records_no_answer(survey, survey_client, clock):
    _, token = invite(survey)
    confirm_urls = []
    for score in range(11):
        survey_client.get(f"/s/{token}?score={score}", headers={"User-Agent": "HeadlessChrome"})
        posted = survey_client.post(f"/s/{token}/click", data={"score": str(score)})
        confirm_urls.append(posted.get_json()["confirm_url"])
        clock.advance(seconds=0.2)
    clock.advance(seconds=2)

    assert [survey_client.post(url).get_json()["saved"] for url in confirm_urls] == [False] * 11
    assert responses(survey) == [] and submitted_events(survey) == []


def test_send_after_the_click_adds_the_comment_to_the_same_response(survey, survey_client, clock):
    _, token = invite(survey)
    script_click(survey_client, token, 9, clock)

    thanks = survey_client.post(f"/s/{token}", data={"score": "9", "comment": "Lovely staff"})

    assert thanks.status_code == 200
    assert [(e["score"], e["comment"], e["revision"]) for e in submitted_events(survey)] == [
        (9, None, 1),
        (9, "Lovely staff", 2),
    ]


@pytest.mark.parametrize("score", ["11", "-1", "²", "٩", "", "9.5"])
def test_a_click_without_a_score_from_0_to_10_is_refused(survey, survey_client, score):
    _, token = invite(survey)
    assert survey_client.post(f"/s/{token}/click", data={"score": score}).status_code == 422
    assert responses(survey) == []


def test_typed_comment_is_kept_when_the_score_is_missing(survey, survey_client):
    _, token = invite(survey)
    response = survey_client.post(f"/s/{token}", data={"comment": "The <b>courier</b> was late"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The &lt;b&gt;courier&lt;/b&gt; was late</textarea>" in html and "0 to 10" in html


def test_unknown_link_gets_a_styled_page_in_the_visitors_language(survey_client):
    english = survey_client.get("/s/not-a-token?score=5")
    turkish = survey_client.get("/s/not-a-token", headers={"Accept-Language": "tr-TR,tr;q=0.9,en;q=0.5"})
    assert english.status_code == 404 and "This survey link is not valid" in english.get_data(as_text=True)
    assert turkish.status_code == 404 and "geçerli değil" in turkish.get_data(as_text=True)
    assert 'lang="tr"' in turkish.get_data(as_text=True) and "--accent: #1f6f5c" in turkish.get_data(
        as_text=True
    )


def test_expired_link_gets_a_localized_closed_page_and_takes_no_answer(survey, survey_client, clock):
    _, token = invite(survey, locale="tr-TR")
    clock.advance(days=31)  # the default expiry, SURVEY_INVITATION_EXPIRY_DAYS, is 30 days

    page = survey_client.get(f"/s/{token}?score=9")
    click = survey_client.post(f"/s/{token}/click", data={"score": "9"})
    confirm = survey_client.post(f"/s/{token}/click/1/confirm")
    sent = survey_client.post(f"/s/{token}", data={"score": "9"})

    assert page.status_code == 410 and "Anket kapandı" in page.get_data(as_text=True)
    assert click.status_code == 410 and confirm.status_code == 410 and sent.status_code == 410
    assert responses(survey) == []


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


def test_turkish_customer_gets_a_turkish_page(survey, survey_client):
    _, token = invite(survey, locale="tr-TR")
    page = survey_client.get(f"/s/{token}").get_data(as_text=True)
    assert 'lang="tr"' in page and "Gönder" in page


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


def test_sms_comment_before_any_score_is_kept_and_the_customer_asked_once(survey):
    invitation_id, _ = invite(survey, phone="+15555550100", preferred_channel="sms")
    service.record_sms_answer(survey, sms_received(invitation_id, "great staff", "SM1"))
    service.record_sms_answer(survey, sms_received(invitation_id, "😀", "SM2"))
    service.record_sms_answer(survey, sms_received(invitation_id, "I'd say 8", "SM3"))

    assert [(e["score"], e["comment"]) for e in submitted_events(survey)] == [(8, "😀")]
    with survey.database.transaction() as session:
        kinds = [row.payload["type"] for row in session.execute(select(outbox.c.payload))]
    assert kinds.count("reprompt.requested") == 1
    assert [m.body for m in service.answer_history(survey, invitation_id)] == [
        "great staff",
        "😀",
        "I'd say 8",
    ]


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


def test_staff_read_what_the_customer_wrote_as_written_and_as_read(survey, survey_client):
    invitation_id, _ = invite(survey, phone="+15555550100", preferred_channel="sms")
    service.record_sms_answer(survey, sms_received(invitation_id, "eleven", "SM1"))
    service.record_sms_answer(survey, sms_received(invitation_id, "9/10 loved it", "SM2"))

    messages = survey_client.get(f"/v1/invitations/{invitation_id}/answer-messages").get_json()

    assert [(m["body"], m["reading"], m["score"], m["comment"]) for m in messages] == [
        ("eleven", "out_of_range", None, "eleven"),
        ("9/10 loved it", "score", 9, "loved it"),
    ]
