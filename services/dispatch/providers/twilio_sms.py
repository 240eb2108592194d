"""SMS through Twilio's Messages API with the official twilio SDK.

The SDK sends with `requests`, so `responses` mocks it in unit tests. For the local provider
simulator (end-to-end tests, worker subprocesses), `api_base_url` replaces the `base_url` of the
SDK's `api` domain object, the one attribute every API v2010 URL is built from
(`Domain.absolute_url`), so the SDK's own request building, auth and error parsing all stay in play.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.channels import WHATSAPP_PREFIX

from .base import (
    OutcomeUnknownError,
    OutgoingSms,
    OutgoingWhatsApp,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    mask_phone,
    redact_contact_details,
    request_may_have_arrived,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from twilio.base.exceptions import TwilioRestException, TwilioServiceException
    from twilio.http import HttpClient
    from twilio.rest import Client

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
# Twilio error codes (https://www.twilio.com/docs/api/errors).
ERROR_RECIPIENT_OPTED_OUT = 21610  # the number replied STOP; Twilio refuses until it replies START
ERROR_TOO_MANY_REQUESTS = 20429  # never processed, always safe to retry
# A message looked up after an unknown outcome may carry a creation time a little before our attempt's start
# (clocks differ); this much earlier still counts as the same attempt.
CLOCK_SKEW = timedelta(minutes=2)
LOOKUP_LIMIT = 50


@functools.cache
def _answer_keeping_http_client() -> type:
    """The SDK's client, keeping each thread's last answer: a 429's Retry-After is in its headers only.

    A class made on first use: the SDK (and requests) load only in a process that sends."""
    from twilio.http.http_client import TwilioHttpClient

    class AnswerKeepingHttpClient(TwilioHttpClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._answers = threading.local()

        def request(self, *args: Any, **kwargs: Any) -> Any:
            self._answers.last = None
            response = super().request(*args, **kwargs)
            self._answers.last = response
            return response

        def last_headers(self) -> Any:
            answer = getattr(self._answers, "last", None)
            return answer.headers if answer is not None else None

    return AnswerKeepingHttpClient


class TwilioSmsTransport:
    """An `SmsTransport` that makes one `POST /2010-04-01/Accounts/{sid}/Messages.json` per SMS."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = 10,
        whatsapp_from: str | None = None,
        whatsapp_content_sid: str | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs a from_number or a messaging_service_sid to send from")
        self.from_number = from_number
        self.whatsapp_from = whatsapp_address(whatsapp_from) if whatsapp_from else None
        self.whatsapp_content_sid = whatsapp_content_sid
        self.messaging_service_sid = messaging_service_sid
        self.api_base_url = api_base_url
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._timeout = timeout
        # The SDK's client is built on the first call (twilio.rest loads requests and, on first use, its
        # API modules): dispatch's web process builds this transport too, and never sends.
        self._http_client: Any = http_client
        self._keeps_answers = http_client is None
        self._built_client: Client | None = None
        self._building = threading.Lock()

    @property
    def _client(self) -> Client:
        if self._built_client is None:
            with self._building:  # the worker's threads share one client
                if self._built_client is None:
                    self._built_client = self._build_client()
        return self._built_client

    def _build_client(self) -> Client:
        from twilio.rest import Client

        if self._http_client is None:
            self._http_client = _answer_keeping_http_client()(timeout=self._timeout)
        client = Client(self._account_sid, self._auth_token, http_client=self._http_client)
        if self.api_base_url:
            # All Messages URLs are built from `client.api.base_url` (default https://api.twilio.com);
            # the `api` domain object is created once and cached, so this sticks.
            client.api.base_url = self.api_base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host name as if it
            # were *.twilio.com (ClientBase.get_hostname) and mangle a simulator's address.
            client.edge = None
            client.region = None
        return client

    def __repr__(self) -> str:
        sid = self._account_sid
        return f"TwilioSmsTransport(account_sid={sid!r}, api_base_url={self.api_base_url!r})"

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        """Send `sms` with one API call; Twilio's message SID is the provider message id."""
        sender: dict[str, Any] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number}
        )
        if self.messaging_service_sid and self.from_number:
            # Both given: a specific sender from the service's pool, with the service's features.
            sender["from_"] = self.from_number
        return self._create(sms.reference, sms.to, sms.status_callback_url, body=sms.body, **sender)

    def send_whatsapp(self, message: OutgoingWhatsApp) -> SendReceipt:
        """Send the approved template with its variables: WhatsApp lets nothing else open a conversation."""
        if not (self.whatsapp_from and self.whatsapp_content_sid):
            raise PermanentDeliveryError("WhatsApp is not configured (TWILIO_WHATSAPP_FROM, _CONTENT_SID)")
        return self._create(
            message.reference,
            whatsapp_address(message.to),
            message.status_callback_url,
            from_=self.whatsapp_from,
            content_sid=self.whatsapp_content_sid,
            content_variables=json.dumps(message.variables, ensure_ascii=False),
        )

    def _create(self, reference: str, to: str, status_callback: str | None, **fields: Any) -> SendReceipt:
        import requests
        from twilio.base.exceptions import TwilioRestException, TwilioServiceException

        if status_callback:
            fields["status_callback"] = status_callback
        try:
            message = self._client.messages.create(to=to, **fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = classify_twilio_error(exc.status, exc.code, _twilio_error_text(exc))
            if isinstance(error, TransientDeliveryError) and self._keeps_answers:
                error.retry_after = retry_after_seconds(self._http_client.last_headers(), datetime.now(UTC))
            raise error from exc
        except requests.RequestException as exc:
            if request_may_have_arrived(exc):
                raise OutcomeUnknownError(f"Twilio did not answer: {type(exc).__name__}") from exc
            raise TransientDeliveryError(f"Twilio unreachable: {type(exc).__name__}") from exc
        logger.debug("Twilio accepted delivery %s for %s as %s", reference, mask_phone(to), message.sid)
        return SendReceipt(provider=PROVIDER, provider_message_id=message.sid)

    def find_sent(self, sent: OutgoingSms | OutgoingWhatsApp, since: datetime) -> SendReceipt | None:
        """Twilio's message to the same number (with the same text, for an SMS) created since `since`.

        Listed by recipient only, newest first: a message Twilio still queues has no DateSent to filter on.
        A WhatsApp template's text is Twilio's to fill in, so any message to that address since then counts.
        """
        import requests
        from twilio.base.exceptions import TwilioRestException, TwilioServiceException

        to = whatsapp_address(sent.to) if isinstance(sent, OutgoingWhatsApp) else sent.to
        try:
            messages = self._client.messages.list(to=to, limit=LOOKUP_LIMIT)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise TransientDeliveryError(_twilio_error_text(exc), code=str(exc.code or exc.status)) from exc
        except requests.RequestException as exc:
            raise TransientDeliveryError(f"Twilio unreachable for a look-up: {type(exc).__name__}") from exc
        for message in messages:
            created = message.date_created
            same_text = isinstance(sent, OutgoingWhatsApp) or message.body == sent.body
            if same_text and (created is None or created >= since - CLOCK_SKEW):
                logger.info("Twilio already had delivery %s as %s", sent.reference, message.sid)
                return SendReceipt(provider=PROVIDER, provider_message_id=message.sid)
        return None


def whatsapp_address(number: str) -> str:
    """"whatsapp:+14155550123", as Twilio addresses WhatsApp users and senders."""
    return number if number.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + number


def classify_twilio_error(
    status: int, code: int | None, detail: str
) -> TransientDeliveryError | PermanentDeliveryError | OutcomeUnknownError:
    """Map a Twilio API error to the retry decision: 429/20429 transient (never processed), a 5xx unknown
    (Twilio may have created the message: it is looked up before any new send), other 4xx permanent."""
    code_text = str(code if code is not None else status)
    if code == ERROR_RECIPIENT_OPTED_OUT:
        return PermanentDeliveryError(detail, code=code_text, opted_out=True)
    if status == 429 or code == ERROR_TOO_MANY_REQUESTS:
        return TransientDeliveryError(detail, code=code_text)
    if status >= 500:
        return OutcomeUnknownError(detail, code=code_text)
    return PermanentDeliveryError(detail, code=code_text)


def _twilio_error_text(exc: TwilioRestException | TwilioServiceException) -> str:
    from twilio.base.exceptions import TwilioServiceException

    # Not str(exc): it prints ANSI colours and the full request URI on a terminal.
    message = exc.title if isinstance(exc, TwilioServiceException) else exc.msg
    return redact_contact_details(f"Twilio answered {exc.status} (error {exc.code}): {message}")
