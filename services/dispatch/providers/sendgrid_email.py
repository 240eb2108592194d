"""Email through SendGrid's v3 Mail Send API.

The payload is built with the sendgrid SDK's `Mail` helper, but sent with `requests` rather than the
SDK's own client: that client goes through python_http_client (urllib), which `responses` cannot
mock and which could not be pointed at the local provider simulator as simply.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .base import (
    OutcomeUnknownError,
    OutgoingEmail,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    mask_email,
    redact_contact_details,
    request_may_have_arrived,
    retry_after_seconds,
)

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

PROVIDER = "sendgrid"
DEFAULT_API_BASE_URL = "https://api.sendgrid.com"
MAIL_SEND_PATH = "/v3/mail/send"
DEFAULT_CATEGORY = "closeloop-invitation"
# The custom arg SendGrid echoes back on every Event Webhook event for this message.
REFERENCE_CUSTOM_ARG = "delivery_id"


class SendGridEmailTransport:
    """An `EmailTransport` that makes one `POST /v3/mail/send` per email."""

    def __init__(
        self,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        api_base_url: str = DEFAULT_API_BASE_URL,
        timeout: float = 10,
        session: requests.Session | None = None,
        default_category: str = DEFAULT_CATEGORY,
    ) -> None:
        self._api_key = api_key
        self.from_email = from_email
        self.from_name = from_name
        self.mail_send_url = api_base_url.rstrip("/") + MAIL_SEND_PATH
        self.timeout = timeout
        self.default_category = default_category
        # requests and the SDK (the sendgrid package loads cryptography) are imported on the first send:
        # dispatch's web process builds this transport too, and never sends.
        self._session = session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            from .base import provider_session

            self._session = provider_session(self.mail_send_url)
        return self._session

    def __repr__(self) -> str:
        # Never let the API key reach a log through a repr.
        return f"SendGridEmailTransport(mail_send_url={self.mail_send_url!r})"

    def build_payload(self, email: OutgoingEmail) -> dict[str, Any]:
        """The JSON body of the Mail Send call for `email`, as the SDK's `Mail` helper builds it."""
        from shared.imports import submodule_without_package_init

        # Not the sendgrid package's __init__: it loads cryptography (some 8 MiB) for webhook signatures.
        helpers = submodule_without_package_init("sendgrid", "helpers.mail")
        Mail, From, To = helpers.Mail, helpers.From, helpers.To
        CustomArg, Category, Header = helpers.CustomArg, helpers.Category, helpers.Header

        mail = Mail(
            from_email=From(self.from_email, self.from_name),
            to_emails=To(email.to_email, email.to_name),
            subject=email.subject,
            plain_text_content=email.text,
            html_content=email.html,
        )
        # Only the opaque delivery id: SendGrid keeps custom args and categories forever as
        # non-personal data.
        mail.add_custom_arg(CustomArg(REFERENCE_CUSTOM_ARG, email.reference))
        mail.add_category(Category(email.category or self.default_category))
        if email.unsubscribe_url:
            # RFC 8058 one-click: mailbox providers POST "List-Unsubscribe=One-Click" to the URL.
            mail.add_header(Header("List-Unsubscribe", f"<{email.unsubscribe_url}>"))
            mail.add_header(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return mail.get()

    def send_email(self, email: OutgoingEmail) -> SendReceipt:
        """Send `email` with one API call; SendGrid's `X-Message-Id` is the provider message id."""
        import requests

        from shared.imports import submodule_without_package_init

        helpers = submodule_without_package_init("sendgrid", "helpers.mail")
        try:
            payload = self.build_payload(email)
        except helpers.SendGridException as exc:
            # The helper refuses e.g. a body that looks like it contains a SendGrid API key.
            raise PermanentDeliveryError(f"SendGrid payload refused: {type(exc).__name__}") from exc
        try:
            response = self._post(payload)
        except requests.RequestException as exc:
            # Refused before sending: safe to retry. A timeout or reset after the request left: SendGrid may
            # have the message, and offers no look-up by our reference, so it is never sent again blindly.
            if request_may_have_arrived(exc):
                raise OutcomeUnknownError(f"SendGrid did not answer: {type(exc).__name__}") from exc
            raise TransientDeliveryError(f"SendGrid unreachable: {type(exc).__name__}") from exc

        if response.status_code in (200, 202):
            message_id = response.headers.get("X-Message-Id")
            logger.debug(
                "SendGrid accepted delivery %s for %s as %s",
                email.reference,
                mask_email(email.to_email),
                message_id,
            )
            return SendReceipt(provider=PROVIDER, provider_message_id=message_id)

        detail = f"SendGrid answered {response.status_code}: {_error_messages(response)}"
        code = str(response.status_code)
        if response.status_code == 429:
            raise TransientDeliveryError(
                detail, code=code, retry_after=retry_after_seconds(response.headers, datetime.now(UTC))
            )
        if response.status_code >= 500:
            # The request arrived: SendGrid may have queued the mail before failing to answer.
            raise OutcomeUnknownError(detail, code=code)
        # 400 (bad payload), 401/403 (key or sender identity), 413 (too large): a repeat cannot
        # succeed. SendGrid has no send-time opt-out refusal: it accepts mail to suppressed
        # addresses and reports a "dropped" event later.
        raise PermanentDeliveryError(detail, code=code)

    def _post(self, payload: dict[str, Any]) -> requests.Response:
        """``session.post(url, json=payload)`` without what ``Session.post`` adds per call that Mail Send
        never uses: merging the session's settings and cookies into each request, reading cookies from each
        answer (SendGrid sets none), response hooks and redirects (it answers, never redirects). The request
        goes through the session's own adapter, so its kept-alive connection, proxy and CA bundle are the
        same, and ``responses`` (which patches the adapter's ``send``) still sees every call. A quarter of
        the call's CPU (674 -> 499 us per send_email against the provider simulator)."""
        import requests

        body = json.dumps(payload, allow_nan=False).encode()
        request = requests.PreparedRequest()
        request.method, request.url, request.body = "POST", self._prepared_url, body
        request.headers = requests.structures.CaseInsensitiveDict(self._headers)
        request.headers["Content-Length"] = str(len(body))
        request.hooks = {"response": []}
        session = self.session
        response = session.get_adapter(request.url).send(
            request,
            stream=False,
            timeout=self.timeout,
            verify=session.verify,
            cert=session.cert,
            proxies=session.proxies,
        )
        response.content  # noqa: B018 (read now, as Session.send does: the connection returns to the pool)
        return response

    @cached_property
    def _prepared_url(self) -> str:
        """The Mail Send URL as requests prepares a URL (normalized, encoded): once, not on every send."""
        import requests

        request = requests.PreparedRequest()
        request.prepare_url(self.mail_send_url, None)
        return request.url

    @cached_property
    def _headers(self) -> dict[str, str]:
        """The session's default headers (user agent, encodings, keep-alive) with the key and the JSON body's
        type, as ``session.post(json=...)`` would send them."""
        return {
            **self.session.headers,
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
        }


def _error_messages(response: requests.Response) -> str:
    """SendGrid's `{"errors": [{"message", "field"}]}` as one short line (never the request body)."""
    try:
        errors = response.json().get("errors") or []
        messages = [
            f"{error['field']}: {error.get('message')}" if error.get("field") else str(error.get("message"))
            for error in errors
            if isinstance(error, dict)
        ]
    except (ValueError, AttributeError):
        messages = []
    return redact_contact_details("; ".join(messages)[:500]) or response.reason or "no detail"
