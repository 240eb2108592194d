"""What a success team reads when a delivery failed: the provider's code as a sentence."""

from __future__ import annotations

import pytest

from services.dispatch.failures import failure_reason

NO_MAILBOX = "The mailbox does not exist."


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        ("30006", "The number cannot receive SMS (a landline, or a carrier that cannot be reached)."),
        ("21614", "The number cannot receive SMS: it is not a mobile number."),
        ("30005", "The number does not exist (or no longer does)."),
        ("21610", "The customer replied STOP to our number; they receive nothing until they reply START."),
        ("30007", "The carrier filtered the message as spam."),
    ],
)
def test_twilio_error_codes_read_as_sentences(code, sentence):
    assert failure_reason("twilio", code, f"Twilio error {code}") == sentence


def test_an_unlisted_twilio_code_is_named_in_the_sentence():
    assert failure_reason("twilio", "39999", None) == "Twilio did not deliver the message (error 39999)."


@pytest.mark.parametrize(
    ("code", "detail", "sentence"),
    [
        ("5.1.1", "550 5.1.1 The email account that you tried to reach does not exist", NO_MAILBOX),
        (None, "550 5.1.1 <a***@example.com>: Recipient address rejected", NO_MAILBOX),
        ("5.2.2", "552 5.2.2 Mailbox full", "The mailbox is full."),
        ("Invalid Address", "some text", NO_MAILBOX),
        (None, "Bounced Address", "The address bounced before; SendGrid no longer sends to it."),
        (None, "Unsubscribed Address", "The customer unsubscribed (SendGrid's own list)."),
        ("401", "SendGrid answered 401", "SendGrid refused our API key (SENDGRID_API_KEY)."),
    ],
)
def test_sendgrid_bounces_drops_and_refusals_read_as_sentences(code, detail, sentence):
    assert failure_reason("sendgrid", code, detail) == sentence


def test_a_failure_without_a_provider_still_reads_as_a_sentence():
    assert failure_reason(None, None) == "The message could not be sent."
