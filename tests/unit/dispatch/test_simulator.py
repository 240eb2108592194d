"""The provider simulator on a real local port: our transports round-trip through it unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, request

from closeloop.provider_simulator import SimulatorServer, create_simulator_app
from services.dispatch.providers import (
    OutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    OutgoingWhatsApp,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from services.dispatch.providers.sendgrid_email import SendGridEmailTransport
from services.dispatch.providers.twilio_sms import TwilioSmsTransport
from services.dispatch.providers.webhooks import (
    TWILIO_SIGNATURE_HEADER,
    ProviderStatus,
    parse_twilio_status,
    verify_twilio_request,
)

AUTH_TOKEN = "sim-token"
ACCOUNT_SID = "AC" + "5" * 32
SURVEY_LINK = "http://127.0.0.1:8000/r/tok?score=10"


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(create_simulator_app(twilio_auth_token=AUTH_TOKEN)) as server:
        yield server


def recorded(simulator: SimulatorServer, **filters: str) -> list[dict]:
    response = requests.get(f"{simulator.base_url}/_simulator/messages", params=filters, timeout=5)
    response.raise_for_status()
    return response.json()


def an_email() -> OutgoingEmail:
    return OutgoingEmail(
        to_email="ada@example.org",
        to_name="Ada",
        subject="Quick question",
        html=f'<a href="{SURVEY_LINK}">10</a>',
        text=SURVEY_LINK,
        reference="dlv_1",
        unsubscribe_url="http://127.0.0.1:8000/u/tok",
    )


def an_sms(status_callback_url: str | None = None) -> OutgoingSms:
    return OutgoingSms(
        to="+447700900123", body="Reply 0-10", reference="dlv_2", status_callback_url=status_callback_url
    )


def twilio_transport(simulator: SimulatorServer, auth_token: str = AUTH_TOKEN) -> TwilioSmsTransport:
    return TwilioSmsTransport(
        ACCOUNT_SID, auth_token, from_number="+15005550006", api_base_url=simulator.base_url
    )


def test_sendgrid_transport_email_is_recorded_by_the_simulator(simulator) -> None:
    transport = SendGridEmailTransport("SG.sim", "surveys@acme.test", api_base_url=simulator.base_url)

    receipt = transport.send_email(an_email())

    (message,) = recorded(simulator)
    assert message["id"] == receipt.provider_message_id
    assert message["provider"] == "sendgrid"
    assert message["to"] == "ada@example.org"
    assert message["subject"] == "Quick question"
    assert message["text"] == SURVEY_LINK
    assert SURVEY_LINK in message["html"]
    assert message["reference"] == "dlv_1"
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["payload"]["custom_args"] == {"delivery_id": "dlv_1"}


def test_twilio_transport_sms_is_recorded_by_the_simulator(simulator) -> None:
    receipt = twilio_transport(simulator).send_sms(an_sms())

    (message,) = recorded(simulator)
    assert receipt.provider_message_id is not None and receipt.provider_message_id.startswith("SM")
    assert message["id"] == receipt.provider_message_id
    assert message["provider"] == "twilio"
    assert message["to"] == "+447700900123"
    assert message["from"] == "+15005550006"
    assert message["body"] == "Reply 0-10"
    assert message["payload"]["Body"] == "Reply 0-10"


def test_simulator_refuses_a_wrong_twilio_auth_token_as_twilio_would(simulator) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        twilio_transport(simulator, auth_token="wrong").send_sms(an_sms())

    assert caught.value.code == "20003"
    assert recorded(simulator) == []


def test_simulator_refuses_mail_send_without_bearer_key(simulator) -> None:
    response = requests.post(f"{simulator.base_url}/v3/mail/send", json={}, timeout=5)

    assert response.status_code == 401


def test_simulator_refuses_mail_without_subject(simulator) -> None:
    payload = {
        "personalizations": [{"to": [{"email": "ada@example.org"}]}],
        "from": {"email": "surveys@acme.test"},
        "content": [{"type": "text/plain", "value": "hi"}],
    }

    response = requests.post(
        f"{simulator.base_url}/v3/mail/send", json=payload, headers={"Authorization": "Bearer k"}, timeout=5
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "subject"


def test_simulator_messages_filter_by_provider_and_clear(simulator) -> None:
    SendGridEmailTransport("SG.sim", "surveys@acme.test", api_base_url=simulator.base_url).send_email(
        an_email()
    )
    twilio_transport(simulator).send_sms(an_sms())

    assert [message["provider"] for message in recorded(simulator, provider="twilio")] == ["twilio"]
    assert [message["provider"] for message in recorded(simulator)] == ["sendgrid", "twilio"]

    assert requests.delete(f"{simulator.base_url}/_simulator/messages", timeout=5).status_code == 204
    assert recorded(simulator) == []


def test_simulator_messages_after_skip_the_ones_a_poller_has_read(simulator) -> None:
    sendgrid = SendGridEmailTransport("SG.sim", "surveys@acme.test", api_base_url=simulator.base_url)
    sendgrid.send_email(an_email())
    twilio_transport(simulator).send_sms(an_sms())
    sendgrid.send_email(an_email())

    assert [message["provider"] for message in recorded(simulator, after="1")] == ["twilio", "sendgrid"]
    assert [message["provider"] for message in recorded(simulator, after="1", provider="sendgrid")] == [
        "sendgrid"
    ]
    assert recorded(simulator, after="3") == []


@pytest.fixture
def status_receiver() -> Iterator[tuple[str, list[dict], threading.Event]]:
    """A stand-in for our /webhooks/twilio/status endpoint that keeps what it was sent."""
    received: list[dict] = []
    arrived = threading.Event()
    app = Flask("status_receiver")

    @app.post("/webhooks/twilio/status")
    def status() -> tuple[str, int]:
        received.append({"url": request.url, "form": request.form.copy(), "headers": dict(request.headers)})
        arrived.set()
        return "", 204

    with SimulatorServer(app) as server:
        yield server.base_url, received, arrived


def test_status_callback_is_signed_with_the_auth_token_and_says_delivered(status_receiver) -> None:
    receiver_url, received, arrived = status_receiver
    callback_url = f"{receiver_url}/webhooks/twilio/status?reference=dlv_2"
    app = create_simulator_app(twilio_auth_token=AUTH_TOKEN, status_callback_delay=0)

    with SimulatorServer(app) as simulator:
        receipt = twilio_transport(simulator).send_sms(an_sms(status_callback_url=callback_url))
        assert arrived.wait(timeout=5)
        deadline = time.monotonic() + 5
        while not recorded(simulator)[0]["status_callbacks"] and time.monotonic() < deadline:
            time.sleep(0.01)
        (message,) = recorded(simulator)

    (callback,) = received
    assert callback["url"] == callback_url
    signature = callback["headers"][TWILIO_SIGNATURE_HEADER]
    assert verify_twilio_request(AUTH_TOKEN, callback_url, callback["form"], signature)
    reference = parse_qs(urlsplit(callback["url"]).query)["reference"][0]
    event = parse_twilio_status(callback["form"], reference=reference)
    assert event.status == ProviderStatus.DELIVERED
    assert event.provider_message_id == receipt.provider_message_id
    assert event.reference == "dlv_2"
    assert message["status_callbacks"] == [
        {"status": "delivered", "url": callback_url, "response_status": 204}
    ]


def test_no_status_callback_unless_enabled(simulator, status_receiver) -> None:
    receiver_url, received, arrived = status_receiver

    twilio_transport(simulator).send_sms(an_sms(status_callback_url=f"{receiver_url}/webhooks/twilio/status"))

    assert not arrived.wait(timeout=0.2)
    assert received == []


def test_simulator_runs_as_a_module_and_prints_its_address() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "closeloop.provider_simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
            assert base_url.startswith("http://127.0.0.1:")
            assert requests.get(f"{base_url}/_simulator/messages", timeout=5).json() == []
        finally:
            process.terminate()
            process.wait(timeout=5)


# --- Faults, chosen per test -----------------------------------------------------------------------


def add_fault(simulator: SimulatorServer, **fault: object) -> None:
    requests.post(f"{simulator.base_url}/_simulator/faults", json=fault, timeout=5).raise_for_status()


def sendgrid_transport(simulator: SimulatorServer) -> SendGridEmailTransport:
    return SendGridEmailTransport("SG.sim", "surveys@acme.test", api_base_url=simulator.base_url)


def test_a_429_carries_retry_after_and_nothing_was_taken(simulator) -> None:
    add_fault(simulator, kind="429", provider="twilio", retry_after=7)
    add_fault(simulator, kind="429", provider="sendgrid", retry_after=3)

    with pytest.raises(TransientDeliveryError) as sms_refused:
        twilio_transport(simulator).send_sms(an_sms())
    with pytest.raises(TransientDeliveryError) as email_refused:
        sendgrid_transport(simulator).send_email(an_email())

    assert (sms_refused.value.retry_after, email_refused.value.retry_after) == (7, 3)
    assert recorded(simulator) == []
    twilio_transport(simulator).send_sms(an_sms())  # the fault is used up
    assert len(recorded(simulator)) == 1


@pytest.mark.parametrize("kind", ["500", "reset"])
def test_a_500_or_a_reset_after_taking_the_message_leaves_the_outcome_unknown(simulator, kind) -> None:
    add_fault(simulator, kind=kind, count=2)

    with pytest.raises(OutcomeUnknownError):
        twilio_transport(simulator).send_sms(an_sms())
    with pytest.raises(OutcomeUnknownError):
        sendgrid_transport(simulator).send_email(an_email())

    assert [message["provider"] for message in recorded(simulator)] == ["twilio", "sendgrid"]


def test_an_answer_slower_than_the_clients_timeout_leaves_the_outcome_unknown_and_twilio_can_be_asked(
    simulator,
) -> None:
    add_fault(simulator, kind="slow", provider="twilio", delay=1.0)
    transport = TwilioSmsTransport(
        ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", api_base_url=simulator.base_url, timeout=0.3
    )
    attempt = datetime.now(UTC)

    with pytest.raises(OutcomeUnknownError):
        transport.send_sms(an_sms())

    (message,) = recorded(simulator)
    found = transport.find_sent(an_sms(), attempt)
    assert found is not None and found.provider_message_id == message["id"]
    other = OutgoingSms(to="+447700900123", body="Something else", reference="dlv_3")
    assert transport.find_sent(other, attempt) is None


def test_a_refused_connection_is_transient(simulator) -> None:
    nobody = "http://127.0.0.1:9"  # the discard port: nothing listens
    closed = SendGridEmailTransport("SG.sim", "surveys@acme.test", api_base_url=nobody, timeout=1)
    with pytest.raises(TransientDeliveryError):
        closed.send_email(an_email())


def test_faults_can_be_forgotten_and_unknown_ones_are_refused(simulator) -> None:
    add_fault(simulator, kind="500")
    requests.delete(f"{simulator.base_url}/_simulator/faults", timeout=5).raise_for_status()
    twilio_transport(simulator).send_sms(an_sms())
    assert len(recorded(simulator)) == 1
    answer = requests.post(f"{simulator.base_url}/_simulator/faults", json={"kind": "flood"}, timeout=5)
    assert answer.status_code == 400


def test_a_whatsapp_template_goes_through_the_twilio_sdk_with_its_content_sid_and_variables(
    simulator,
) -> None:
    transport = TwilioSmsTransport(
        ACCOUNT_SID,
        AUTH_TOKEN,
        from_number="+15005550006",
        api_base_url=simulator.base_url,
        whatsapp_from="+14155238886",
        whatsapp_content_sid="HX" + "a" * 32,
    )
    message = OutgoingWhatsApp(
        to="+447700900123",
        variables={"1": "Hello Ada,", "2": "How likely are you to recommend us?", "3": SURVEY_LINK},
        preview="",
        reference="dlv_4",
    )
    since = datetime.now(UTC)

    receipt = transport.send_whatsapp(message)

    (recorded_message,) = recorded(simulator)
    assert recorded_message["id"] == receipt.provider_message_id
    assert (recorded_message["to"], recorded_message["from"]) == (
        "whatsapp:+447700900123",
        "whatsapp:+14155238886",
    )
    assert recorded_message["content_sid"] == "HX" + "a" * 32
    assert json.loads(recorded_message["payload"]["ContentVariables"])["3"] == SURVEY_LINK
    found = transport.find_sent(message, since)
    assert found is not None and found.provider_message_id == receipt.provider_message_id


def test_whatsapp_without_its_settings_is_refused_before_any_call(simulator) -> None:
    with pytest.raises(PermanentDeliveryError):
        twilio_transport(simulator).send_whatsapp(
            OutgoingWhatsApp(to="+447700900123", variables={}, preview="", reference="dlv_5")
        )
    assert recorded(simulator) == []
