"""SendGrid and Twilio transports at the HTTP edge: what the SDKs send, and how answers are classified."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from services.dispatch.providers import (
    OutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    mask_email,
    mask_phone,
    redact_contact_details,
)
from services.dispatch.providers.base import retry_after_seconds
from services.dispatch.providers.sendgrid_email import SendGridEmailTransport
from services.dispatch.providers.twilio_sms import TwilioSmsTransport

SENDGRID_URL = "https://api.sendgrid.com/v3/mail/send"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
SURVEY_LINK = "https://surveys.example.test/r/tok123?score=9"


def an_email(**overrides: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "to_email": "ada@example.org",
        "to_name": "Ada Lovelace",
        "subject": "How likely are you to recommend us?",
        "html": f'<p>Tell us: <a href="{SURVEY_LINK}">9</a></p>',
        "text": f"Tell us: {SURVEY_LINK}",
        "reference": "dlv_01HZX",
    }
    fields.update(overrides)
    return OutgoingEmail(**fields)  # type: ignore[arg-type]


def an_sms(**overrides: object) -> OutgoingSms:
    fields: dict[str, object] = {
        "to": "+447700900123",
        "body": "How likely are you to recommend us? Reply 0-10",
        "reference": "dlv_02ABC",
        "status_callback_url": "https://closeloop.example.test/webhooks/twilio/status?reference=dlv_02ABC",
    }
    fields.update(overrides)
    return OutgoingSms(**fields)  # type: ignore[arg-type]


@pytest.fixture
def sendgrid() -> SendGridEmailTransport:
    return SendGridEmailTransport(api_key="SG.test-key", from_email="surveys@acme.test", from_name="Acme")


@pytest.fixture
def twilio() -> TwilioSmsTransport:
    return TwilioSmsTransport(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006")


def sent_json(call: responses.Call) -> dict:
    return json.loads(call.request.body)


def sent_form(call: responses.Call) -> dict[str, list[str]]:
    body = call.request.body
    return parse_qs(body if isinstance(body, str) else body.decode())


def twilio_error(status: int, code: int, message: str = "error") -> dict:
    return {"code": code, "message": message, "more_info": "", "status": status}


# --- SendGrid ---------------------------------------------------------------------------------


@responses.activate
def test_sendgrid_send_posts_recipient_subject_and_both_bodies_with_the_api_key(sendgrid) -> None:
    responses.post(SENDGRID_URL, status=202, headers={"X-Message-Id": "W4ZXVa6dQHaL3b0lX6NMcg"})

    receipt = sendgrid.send_email(an_email())

    assert receipt == SendReceipt(provider="sendgrid", provider_message_id="W4ZXVa6dQHaL3b0lX6NMcg")
    (call,) = responses.calls
    assert call.request.headers["Authorization"] == "Bearer SG.test-key"
    body = sent_json(call)
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.org", "name": "Ada Lovelace"}]
    assert body["from"] == {"email": "surveys@acme.test", "name": "Acme"}
    assert body["subject"] == "How likely are you to recommend us?"
    contents = {content["type"]: content["value"] for content in body["content"]}
    assert SURVEY_LINK in contents["text/plain"]
    assert f'href="{SURVEY_LINK}"' in contents["text/html"]


@responses.activate
def test_sendgrid_custom_args_and_category_carry_no_personal_data(sendgrid) -> None:
    responses.post(SENDGRID_URL, status=202, headers={"X-Message-Id": "m1"})

    sendgrid.send_email(an_email())

    body = sent_json(responses.calls[0])
    assert body["custom_args"] == {"delivery_id": "dlv_01HZX"}
    assert body["categories"] == ["closeloop-invitation"]
    stored_forever = json.dumps([body["custom_args"], body["categories"]])
    assert "ada" not in stored_forever.lower() and "@" not in stored_forever


@responses.activate
def test_sendgrid_email_category_overrides_the_default(sendgrid) -> None:
    responses.post(SENDGRID_URL, status=202, headers={"X-Message-Id": "m1"})

    sendgrid.send_email(an_email(category="closeloop-reminder"))

    assert sent_json(responses.calls[0])["categories"] == ["closeloop-reminder"]


@responses.activate
def test_sendgrid_unsubscribe_url_becomes_rfc8058_one_click_headers(sendgrid) -> None:
    responses.post(SENDGRID_URL, status=202, headers={"X-Message-Id": "m1"})

    sendgrid.send_email(an_email(unsubscribe_url="https://closeloop.example.test/u/tok456"))

    assert sent_json(responses.calls[0])["headers"] == {
        "List-Unsubscribe": "<https://closeloop.example.test/u/tok456>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@responses.activate
def test_sendgrid_without_unsubscribe_url_sends_no_list_unsubscribe_headers(sendgrid) -> None:
    responses.post(SENDGRID_URL, status=202, headers={"X-Message-Id": "m1"})

    sendgrid.send_email(an_email(to_name=None))

    body = sent_json(responses.calls[0])
    assert "headers" not in body
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.org"}]


@responses.activate
def test_sendgrid_api_base_url_redirects_the_call() -> None:
    responses.post("http://127.0.0.1:8025/v3/mail/send", status=202, headers={"X-Message-Id": "m1"})
    transport = SendGridEmailTransport("key", "surveys@acme.test", api_base_url="http://127.0.0.1:8025/")

    assert transport.send_email(an_email()).provider_message_id == "m1"


@responses.activate
def test_sendgrid_429_is_transient_with_the_retry_after_hint(sendgrid) -> None:
    responses.post(
        SENDGRID_URL,
        status=429,
        json={"errors": [{"field": None, "message": "too many requests"}]},
        headers={"Retry-After": "30"},
    )

    with pytest.raises(TransientDeliveryError) as caught:
        sendgrid.send_email(an_email())

    assert caught.value.code == "429"
    assert caught.value.retry_after == 30
    assert "too many requests" in caught.value.detail
    assert len(responses.calls) == 1


@responses.activate
def test_sendgrid_429_without_retry_after_waits_for_the_rate_limit_reset(sendgrid) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 60
    responses.post(SENDGRID_URL, status=429, headers={"X-RateLimit-Reset": str(reset)})

    with pytest.raises(TransientDeliveryError) as caught:
        sendgrid.send_email(an_email())

    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 61


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503])
def test_sendgrid_server_error_leaves_the_outcome_unknown_after_one_call(sendgrid, status: int) -> None:
    # The request arrived: SendGrid may have queued the mail before failing to answer.
    responses.post(SENDGRID_URL, status=status)

    with pytest.raises(OutcomeUnknownError) as caught:
        sendgrid.send_email(an_email())

    assert caught.value.code == str(status)
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_sendgrid_client_error_is_permanent(sendgrid, status: int) -> None:
    responses.post(SENDGRID_URL, status=status, json={"errors": [{"field": "from", "message": "nope"}]})

    with pytest.raises(PermanentDeliveryError) as caught:
        sendgrid.send_email(an_email())

    assert caught.value.code == str(status)
    assert caught.value.opted_out is False
    assert "from: nope" in caught.value.detail


@responses.activate
def test_sendgrid_error_detail_masks_an_echoed_address(sendgrid) -> None:
    message = "ada@example.org does not contain a valid address"
    responses.post(
        SENDGRID_URL, status=400, json={"errors": [{"field": "personalizations", "message": message}]}
    )

    with pytest.raises(PermanentDeliveryError) as caught:
        sendgrid.send_email(an_email())

    assert "ada@example.org" not in caught.value.detail
    assert "a***@example.org" in caught.value.detail


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: the request never left."""
    return requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "[Errno 111] Connection refused"))
    )


