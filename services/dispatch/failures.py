"""Why a delivery failed, in a sentence a success team understands, from the provider's error code.

Pure rules, no I/O. The provider's own code and text stay beside the sentence (``error_code``, ``last_error``)
for whoever needs the detail.
"""

from __future__ import annotations

import re

# https://www.twilio.com/docs/api/errors: the codes a status callback or a refused send carries.
TWILIO_ERRORS = {
    "20003": "Twilio refused our credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).",
    "21211": "The phone number is not a valid number.",
    "21408": "We may not text this country: enable it in Twilio's geographic permissions.",
    "21606": "Our sender number cannot send SMS.",
    "21610": "The customer replied STOP to our number; they receive nothing until they reply START.",
    "21612": "Twilio cannot route a message from our number to this one.",
    "21614": "The number cannot receive SMS: it is not a mobile number.",
    "30001": "Twilio's queue was full and the message was not sent.",
    "30002": "Our Twilio account is suspended.",
    "30003": "The phone was switched off or out of reach, and the carrier gave up.",
    "30004": "The number, or its carrier, blocks our messages.",
    "30005": "The number does not exist (or no longer does).",
    "30006": "The number cannot receive SMS (a landline, or a carrier that cannot be reached).",
    "30007": "The carrier filtered the message as spam.",
    "30008": "The carrier did not deliver the message and did not say why.",
    "30034": "Our sender number is not registered for US A2P 10DLC messaging.",
    "63003": "The number has no WhatsApp account.",
    "63016": "WhatsApp allows only an approved template outside the 24-hour window.",
    "63024": "The number has no WhatsApp account.",
}

# SendGrid: bounce classifications, dropped reasons, and the SMTP enhanced status codes of bounces.
SENDGRID_BOUNCES = {
    "invalid address": "The mailbox does not exist.",
    "mailbox unavailable": "The mailbox is full or unavailable.",
    "reputation": "The receiving server refused our mail because of our sending reputation.",
    "content": "The receiving server refused our mail as spam.",
    "frequency/volume": "The receiving server refused our mail: too many messages.",
    "technical": "The receiving server refused our mail for a technical reason.",
}
SENDGRID_DROPS = {
    "bounced address": "The address bounced before; SendGrid no longer sends to it.",
    "unsubscribed address": "The customer unsubscribed (SendGrid's own list).",
    "spam reporting address": "The customer reported our mail as spam.",
    "invalid": "The email address is not valid.",
}
SMTP_STATUSES = {
    "5.1.1": "The mailbox does not exist.",
    "5.1.10": "The mailbox does not exist.",
    "5.2.1": "The mailbox is disabled.",
    "5.2.2": "The mailbox is full.",
    "4.2.2": "The mailbox is full.",
    "5.4.1": "The mailbox does not exist.",
    "5.7.1": "The receiving server refused our mail.",
}
SENDGRID_HTTP = {
    "400": "SendGrid refused the message as malformed.",
    "401": "SendGrid refused our API key (SENDGRID_API_KEY).",
    "403": "SendGrid refused our API key or sender identity (SENDGRID_FROM_EMAIL).",
    "413": "The email is too large for SendGrid.",
}

GAVE_UP = (
    "The provider could not be reached or kept refusing for the time being; we stopped after {attempts}."
)
OUTCOME_UNKNOWN_EMAIL = (
    "SendGrid did not answer in time: it may have accepted the email. It was not sent again; check "
    "SendGrid's activity before sending it by hand."
)
OUTCOME_UNKNOWN_LOOKUP = (
    "The provider did not answer in time; we look the message up before sending it again, never blindly."
)
INTERRUPTED = "The attempt was interrupted before the provider answered."
INTERRUPTED_BEFORE_CALL = "The attempt was interrupted before the provider was called; it is tried again."

_SMTP_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def failure_reason(provider: str | None, code: str | None, detail: str | None = None) -> str:
    """The sentence shown for a failed delivery."""
    code = (code or "").strip()
    text = (detail or "").strip().lower()
    if provider == "twilio":
        if code in TWILIO_ERRORS:
            return TWILIO_ERRORS[code]
        return "Twilio did not deliver the message" + (f" (error {code})." if code else ".")
    if provider == "sendgrid":
        smtp = code if code in SMTP_STATUSES else _smtp_status(text)
        if smtp in SMTP_STATUSES:
            return SMTP_STATUSES[smtp]
        for table in (SENDGRID_DROPS, SENDGRID_BOUNCES):
            for words, sentence in table.items():
                if words in text or words == code.lower():
                    return sentence
        if code in SENDGRID_HTTP:
            return SENDGRID_HTTP[code]
        return "The email was not delivered" + (f" ({code})." if code else ".")
    return "The message could not be sent" + (f" (error {code})." if code else ".")


def _smtp_status(text: str) -> str | None:
    match = _SMTP_STATUS.search(text)
    return match.group(1) if match else None
