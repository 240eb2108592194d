"""The HTTP edge of outbound webhooks: resolve a receiver's host, and POST a message to an address we checked.

A pure adapter, no database and no Flask: the use cases decide which addresses are allowed
(``webhooks.check_addresses``) and record what happened; ``WebhookSender`` is the port, faked in unit tests.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from .webhooks import RESPONSE_EXCERPT_BYTES, WebhookTarget

if TYPE_CHECKING:
    import requests

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class HttpAnswer:
    """A receiver's answer: its status, the start of its body, and where a redirect pointed."""

    status: int
    body: bytes
    location: str | None = None


class HttpSendError(Exception):
    """No answer: the host did not resolve, or the connection failed or timed out."""


class WebhookSender(Protocol):
    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, in the order to try them; HttpSendError when it does not."""
        ...

    def post(
        self, target: WebhookTarget, address: str, body: bytes, headers: Mapping[str, str]
    ) -> HttpAnswer:
        """POST ``body`` to ``target`` over a connection to ``address`` (one ``resolve`` gave, and checked).

        Redirects are not followed; only the start of the answer's body is read.
        """
        ...


class RequestsWebhookSender:
    """``WebhookSender`` on ``requests``, connecting to the very address that was checked.

    Resolving the name again to connect would let a DNS answer that changes between the check and the
    connection (DNS rebinding) reach an address we refused: the request goes to the checked address, with
    the host's name in the Host header and, over TLS, in SNI and the certificate check.
    """

    def __init__(
        self,
        timeout: float = TIMEOUT_SECONDS,
        verify: bool | str = True,
        getaddrinfo: Callable[..., list[Any]] | None = None,
    ) -> None:
        self.timeout = timeout
        # A CA bundle's path in tests of TLS; True (the system's bundle) otherwise.
        self.verify = verify
        self._getaddrinfo = getaddrinfo

    def resolve(self, host: str, port: int) -> list[str]:
        getaddrinfo = self._getaddrinfo or socket.getaddrinfo
        try:
            found = getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise HttpSendError(f"{host} does not resolve: {error}") from error
        # getaddrinfo lists an address once per protocol; keep its order, the system's preference.
        return list(dict.fromkeys(str(info[4][0]) for info in found))

    def post(
        self, target: WebhookTarget, address: str, body: bytes, headers: Mapping[str, str]
    ) -> HttpAnswer:
        try:
            host = target.host.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise HttpSendError(f"{target.host} is not a valid host name: {error}") from error
        # Loaded on the first webhook sent: followup's processes need requests only when one is configured.
        import requests

        session = requests.Session()
        # No proxy, .netrc or CA bundle from the environment: the connection goes where we checked.
        session.trust_env = False
        session.mount("https://", _pinned_tls_adapter()(host))
        default_port = 443 if target.scheme == "https" else 80
        named = f"[{host}]" if ":" in host else host
        host_header = named if target.port == default_port else f"{named}:{target.port}"
        try:
            with session.post(
                _pinned_url(target, address),
                data=body,
                headers={**headers, "Host": host_header},
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                verify=self.verify,
            ) as response:
                # The timeout bounds each read, so a receiver cannot keep us long with a slow, large body.
                start = response.raw.read(RESPONSE_EXCERPT_BYTES, decode_content=True) or b""
                return HttpAnswer(response.status_code, start, response.headers.get("Location"))
        except requests.Timeout as error:
            raise HttpSendError(f"No answer from {address} within {self.timeout:g} s.") from error
        except requests.exceptions.SSLError as error:
            raise HttpSendError(f"TLS with {host} at {address} failed: {_cause(error)}") from error
        except requests.RequestException as error:
            raise HttpSendError(f"Could not deliver to {address}: {_cause(error)}") from error
        finally:
            session.close()


def _cause(error: requests.RequestException) -> str:
    """What went wrong, without urllib3's wrapping (its pool, its retries and the URL we rewrote)."""
    wrapped = error.args[0] if error.args else error
    return str(getattr(wrapped, "reason", wrapped))


def _pinned_url(target: WebhookTarget, address: str) -> str:
    parts = urlsplit(target.url)
    named = f"[{address}]" if ":" in address else address
    return urlunsplit((target.scheme, f"{named}:{target.port}", parts.path or "/", parts.query, ""))


@functools.cache
def _pinned_tls_adapter() -> type:
    """A requests adapter that connects to an address taken from the URL but speaks TLS to
    ``server_hostname``: SNI and the certificate's name are the receiver's host name, not the address.
    (A class made on first use, so that requests loads only when a webhook is sent.)"""
    from requests.adapters import HTTPAdapter

    class PinnedTlsAdapter(HTTPAdapter):
        def __init__(self, server_hostname: str) -> None:
            self._server_hostname = server_hostname
            super().__init__(max_retries=0)

        def build_connection_pool_key_attributes(
            self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
            pool_kwargs["server_hostname"] = self._server_hostname
            pool_kwargs["assert_hostname"] = self._server_hostname
            return host_params, pool_kwargs

    return PinnedTlsAdapter
