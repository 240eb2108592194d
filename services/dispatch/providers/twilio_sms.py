"""SMS through Twilio's Messages API with the official twilio SDK.

The SDK sends with `requests`, so `responses` mocks it in unit tests. For the local provider
simulator (end-to-end tests, worker subprocesses), `api_base_url` replaces the `base_url` of the
SDK's `api` domain object, the one attribute every API v2010 URL is built from
(`Domain.absolute_url`), so the SDK's own request building, auth and error parsing all stay in play.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .base import (
    OutcomeUnknownError,
    OutgoingSms,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    mask_phone,
    redact_contact_details,
    request_may_have_arrived,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
# Twilio error codes (https://www.twilio.com/docs/api/errors).
ERROR_RECIPIENT_OPTED_OUT = 21610  # the number replied STOP; Twilio refuses until it replies START
ERROR_TOO_MANY_REQUESTS = 20429  # never processed, always safe to retry
# A message looked up after an unknown outcome may carry a creation time a little before our attempt's start
# (clocks differ); this much earlier still counts as the same attempt.
CLOCK_SKEW = timedelta(minutes=2)
LOOKUP_LIMIT = 50


class _AnswerKeepingHttpClient(TwilioHttpClient):
    """The SDK's client, keeping each thread's last answer: a 429's Retry-After is in its headers only."""

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
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs a from_number or a messaging_service_sid to send from")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.api_base_url = api_base_url
        self._http_client = http_client or _AnswerKeepingHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http_client)
        if api_base_url:
            # All Messages URLs are built from `client.api.base_url` (default https://api.twilio.com);
            # the `api` domain object is created once and cached, so this sticks.
            self._client.api.base_url = api_base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host name as if it
            # were *.twilio.com (ClientBase.get_hostname) and mangle a simulator's address.
            self._client.edge = None
            self._client.region = None

    def __repr__(self) -> str:
        sid = self._client.account_sid
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
        if sms.status_callback_url:
            sender["status_callback"] = sms.status_callback_url
        try:
            message = self._client.messages.create(to=sms.to, body=sms.body, **sender)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = classify_twilio_error(exc.status, exc.code, _twilio_error_text(exc))
            keeping = isinstance(self._http_client, _AnswerKeepingHttpClient)
            if isinstance(error, TransientDeliveryError) and keeping:
                error.retry_after = retry_after_seconds(self._http_client.last_headers(), datetime.now(UTC))
            raise error from exc
        except requests.RequestException as exc:
            if request_may_have_arrived(exc):
                raise OutcomeUnknownError(f"Twilio did not answer: {type(exc).__name__}") from exc
            raise TransientDeliveryError(f"Twilio unreachable: {type(exc).__name__}") from exc
        logger.info(
            "Twilio accepted delivery %s for %s as %s", sms.reference, mask_phone(sms.to), message.sid
        )
        return SendReceipt(provider=PROVIDER, provider_message_id=message.sid)

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendReceipt | None:
        """Twilio's message to the same number with the same text created since `since`, newest first.

        Listed by recipient only: a message Twilio still queues has no DateSent to filter on.
        """
        try:
            messages = self._client.messages.list(to=sms.to, limit=LOOKUP_LIMIT)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise TransientDeliveryError(_twilio_error_text(exc), code=str(exc.code or exc.status)) from exc
        except requests.RequestException as exc:
            raise TransientDeliveryError(f"Twilio unreachable for a look-up: {type(exc).__name__}") from exc
        for message in messages:
            created = message.date_created
            if message.body == sms.body and (created is None or created >= since - CLOCK_SKEW):
                logger.info("Twilio already had delivery %s as %s", sms.reference, message.sid)
                return SendReceipt(provider=PROVIDER, provider_message_id=message.sid)
        return None


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
    # Not str(exc): it prints ANSI colours and the full request URI on a terminal.
    message = exc.title if isinstance(exc, TwilioServiceException) else exc.msg
    return redact_contact_details(f"Twilio answered {exc.status} (error {exc.code}): {message}")
