"""What people see of closing the loop: the promoter's referral link (/r/<code>), open to anyone, and the
staff's API and pages (mismatches, clicks, the close-the-loop message)."""

from __future__ import annotations

import html

import pytest

from services.followup import service
from services.followup.app import create_app
from services.followup.domain import TaskStatus
from tests.fakes import bearer

from .fakes import FakeFollowupUnitOfWork, fake_runtime
from .support import ANA, MAYA, NEGATIVE, START, scored, the_task

LANDING = "https://shop.example.com/refer?utm_source=closeloop&ref=stale"


@pytest.fixture
def runtime(uow: FakeFollowupUnitOfWork):
    return fake_runtime(uow, followup_referral_url=LANDING, followup_request_delay_minutes=0)


@pytest.fixture
def app(runtime):
    return create_app(runtime)


@pytest.fixture
def code(runtime, uow, clock) -> str:
    service.act_on_scored_response(runtime, scored(10))
    return uow.referrals.for_response("r-1").code


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# --- /r/<code> -------------------------------------------------------------------------------------------


def test_referral_link_counts_the_click_and_sends_a_stranger_on_to_the_landing_page(app, uow, clock, code):
    clicked_at = clock.advance(hours=2)
    response = app.test_client().get(f"/r/{code}", headers={"User-Agent": "Mozilla/5.0 " + "x" * 500})

    assert response.status_code == 302
    assert response.headers["Location"] == f"https://shop.example.com/refer?utm_source=closeloop&ref={code}"
    [click] = uow.referrals.clicks
    request = uow.referrals.for_response("r-1")
    assert click.referral_request_id == request.id and click.clicked_at == clicked_at
    assert click.user_agent == ("Mozilla/5.0 " + "x" * 500)[:200]
    assert (request.clicks, request.last_clicked_at) == (1, clicked_at)


def test_each_click_on_a_referral_link_is_counted(app, uow, clock, code):
    client = app.test_client()
    for _ in range(3):
        client.get(f"/r/{code}")

    assert uow.referrals.for_response("r-1").clicks == 3
    assert len(uow.referrals.clicks) == 3


@pytest.mark.parametrize(
    "path", ["/r/NoSuchCode123456", "/r/short", "/r/" + "A" * 40, "/r/bad%00code%00here"]
)
def test_unknown_or_malformed_referral_link_is_not_found_and_counts_nothing(app, uow, clock, code, path):
    response = app.test_client().get(path)

    assert response.status_code == 404
    assert uow.referrals.clicks == [] and uow.referrals.for_response("r-1").clicks == 0


def test_referral_link_is_not_found_while_no_landing_page_is_configured(uow, clock):
    runtime = fake_runtime(uow)
    service.act_on_scored_response(runtime, scored(10))
    code = uow.referrals.for_response("r-1").code

    assert create_app(runtime).test_client().get(f"/r/{code}").status_code == 404
    assert uow.referrals.clicks == []


def test_referral_link_of_a_withdrawn_request_still_works_for_the_customer_who_got_it(
    app, runtime, uow, clock, code
):
    service.act_on_scored_response(runtime, scored(5, revision=2))

    assert app.test_client().get(f"/r/{code}").status_code == 302


# --- The staff's API and pages ---------------------------------------------------------------------------


def test_api_lists_referral_requests_with_their_code_state_and_clicks(app, uow, clock, code):
    app.test_client().get(f"/r/{code}")

    response = app.test_client().get("/v1/referral-requests", headers=bearer(ANA))

    [shown] = response.get_json()
    assert (shown["code"], shown["status"], shown["clicks"], shown["score"]) == (code, "requested", 1, 10)
    assert shown["sent_at"] == START.isoformat() and shown["send_at"] is None
    assert shown["withdrawn_at"] is None and shown["converted_at"] is None


