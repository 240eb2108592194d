"""What the dispatch service hands to an email or SMS provider, and how a provider call can end.

A transport makes exactly one provider call per send and classifies its outcome. Retrying with
backoff is the caller's job: the dispatch service counts attempts in its database, so a worker
killed mid-retry cannot lose count (see DESIGN.md, "Nothing lost, nothing twice").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to one recipient.

    `reference` is the opaque delivery id; it travels in SendGrid's `custom_args`, which SendGrid
    keeps forever as non-personal data, so it must never be an address or a name.
    `unsubscribe_url` becomes the RFC 8058 one-click `List-Unsubscribe` headers.
    `category` is an opaque label for SendGrid's statistics; the transport has a default.
    """

    to_email: str
    to_name: str | None
    subject: str
    html: str
    text: str
    reference: str
    unsubscribe_url: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class OutgoingSms:
    """One SMS to one E.164 number; `reference` is the opaque delivery id."""

    to: str
    body: str
    reference: str
    status_callback_url: str | None = None


@dataclass(frozen=True)
class OutgoingWhatsApp:
    """One WhatsApp message to one E.164 number through an approved template (its content SID is the
    transport's); `variables` fill the template's {{1}}, {{2}}...; `preview` is the text as shown to people
    who read it here (the sandbox, logs never)."""

    to: str
    variables: dict[str, str]
    preview: str
    reference: str
    status_callback_url: str | None = None


@dataclass(frozen=True)
class SendReceipt:
    """A provider accepted a message: which provider, and its id for the message if it gave one."""

    provider: str  # "sendgrid" | "twilio" | "sandbox"
    provider_message_id: str | None


class DeliveryError(Exception):
    """A provider did not accept a message. `code` is the provider's error code or HTTP status."""

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class TransientDeliveryError(DeliveryError):
    """Worth retrying later (429, 5xx, connection errors, Twilio 20429).

    `retry_after` is the provider's own hint in seconds, when it gave one.
    """

    def __init__(self, detail: str, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail, code)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Never worth retrying (a 4xx that cannot succeed).

    `opted_out` is True when the provider refused because the recipient opted out (Twilio 21610,
    the number replied STOP): the caller records an opt-out instead of a mere failure.
    """

    def __init__(self, detail: str, code: str | None = None, opted_out: bool = False) -> None:
        super().__init__(detail, code)
        self.opted_out = opted_out


class OutcomeUnknownError(DeliveryError):
    """The request may have reached the provider, and no answer says whether it took the message.

    A read timeout, a connection reset after the request was sent, a 5xx: sending again could send twice.
    The caller looks the message up where the provider allows it, and otherwise shows it as unknown.
    """


def request_may_have_arrived(error: Exception) -> bool:
    """False when a `requests` error proves the request never left (refused, DNS, connect timeout).

    Anything else (a read timeout, a reset or a closed connection mid-answer) may follow a request the
    provider received and acted on.
    """
    import requests  # the transports' HTTP client; imported here so this module stays light for the domain
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        cause: BaseException | None = error
        seen = 0
        while cause is not None and seen < 10:
            for candidate in (cause, *getattr(cause, "args", ())):
                if isinstance(candidate, NewConnectionError | ConnectTimeoutError | NameResolutionError):
                    return False
                reason = getattr(candidate, "reason", None)
                if isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError):
                    return False
            cause, seen = cause.__cause__ or cause.__context__, seen + 1
        return True
    return isinstance(error, requests.RequestException)


class EmailTransport(Protocol):
    """Sends one email through one provider call."""

    def send_email(self, email: OutgoingEmail) -> SendReceipt:
        """Send `email`; raise TransientDeliveryError or PermanentDeliveryError when not accepted."""
        ...


class SmsTransport(Protocol):
    """Sends one SMS through one provider call."""

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        """Send `sms`; raise TransientDeliveryError or PermanentDeliveryError when not accepted, and
        OutcomeUnknownError when the provider may have taken it without saying so."""
        ...



class WhatsAppTransport(Protocol):
    """Sends one WhatsApp template message through one provider call."""

    def send_whatsapp(self, message: OutgoingWhatsApp) -> SendReceipt:
        """Send `message`; raises as `SmsTransport.send_sms` does."""
        ...


@runtime_checkable
class Reconciling(Protocol):
    """A transport whose provider can be asked whether it took a message (Twilio can, SendGrid cannot)."""

    def find_sent(
        self, message: OutgoingEmail | OutgoingSms | OutgoingWhatsApp, since: datetime
    ) -> SendReceipt | None:
        """The provider's record of `message` (same recipient and text) created since `since`, or None.

        Raises TransientDeliveryError when the provider cannot be asked now.
        """
        ...


def retry_after_seconds(headers: Mapping[str, str] | None, now: datetime) -> float | None:
    """The wait a provider asked for, in seconds, or None when it gave no usable hint.

    Reads `Retry-After` (delta-seconds or an HTTP date, RFC 9110) and, failing that, SendGrid's
    `X-RateLimit-Reset` (epoch seconds). Never negative.
    """
    if not headers:
        return None
    # requests' CaseInsensitiveDict matches any case; a plain dict from elsewhere may not.
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    retry_after = lowered.get("retry-after", "").strip()
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
        try:
            moment = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return max(0.0, (moment - now).total_seconds())
    reset = lowered.get("x-ratelimit-reset", "").strip()
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            return None
    return None


def mask_email(address: str) -> str:
    """`a***@example.com`: enough to tell messages apart in a log, not enough to identify anyone."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    """`+44***89`: country prefix and last two digits only."""
    if len(number) <= 5:
        return "***"
    return f"{number[:3]}***{number[-2:]}"


_EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_NUMBER = re.compile(r"\+?\d[\d ()-]{5,}\d")


def redact_contact_details(text: str) -> str:
    """`text` with email addresses and phone numbers masked.

    Providers echo the recipient in some error messages ("The 'To' number +1555... is not a valid
    phone number"); error details end up in logs and in the delivery's last error.
    """
    text = _EMAIL_ADDRESS.sub(lambda match: mask_email(match.group()), text)
    return _PHONE_NUMBER.sub(lambda match: mask_phone(match.group()), text)


def provider_session(url: str) -> requests.Session:
    """A `requests` session for calls to `url`'s provider, the environment read once, here.

    By default `requests` reads the proxy variables (and walks the whole environment to find them), the CA
    bundle variables and ~/.netrc again on every call: a few hundred microseconds of a send's CPU. The
    session takes what they say for `url` now instead (a proxy, NO_PROXY, REQUESTS_CA_BUNDLE) and leaves
    .netrc out: its credentials would replace the provider's Authorization header.
    """
    import os

    import requests

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session