@responses.activate
def test_sendgrid_refusing_the_connection_is_transient(sendgrid) -> None:
    responses.post(SENDGRID_URL, body=refused())

    with pytest.raises(TransientDeliveryError):
        sendgrid.send_email(an_email())


@responses.activate
@pytest.mark.parametrize(
    "error", [requests.ReadTimeout("read timed out"), requests.ConnectionError("connection reset by peer")]
)
def test_sendgrid_timing_out_or_resetting_after_sending_leaves_the_outcome_unknown(sendgrid, error) -> None:
    responses.post(SENDGRID_URL, body=error)

    with pytest.raises(OutcomeUnknownError):
        sendgrid.send_email(an_email())


def test_sendgrid_body_containing_an_api_key_is_refused_before_any_call(sendgrid) -> None:
    with responses.RequestsMock() as mock:
        with pytest.raises(PermanentDeliveryError):
            sendgrid.send_email(an_email(text="SG.abcdefghijk.lmnopqrstuv"))
        assert not mock.calls


def test_sendgrid_session_takes_the_proxy_from_the_environment_once_and_never_a_netrc_login(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    (tmp_path / ".netrc").write_text("machine api.sendgrid.com login someone password elsewhere\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    session = SendGridEmailTransport(api_key="SG.test", from_email="surveys@example.com").session

    assert session.proxies["https"] == "http://proxy.example.test:3128"
    # Read once: the calls do not look at the environment (nor ~/.netrc, whose login would replace the key).
    assert session.trust_env is False
    monkeypatch.delenv("HTTPS_PROXY")
    assert session.proxies["https"] == "http://proxy.example.test:3128"


def test_sendgrid_repr_hides_the_api_key(sendgrid) -> None:
    assert "SG.test-key" not in repr(sendgrid)


# --- Twilio -----------------------------------------------------------------------------------


def twilio_message(sid: str = "SM" + "a" * 32) -> dict:
    return {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "to": "+447700900123"}


@responses.activate
def test_twilio_send_posts_to_body_from_and_status_callback(twilio) -> None:
    responses.post(TWILIO_URL, status=201, json=twilio_message("SM" + "1" * 32))

    receipt = twilio.send_sms(an_sms())

    assert receipt == SendReceipt(provider="twilio", provider_message_id="SM" + "1" * 32)
    (call,) = responses.calls
    assert sent_form(call) == {
        "To": ["+447700900123"],
        "Body": ["How likely are you to recommend us? Reply 0-10"],
        "From": ["+15005550006"],
        "StatusCallback": ["https://closeloop.example.test/webhooks/twilio/status?reference=dlv_02ABC"],
    }


@responses.activate
def test_twilio_authenticates_with_account_sid_and_auth_token(twilio) -> None:
    responses.post(TWILIO_URL, status=201, json=twilio_message())

    twilio.send_sms(an_sms())

    request = responses.calls[0].request
    expected = requests.Request("POST", TWILIO_URL, auth=(ACCOUNT_SID, AUTH_TOKEN)).prepare()
    assert request.headers["Authorization"] == expected.headers["Authorization"]


@responses.activate
def test_twilio_messaging_service_sends_without_from_number() -> None:
    responses.post(TWILIO_URL, status=201, json=twilio_message())
    transport = TwilioSmsTransport(ACCOUNT_SID, AUTH_TOKEN, messaging_service_sid="MG" + "2" * 32)

    transport.send_sms(an_sms(status_callback_url=None))

    form = sent_form(responses.calls[0])
    assert form["MessagingServiceSid"] == ["MG" + "2" * 32]
    assert "From" not in form
    assert "StatusCallback" not in form


def test_twilio_transport_needs_a_sender() -> None:
    with pytest.raises(ValueError, match="from_number or a messaging_service_sid"):
        TwilioSmsTransport(ACCOUNT_SID, AUTH_TOKEN)


@responses.activate
def test_twilio_api_base_url_sends_to_that_host_whatever_the_region_setting(monkeypatch) -> None:
    # TWILIO_REGION would make the SDK rewrite the host name as if it were *.twilio.com.
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    simulator_url = f"http://127.0.0.1:8025/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    responses.post(simulator_url, status=201, json=twilio_message())
    transport = TwilioSmsTransport(
        ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", api_base_url="http://127.0.0.1:8025/"
    )

    transport.send_sms(an_sms())

    assert responses.calls[0].request.url == simulator_url


@responses.activate
def test_twilio_recipient_who_replied_stop_is_a_permanent_opt_out(twilio) -> None:
    responses.post(
        TWILIO_URL, status=400, json=twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    )

    with pytest.raises(PermanentDeliveryError) as caught:
        twilio.send_sms(an_sms())

    assert caught.value.opted_out is True
    assert caught.value.code == "21610"


@responses.activate
@pytest.mark.parametrize(("status", "code"), [(429, 20429), (429, None), (400, 20429)])
def test_twilio_rate_limit_is_transient(twilio, status: int, code: int | None) -> None:
    body = twilio_error(status, code) if code else {"message": "busy", "status": status}
    responses.post(TWILIO_URL, status=status, json=body)

    with pytest.raises(TransientDeliveryError):
        twilio.send_sms(an_sms())

    assert len(responses.calls) == 1


@responses.activate
def test_twilio_rate_limit_carries_its_retry_after(twilio) -> None:
    responses.post(TWILIO_URL, status=429, json=twilio_error(429, 20429), headers={"Retry-After": "42"})

    with pytest.raises(TransientDeliveryError) as caught:
        twilio.send_sms(an_sms())

    assert caught.value.retry_after == 42


@responses.activate
@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, None)])
def test_twilio_server_error_leaves_the_outcome_unknown(twilio, status: int, code: int | None) -> None:
    body = twilio_error(status, code) if code else {"message": "busy", "status": status}
    responses.post(TWILIO_URL, status=status, json=body)

    with pytest.raises(OutcomeUnknownError):
        twilio.send_sms(an_sms())

    assert len(responses.calls) == 1


