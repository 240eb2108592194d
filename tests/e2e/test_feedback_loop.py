"""The whole loop with real dramatiq workers on Redis, the four services on PostgreSQL, and SendGrid's and
Twilio's HTTP mocked with ``responses`` (the workers are threads of this process, so the mocks reach them).
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
import redis
import responses
from twilio.request_validator import RequestValidator

from closeloop.system import build_system
from tests.conftest import REDIS_TEST_URL, crm_event, make_settings, staff_client, wait_for
from tests.survey_intake import post_and_wait_for_decision

pytestmark = pytest.mark.e2e

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-e2e-token"
SENDGRID_URL = "https://api.sendgrid.com/v3/mail/send"
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@pytest.fixture
def providers():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(SENDGRID_URL, status=202, headers={"X-Message-Id": "sg-message-1"})
        mock.post(
            TWILIO_URL,
            status=201,
            json={"sid": "SM" + "1" * 32, "account_sid": ACCOUNT_SID, "status": "queued"},
        )
        yield mock


@pytest.fixture
def system(postgres_url, providers):
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    settings = make_settings(
        postgres_url,
        broker_url=REDIS_TEST_URL,
        transport="providers",
        sendgrid_api_key="SG.e2e-key",
        sendgrid_from_email="surveys@closeloop.test",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number="+15005550006",
    )
    running = build_system(settings)
    running.start(worker_threads=2)
    yield running
    running.stop()
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()


def calls_to(mock, url):
    return [call for call in mock.calls if call.request.url.split("?")[0] == url]


def post_event(system, event):
    """Post a signed event and wait for the survey clock's decision about it."""
    return post_and_wait_for_decision(system, event)


def staff(system, service):
    return staff_client(system.apps[service], system.runtimes[service].identity)


def open_tasks(system):
    return staff(system, "followup").get("/v1/tasks").get_json()


def test_email_detractor_becomes_a_follow_up_task_with_sentiment(system, providers):
    outcome = post_event(system, crm_event("order-77", email="jane@example.com", name="Jane Doe"))
    assert outcome["decision"] == "invited"

    [call] = wait_for(lambda: calls_to(providers, SENDGRID_URL))
    sent = json.loads(call.request.body)
    assert call.request.headers["Authorization"] == "Bearer SG.e2e-key"
    assert sent["personalizations"][0]["to"] == [{"email": "jane@example.com", "name": "Jane Doe"}]
    assert sent["subject"] == "How did we do?"
    # Only opaque ids go to SendGrid's custom_args, which it keeps forever.
    assert list(sent["custom_args"]) == ["delivery_id"]
    html = next(part["value"] for part in sent["content"] if part["type"] == "text/html")
    # The score buttons (Outlook's table repeats them in a conditional comment).
    links = re.findall(r'class="score" href="(http://testserver/s/[^"]+\?score=(\d+))"', html)
    assert [int(score) for _, score in links] == list(range(11))

    survey = system.apps["survey"].test_client()
    path = urllib.parse.urlsplit(links[3][0])
    page = survey.get(f"{path.path}?{path.query}")
    assert page.status_code == 200 and 'value="3" checked' in page.get_data(as_text=True)
    comment = "The delivery was two weeks late and the support agent was not helpful at all."
    thanks = survey.post(path.path, data={"score": "3", "comment": comment})
    assert thanks.status_code == 200

    [task] = wait_for(lambda: open_tasks(system))
    assert task["score"] == 3 and task["comment"] == comment
    assert task["customer_name"] == "Jane Doe" and task["touchpoint"] == "purchase"
    assert task["priority"] == "high"
    assert task["sentiment"]["label"] == "negative" and task["sentiment"]["language"] == "en"
    assert "delivery" in " ".join(task["sentiment"]["key_phrases"])


def test_sms_promoter_becomes_a_referral_request(system, providers):
    event = crm_event(
        "call-9",
        external_id="crm-ayse",
        email=None,
        phone="+905555550102",
        name="Ayşe Demir",
        locale="tr-TR",
        preferred_channel="sms",
    )
    event["type"] = "support_call.ended"
    invitation_id = post_event(system, event)["invitation_id"]

    [call] = wait_for(lambda: calls_to(providers, TWILIO_URL))
    form = dict(urllib.parse.parse_qsl(call.request.body))
    assert form["To"] == "+905555550102" and form["From"] == "+15005550006"
    assert "0 ile 10" in form["Body"]
    status_callback = form["StatusCallback"]
    assert status_callback.startswith("http://testserver/webhooks/twilio/status?delivery_id=")

    dispatch = staff(system, "dispatch")
    reply = {
        "MessageSid": "SM" + "2" * 32,
        "From": "+905555550102",
        "To": "+15005550006",
        "Body": "10 Harika hizmet",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/webhooks/twilio/sms", reply)
    answered = dispatch.post("/webhooks/twilio/sms", data=reply, headers={"X-Twilio-Signature": signature})
    assert answered.status_code == 200

    followup = staff(system, "followup")
    [referral] = wait_for(lambda: followup.get("/v1/referral-requests").get_json())
    assert referral["score"] == 10 and referral["customer_name"] == "Ayşe Demir"
    assert open_tasks(system) == []

    delivered = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(status_callback, delivered)
    assert (
        dispatch.post(
            status_callback.removeprefix("http://testserver"),
            data=delivered,
            headers={"X-Twilio-Signature": signature},
        ).status_code
        == 204
    )
    [delivery] = dispatch.get("/v1/deliveries", query_string={"invitation_id": invitation_id}).get_json()
    # Answered before Twilio's late "delivered": states only move forward.
    assert delivery["status"] == "answered" and delivery["channel"] == "sms"


def test_sms_reply_without_a_score_gets_one_reprompt_and_the_score_after_it_makes_the_answer(
    system, providers
):
    event = crm_event(
        "order-reprompt",
        external_id="crm-tom",
        email=None,
        phone="+15555550177",
        name="Tom Hanks",
        preferred_channel="sms",
    )
    invitation_id = post_event(system, event)["invitation_id"]
    wait_for(lambda: calls_to(providers, TWILIO_URL))
    dispatch = staff(system, "dispatch")

    def reply(sid, body):
        form = {"MessageSid": sid, "From": "+15555550177", "To": "+15005550006", "Body": body}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            "http://testserver/webhooks/twilio/sms", form
        )
        response = dispatch.post("/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200

    reply("SM" + "3" * 32, "The delivery was late and the box was damaged")
    [_, reprompt] = wait_for(lambda: calls_to(providers, TWILIO_URL)[1:] and calls_to(providers, TWILIO_URL))
    assert "0 (not at all) to 10" in dict(urllib.parse.parse_qsl(reprompt.request.body))["Body"]

    reply("SM" + "4" * 32, "I'd say 3")

    [task] = wait_for(lambda: open_tasks(system))
    assert task["score"] == 3 and task["comment"] == "The delivery was late and the box was damaged"
    kinds = [
        d["kind"]
        for d in dispatch.get("/v1/deliveries", query_string={"invitation_id": invitation_id}).get_json()
    ]
    assert sorted(kinds) == ["invitation", "reprompt"]
