"""The loop closed outward, in the embedded system: a promoter's referral link is sent, clicked, and used by a
new customer; the CRM hears about it through a signed webhook it can verify; a resolved detractor's task
sends the customer a message and asks them again later."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from flask import Flask, request
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server

from closeloop.system import build_system
from services.dispatch.sandbox import latest_messages
from services.survey import service as survey_service
from shared.clock import utcnow
from tests.conftest import crm_event, make_settings, signed_request, staff_client, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver():
    """A CRM's webhook receiver on this machine: it keeps every request as it came."""
    received: list[tuple[bytes, dict[str, str]]] = []
    app = Flask("crm")

    @app.post("/closeloop")
    def hook():
        received.append((request.get_data(), dict(request.headers)))
        return "", 204

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/closeloop", received
    server.shutdown()


@pytest.fixture
def system(sqlite_url):
    settings = make_settings(
        sqlite_url,
        followup_referral_url="https://shop.example.com/refer",
        followup_request_delay_minutes=0,
        followup_follow_up_survey_days=30,
        webhooks_allow_private=True,  # the receiver is on 127.0.0.1
    )
    running = build_system(settings)
    running.start()
    yield running
    running.stop()


def post_event(system, event):
    body, headers = signed_request(event)
    answer = system.apps["survey"].test_client().post("/v1/events", data=body, headers=headers)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()


def sandbox_text(system, to):
    messages = latest_messages(system.runtimes["dispatch"].database)
    return [message.text for message in messages if message.to == to]


def answer_by_email(system, to, score, comment):
    invitation = wait_for(lambda: [text for text in sandbox_text(system, to) if "/s/" in text])[0]
    path = re.search(r"http://testserver(/s/[^?\s]+)", invitation).group(1)
    answered = system.apps["survey"].test_client().post(path, data={"score": str(score), "comment": comment})
    assert answered.status_code == 200


def test_a_promoters_referral_link_is_sent_clicked_and_converted_and_the_crm_is_told(system, receiver):
    url, received = receiver
    followup = staff_client(system.apps["followup"], system.runtimes["followup"].identity)
    endpoint = followup.post(
        "/v1/webhook-endpoints", json={"url": url, "event_types": ["referral.converted"]}
    ).get_json()

    post_event(system, crm_event("order-1", external_id="crm-pat", email="pat@example.com", name="Pat Lee"))
    answer_by_email(system, "pat@example.com", 10, "Lovely shop, fast delivery")

    referral_message = wait_for(
        lambda: [text for text in sandbox_text(system, "pat@example.com") if "/r/" in text],
        what="the referral request",
    )[0]
    link = re.search(r"http://testserver(/r/[A-Za-z0-9_-]+)", referral_message).group(1)
    code = link.rsplit("/", 1)[1]
    clicked = system.apps["followup"].test_client().get(link)  # a stranger: the promoter's friend
    assert clicked.status_code == 302
    assert clicked.headers["Location"] == f"https://shop.example.com/refer?ref={code}"

    friend = crm_event("order-2", external_id="crm-sam", email="sam@example.com", name="Sam Roe")
    friend["properties"]["referral_code"] = code
    post_event(system, friend)

    [referral] = wait_for(
        lambda: [r for r in followup.get("/v1/referral-requests").get_json() if r["converted_at"]],
        what="the referral converted",
    )
    assert (referral["code"], referral["clicks"], referral["status"]) == (code, 1, "converted")
    body, headers = wait_for(lambda: received, what="the signed referral.converted webhook")[0]
    delivered = Webhook(endpoint["secret"]).verify(body, headers)  # a standard verifier accepts it as is
    assert delivered["type"] == "referral.converted"
    data = json.loads(body)["data"]
    assert data["referral_request"]["code"] == code and data["conversion"]["referral_code"] == code


def test_a_resolved_detractor_gets_the_closing_message_and_a_follow_up_survey(system):
    post_event(system, crm_event("order-3", external_id="crm-kim", email="kim@example.com", name="Kim Ito"))
    answer_by_email(system, "kim@example.com", 2, "The parcel arrived broken and nobody answered")

    followup = staff_client(system.apps["followup"], system.runtimes["followup"].identity)
    [task] = wait_for(lambda: followup.get("/v1/tasks").get_json(), what="the detractor's task")
    assert followup.post(f"/v1/tasks/{task['id']}/claim").status_code == 200
    resolved = followup.post(
        f"/v1/tasks/{task['id']}/status",
        json={
            "status": "resolved",
            "resolution_code": "contacted_resolved",
            "note": "Sent a new parcel",
            "close_loop_message": "Thank you for telling us: a new parcel is on its way.",
        },
    )
    assert resolved.status_code == 200, resolved.get_data(as_text=True)

    wait_for(
        lambda: any("new parcel is on its way" in text for text in sandbox_text(system, "kim@example.com")),
        what="the close-the-loop message",
    )
    survey = system.runtimes["survey"]
    # Thirty days later the survey clock asks again, past the quarantine.
    wait_for(lambda: survey_service.invite_due_follow_ups(survey, now=utcnow() + timedelta(days=31)))
    wait_for(
        lambda: len([text for text in sandbox_text(system, "kim@example.com") if "/s/" in text]) == 2,
        what="the follow-up survey",
    )
