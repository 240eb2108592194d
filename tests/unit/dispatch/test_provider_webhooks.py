"""Provider webhooks: real signatures, event parsing, SMS keywords and the delivery states they mean."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from services.dispatch.domain import DeliveryState
from services.dispatch.providers.webhooks import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    ProviderStatus,
    SmsReplyKind,
    classify_sms_reply,
    parse_sendgrid_events,
    parse_twilio_status,
    verify_sendgrid_event_webhook,
    verify_twilio_request,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# --- Twilio signature -------------------------------------------------------------------------

AUTH_TOKEN = "twilio-auth-token"
STATUS_URL = "https://closeloop.example.test/webhooks/twilio/status?reference=dlv_1"
STATUS_PARAMS = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": "+447700900123"}


def twilio_signature(
    url: str = STATUS_URL, params: dict | MultiDict = STATUS_PARAMS, token: str = AUTH_TOKEN
) -> str:
    return RequestValidator(token).compute_signature(url, params)


def test_twilio_request_signed_with_our_auth_token_is_verified() -> None:
    assert verify_twilio_request(AUTH_TOKEN, STATUS_URL, STATUS_PARAMS, twilio_signature())


def test_twilio_request_verifies_from_a_flask_form_multidict() -> None:
    form = MultiDict(STATUS_PARAMS)
    assert verify_twilio_request(AUTH_TOKEN, STATUS_URL, form, twilio_signature(params=form))


def test_twilio_request_with_a_tampered_field_fails() -> None:
    tampered = dict(STATUS_PARAMS, MessageStatus="failed")
    assert not verify_twilio_request(AUTH_TOKEN, STATUS_URL, tampered, twilio_signature())


def test_twilio_request_to_another_url_or_with_another_token_fails() -> None:
    signature = twilio_signature()
    other_url = STATUS_URL.replace("dlv_1", "dlv_2")
    assert not verify_twilio_request(AUTH_TOKEN, other_url, STATUS_PARAMS, signature)
    assert not verify_twilio_request("another-token", STATUS_URL, STATUS_PARAMS, signature)


@pytest.mark.parametrize("signature", [None, ""])
def test_twilio_request_without_signature_fails(signature: str | None) -> None:
    assert not verify_twilio_request(AUTH_TOKEN, STATUS_URL, STATUS_PARAMS, signature)


def test_header_names_match_the_providers() -> None:
    assert TWILIO_SIGNATURE_HEADER == "X-Twilio-Signature"
    assert SENDGRID_SIGNATURE_HEADER == "X-Twilio-Email-Event-Webhook-Signature"
    assert SENDGRID_TIMESTAMP_HEADER == "X-Twilio-Email-Event-Webhook-Timestamp"


# --- SendGrid signature -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_setting(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The key as SendGrid shows it in Mail Settings: base64 DER, without PEM armour."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_sign(private_key: ec.EllipticCurvePrivateKey, payload: bytes, timestamp: str) -> str:
    signature = private_key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


EVENTS_BODY = json.dumps(
    [{"event": "delivered", "sg_event_id": "ev1", "timestamp": 1740830400, "delivery_id": "dlv_1"}]
).encode()


def test_sendgrid_events_signed_by_our_key_just_now_are_verified(sendgrid_key) -> None:
    timestamp = str(int(NOW.timestamp()) - 30)
    signature = sendgrid_sign(sendgrid_key, EVENTS_BODY, timestamp)

    assert verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key), EVENTS_BODY, signature, timestamp, NOW
    )


def test_sendgrid_events_with_a_changed_body_fail(sendgrid_key) -> None:
    timestamp = str(int(NOW.timestamp()))
    signature = sendgrid_sign(sendgrid_key, EVENTS_BODY, timestamp)
    tampered = EVENTS_BODY.replace(b"delivered", b"bounce")

    assert not verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key), tampered, signature, timestamp, NOW
    )


def test_sendgrid_events_signed_by_another_key_fail(sendgrid_key) -> None:
    timestamp = str(int(NOW.timestamp()))
    signature = sendgrid_sign(ec.generate_private_key(ec.SECP256R1()), EVENTS_BODY, timestamp)

    assert not verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key), EVENTS_BODY, signature, timestamp, NOW
    )


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(days=30), -timedelta(minutes=6)])
def test_sendgrid_validly_signed_but_old_or_future_timestamp_fails(sendgrid_key, age: timedelta) -> None:
    timestamp = str(int((NOW - age).timestamp()))
    signature = sendgrid_sign(sendgrid_key, EVENTS_BODY, timestamp)

    assert not verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key), EVENTS_BODY, signature, timestamp, NOW
    )


def test_sendgrid_tolerance_can_be_widened(sendgrid_key) -> None:
    timestamp = str(int((NOW - timedelta(minutes=6)).timestamp()))
    signature = sendgrid_sign(sendgrid_key, EVENTS_BODY, timestamp)

    assert verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key),
        EVENTS_BODY,
        signature,
        timestamp,
        NOW,
        tolerance=timedelta(minutes=10),
    )


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        (None, "1740830400"),
        ("c2ln", None),
        ("not base64 !!", "1740830400"),
        (base64.b64encode(b"not a DER signature").decode(), "1740830400"),
        ("c2ln", "yesterday"),
    ],
)
def test_sendgrid_missing_or_malformed_signature_headers_fail(sendgrid_key, signature, timestamp) -> None:
    assert not verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key), EVENTS_BODY, signature, timestamp, NOW
    )


def test_sendgrid_body_that_is_not_utf8_fails(sendgrid_key) -> None:
    timestamp = str(int(NOW.timestamp()))
    body = b"\xff\xfe["
    signature = sendgrid_sign(sendgrid_key, body, timestamp)

    assert not verify_sendgrid_event_webhook(
        public_key_setting(sendgrid_key), body, signature, timestamp, NOW
    )


def test_sendgrid_unreadable_public_key_setting_raises() -> None:
    with pytest.raises(ValueError):
        verify_sendgrid_event_webhook("bm90IGEga2V5", EVENTS_BODY, "c2ln", str(int(NOW.timestamp())), NOW)


# --- SendGrid events --------------------------------------------------------------------------


def sendgrid_event(event: str, **fields: object) -> dict:
    return {
        "email": "ada@example.org",
        "timestamp": 1740830400,
        "event": event,
        "sg_event_id": f"ev-{event}",
        "sg_message_id": "W4ZXVa6dQHaL3b0lX6NMcg.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
        "delivery_id": "dlv_1",
        **fields,
    }


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("processed", "processed"),
        ("deferred", "deferred"),
        ("delivered", "delivered"),
        ("bounce", "bounced"),
        ("dropped", "dropped"),
        ("open", "opened"),
        ("click", "clicked"),
        ("unsubscribe", "unsubscribed"),
        ("group_unsubscribe", "unsubscribed"),
        ("spamreport", "spam_reported"),
    ],
)
def test_sendgrid_event_types_map_to_our_statuses(event: str, status: str) -> None:
    (parsed,) = parse_sendgrid_events(json.dumps([sendgrid_event(event)]).encode())

    assert parsed.status == status


def test_sendgrid_event_carries_the_fields_for_deduplication_and_lookup() -> None:
    (parsed,) = parse_sendgrid_events(json.dumps([sendgrid_event("delivered", response="250 OK")]).encode())

    assert parsed.provider == "sendgrid"
    assert parsed.provider_event_id == "ev-delivered"
    assert parsed.reference == "dlv_1"
    assert parsed.provider_message_id == "W4ZXVa6dQHaL3b0lX6NMcg"  # the X-Message-Id of the send call
    assert parsed.occurred_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parsed.reason == "250 OK"


def test_sendgrid_repeated_event_parses_to_the_same_event_id() -> None:
    body = json.dumps([sendgrid_event("delivered"), sendgrid_event("delivered")]).encode()

    first, repeat = parse_sendgrid_events(body)

    assert first == repeat


def test_sendgrid_asynchronous_bounce_without_message_id_keeps_the_reference() -> None:
    bounce = sendgrid_event("bounce", reason="550 5.1.1 <ada@example.org>: Recipient address rejected")
    del bounce["sg_message_id"]

    (parsed,) = parse_sendgrid_events(json.dumps([bounce]).encode())

    assert parsed.provider_message_id is None
    assert parsed.reference == "dlv_1"
    assert parsed.reason is not None and "ada@example.org" not in parsed.reason


def test_sendgrid_bounce_carries_its_smtp_status_or_else_its_classification_as_the_error_code() -> None:
    with_status = sendgrid_event("bounce", reason="550 5.1.1 User unknown", status="5.1.1")
    classified = sendgrid_event("bounce", reason="Mailbox full", bounce_classification="Mailbox Unavailable")
    delivered = sendgrid_event("delivered")

    body = json.dumps([with_status, classified, delivered]).encode()

    codes = [event.error_code for event in parse_sendgrid_events(body)]

    assert codes == ["5.1.1", "Mailbox Unavailable", None]


def test_sendgrid_event_reference_is_none_for_mail_we_did_not_tag() -> None:
    untagged = sendgrid_event("delivered")
    del untagged["delivery_id"]

    (parsed,) = parse_sendgrid_events(json.dumps([untagged]).encode())

    assert parsed.reference is None


def test_sendgrid_unknown_and_malformed_events_are_skipped_not_raised() -> None:
    no_timestamp = sendgrid_event("delivered")
    del no_timestamp["timestamp"]
    body = json.dumps(
        [
            sendgrid_event("group_resubscribe"),
            "not an object",
            {"timestamp": 1740830400},
            no_timestamp,
            sendgrid_event("delivered", timestamp="noon"),
            sendgrid_event("bounce"),
        ]
    ).encode()

    parsed = parse_sendgrid_events(body)

    assert [event.status for event in parsed] == [ProviderStatus.BOUNCED]


@pytest.mark.parametrize("body", [b"{}", b"not json", b"\xff"])
def test_sendgrid_body_that_is_not_a_json_array_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sendgrid_events(body)


# --- Twilio status callbacks ------------------------------------------------------------------


def test_twilio_delivered_callback_parses_with_the_reference_from_our_url() -> None:
    event = parse_twilio_status(STATUS_PARAMS, reference="dlv_1", received_at=NOW)

    assert event.provider == "twilio"
    assert event.status == ProviderStatus.DELIVERED
    assert event.reference == "dlv_1"
    assert event.provider_message_id == "SM" + "1" * 32
    assert event.provider_event_id == "SM" + "1" * 32 + ":delivered"
    assert event.occurred_at == NOW
    assert event.reason is None


def test_twilio_undelivered_callback_keeps_the_error_code() -> None:
    params = {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30003"}

    event = parse_twilio_status(params)

    assert event.status == ProviderStatus.UNDELIVERED
    assert event.reason == "Twilio error 30003" and event.error_code == "30003"
    assert event.reference is None
    assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [
        ("queued", "queued"),
        ("sending", "queued"),
        ("sent", "sent"),
        ("failed", "failed"),
        ("read", "delivered"),
    ],
)
def test_twilio_message_statuses_map_to_ours(twilio_status: str, status: str) -> None:
    assert parse_twilio_status({"MessageSid": "SM3", "MessageStatus": twilio_status}).status == status


@pytest.mark.parametrize(
    "params",
    [{"MessageStatus": "delivered"}, {"MessageSid": "SM4"}, {"MessageSid": "SM4", "MessageStatus": "odd"}],
)
def test_twilio_callback_without_sid_or_with_unknown_status_raises_value_error(params: dict) -> None:
    with pytest.raises(ValueError):
        parse_twilio_status(params)


# --- Inbound SMS keywords ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop \n",
        "STOPALL",
        "unsubscribe",
        "Cancel",
        "END",
        "quit",
        "REVOKE",
        "optout",
        "Stop.",
    ],
)
def test_twilio_opt_out_words_as_the_whole_message_opt_out(body: str) -> None:
    assert classify_sms_reply(body) is SmsReplyKind.OPT_OUT


@pytest.mark.parametrize("body", ["START", "yes", " Unstop "])
def test_opt_in_words_opt_back_in(body: str) -> None:
    assert classify_sms_reply(body) is SmsReplyKind.OPT_IN


@pytest.mark.parametrize("body", ["HELP", "info"])
def test_help_words_ask_for_help(body: str) -> None:
    assert classify_sms_reply(body) is SmsReplyKind.HELP


@pytest.mark.parametrize("body", ["9", "10 great service", "STOP PLEASE", "please cancel", "", "Don't stop"])
def test_anything_else_is_an_answer(body: str) -> None:
    assert classify_sms_reply(body) is SmsReplyKind.ANSWER


# --- Delivery states the provider statuses mean ------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (ProviderStatus.PROCESSED, DeliveryState.SENT),
        (ProviderStatus.QUEUED, DeliveryState.SENT),
        (ProviderStatus.DEFERRED, DeliveryState.SENT),
        (ProviderStatus.SENT, DeliveryState.SENT),
        (ProviderStatus.DELIVERED, DeliveryState.DELIVERED),
        (ProviderStatus.BOUNCED, DeliveryState.BOUNCED),
        (ProviderStatus.DROPPED, DeliveryState.DROPPED),
        (ProviderStatus.UNDELIVERED, DeliveryState.UNDELIVERED),
        (ProviderStatus.FAILED, DeliveryState.FAILED),
    ],
)
def test_provider_statuses_mean_delivery_states(status: ProviderStatus, state: DeliveryState) -> None:
    assert status.delivery_state is state


@pytest.mark.parametrize("signal", ["unsubscribed", "spam_reported"])
def test_opt_out_signals_are_not_states(signal: str) -> None:
    assert ProviderStatus(signal).delivery_state is None


@pytest.mark.parametrize("signal", ["opened", "clicked"])
def test_opens_and_clicks_are_states_as_the_provider_saw_them(signal: str) -> None:
    assert ProviderStatus(signal).delivery_state == signal