@responses.activate
def test_twilio_invalid_number_is_permanent_and_the_detail_masks_it(twilio) -> None:
    message = "The 'To' number +447700900123 is not a valid phone number."
    responses.post(TWILIO_URL, status=400, json=twilio_error(400, 21211, message))

    with pytest.raises(PermanentDeliveryError) as caught:
        twilio.send_sms(an_sms())

    assert caught.value.opted_out is False
    assert caught.value.code == "21211"
    assert "+447700900123" not in caught.value.detail


@responses.activate
def test_twilio_problem_json_errors_are_classified_too(twilio) -> None:
    # Newer Twilio APIs answer RFC 9457 problem documents; the SDK raises a different exception.
    responses.post(
        TWILIO_URL,
        status=429,
        json={
            "type": "https://www.twilio.com/docs/errors/20429",
            "title": "Too Many Requests",
            "status": 429,
            "code": 20429,
        },
    )

    with pytest.raises(TransientDeliveryError) as caught:
        twilio.send_sms(an_sms())

    assert caught.value.code == "20429"


@responses.activate
def test_twilio_refusing_the_connection_is_transient(twilio) -> None:
    responses.post(TWILIO_URL, body=refused())

    with pytest.raises(TransientDeliveryError):
        twilio.send_sms(an_sms())