def test_referrals_page_shows_each_request_sent_and_its_clicks(app, uow, clock, code):
    app.test_client().get(f"/r/{code}")
    app.test_client().get(f"/r/{code}")

    page = text(app.test_client().get("/referrals", headers=bearer(ANA)))

    assert "Jane Doe" in page and ">Sent<" in page
    assert '<td data-label="Clicks" class="clicks">2</td>' in page


def test_task_page_shows_the_referral_request_of_a_customer_who_became_a_promoter(app, runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(4))
    service.act_on_scored_response(runtime, scored(9, revision=2))
    code = uow.referrals.for_response("r-1").code
    app.test_client().get(f"/r/{code}")

    page = text(app.test_client().get(f"/tasks/{the_task(uow).id}", headers=bearer(ANA)))

    assert 'id="referral-heading">Referral request<' in page
    assert "<dt>Clicks</dt><dd>1" in page


def test_mismatch_is_marked_in_the_api_the_queue_and_the_task_page(app, runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(9, comment="The agent was rude", sentiment=NEGATIVE))
    service.act_on_scored_response(runtime, scored(3, response_id="r-2"))
    task = the_task(uow)
    client = app.test_client()

    shown = client.get(f"/v1/tasks/{task.id}", headers=bearer(ANA)).get_json()
    queue = text(client.get("/tasks/unassigned", headers=bearer(ANA)))
    page = text(client.get(f"/tasks/{task.id}", headers=bearer(ANA)))

    assert shown["mismatch"] is True
    assert [
        task["mismatch"] for task in client.get("/v1/tasks?sort=score", headers=bearer(ANA)).get_json()
    ] == [
        False,
        True,
    ]
    assert queue.count('class="badge mismatch"') == 1
    assert (
        'class="badge mismatch"' in page
        and "Opened the task for a high score with a negative comment." in page
    )
    openapi = client.get("/openapi/followup.json").get_json()
    assert "mismatch" in openapi["components"]["schemas"]["Task"]["properties"]


def test_api_resolves_a_task_with_a_message_to_the_customer(app, runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3))
    task = the_task(uow)
    service.claim_task(runtime, MAYA, task.id)

    response = app.test_client().post(
        f"/v1/tasks/{task.id}/status",
        json={
            "status": "resolved",
            "resolution_code": "contacted_resolved",
            "close_loop_message": "Refund sent.",
        },
        headers=bearer(MAYA),
    )

    assert response.status_code == 200 and response.get_json()["close_loop_message"] == "Refund sent."
    [data] = uow.emitted("followup.resolved")
    assert data["close_loop_message"] == "Refund sent."


def test_api_refuses_a_message_to_the_customer_with_any_other_move(app, runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3))
    task = the_task(uow)

    response = app.test_client().post(
        f"/v1/tasks/{task.id}/status",
        json={"status": "in_progress", "close_loop_message": "Hello"},
        headers=bearer(MAYA),
    )

    assert response.status_code == 400 and "close_loop_message" in response.get_json()["errors"]


def test_resolve_form_sends_the_typed_message_and_the_task_page_shows_it(app, runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3))
    task = the_task(uow)
    service.claim_task(runtime, ANA, task.id)
    client = app.test_client()
    form = {
        "status": "resolved",
        "resolution_code": "contacted_resolved",
        "note": "",
        "close_loop_message": "Sorry!",
    }

    answer = client.post(f"/tasks/{task.id}/status", data=form, headers=bearer(ANA))

    assert answer.status_code == 303
    assert the_task(uow).status == TaskStatus.RESOLVED
    [data] = uow.emitted("followup.resolved")
    assert data["close_loop_message"] == "Sorry!"
    page = text(client.get(f"/tasks/{task.id}", headers=bearer(ANA)))
    assert "Message to the customer: Sorry!" in page


def test_resolve_form_offers_a_message_to_the_customer(app, runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3))
    task = the_task(uow)
    service.claim_task(runtime, ANA, task.id)

    page = text(app.test_client().get(f"/tasks/{task.id}", headers=bearer(ANA)))

    assert '<textarea id="close-loop-message" name="close_loop_message" rows="3" maxlength="1000"' in page