@responses.activate
def test_twilio_resetting_the_connection_after_the_request_leaves_the_outcome_unknown(twilio) -> None:
    responses.post(TWILIO_URL, body=requests.ConnectionError("connection reset"))

    with pytest.raises(OutcomeUnknownError):
        twilio.send_sms(an_sms())


@responses.activate
def test_twilio_look_up_finds_the_message_with_the_same_text_sent_since_the_attempt(twilio) -> None:
    attempt = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    BODY = an_sms().body  # noqa: N806
    older = {"sid": "SM" + "1" * 32, "body": BODY, "date_created": "Mon, 02 Mar 2026 08:00:00 +0000"}
    other = {"sid": "SM" + "2" * 32, "body": "Else", "date_created": "Mon, 02 Mar 2026 09:00:05 +0000"}
    ours = {"sid": "SM" + "3" * 32, "body": BODY, "date_created": "Mon, 02 Mar 2026 09:00:01 +0000"}
    responses.get(
        TWILIO_URL,
        json={"messages": [other, ours, older], "next_page_uri": None, "page": 0, "page_size": 50},
    )

    found = twilio.find_sent(an_sms(), attempt)

    assert found is not None and found.provider_message_id == ours["sid"]
    assert "To=%2B447700900123" in responses.calls[0].request.url


@responses.activate
def test_twilio_look_up_finds_nothing_when_no_message_has_that_text(twilio) -> None:
    responses.get(TWILIO_URL, json={"messages": [], "next_page_uri": None, "page": 0, "page_size": 50})

    assert twilio.find_sent(an_sms(), datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) is None


def test_twilio_repr_hides_the_auth_token(twilio) -> None:
    assert AUTH_TOKEN not in repr(twilio)


# --- Helpers ----------------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_retry_after_reads_seconds_an_http_date_or_the_rate_limit_reset() -> None:
    assert retry_after_seconds({"retry-after": "12"}, NOW) == 12
    assert (
        retry_after_seconds({"Retry-After": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}, NOW)
        == 90
    )
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(NOW.timestamp()) + 40)}, NOW) == 40


def test_retry_after_is_never_negative_and_none_without_a_usable_hint() -> None:
    assert retry_after_seconds({"Retry-After": "-5"}, NOW) == 0
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(NOW.timestamp()) - 40)}, NOW) == 0
    assert retry_after_seconds({"Retry-After": "soon"}, NOW) is None
    assert retry_after_seconds({}, NOW) is None
    assert retry_after_seconds(None, NOW) is None


def test_masks_keep_too_little_to_identify_a_recipient() -> None:
    assert mask_email("ada.lovelace@example.org") == "a***@example.org"
    assert mask_phone("+447700900123") == "+44***23"
    assert (
        redact_contact_details("to ada@example.org or +1 555 010 9999") == "to a***@example.org or +1 ***99"
    )
