"""A local stand-in for the two provider endpoints Closeloop calls: SendGrid's Mail Send and Twilio's
Messages API.

End-to-end tests run dispatch workers in subprocesses, where `responses` mocks do not reach; they
point `SendGridEmailTransport(api_base_url=...)` and `TwilioSmsTransport(api_base_url=...)` here
instead. Every accepted message is recorded and can be read back:

    GET    /_simulator/messages   recorded messages, oldest first (filters: ?provider=, ?to=; ?after=N
                                  skips the first N recorded, for a poller that has read them)
    DELETE /_simulator/messages   forget them

With `status_callback_delay` set, a Twilio message with a StatusCallback gets a signed
`MessageStatus=delivered` callback that many seconds later, as Twilio would send it.

Faults, chosen per test, apply to the next sends of one provider (or both) and are used up one per call:

    POST   /_simulator/faults     {"kind": "429" | "500" | "slow" | "reset", "provider": "twilio" |
                                   "sendgrid" | null (both), "count": 1, "retry_after": 1,
                                   "delay": 12, "processed": true}
    DELETE /_simulator/faults     forget the faults not used yet

- `429`: refused before processing, with `Retry-After: retry_after`; nothing is recorded.
- `500`: answered 500; with `processed` (the default) the message was recorded first, as a provider
  that failed after taking it.
- `slow`: the message is recorded, the answer comes `delay` seconds later (past a client's timeout).
- `reset`: the message is recorded, then the connection is reset without an answer.

Twilio's Messages list (`GET .../Messages.json?To=`) answers from what was recorded, newest first, so a
sender can look a message up after an answer it never got.

    python -m closeloop.provider_simulator --port 8025 [--status-callback-delay 0.2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import requests
from flask import Blueprint, Flask, current_app, jsonify, request
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator
from werkzeug.serving import BaseWSGIServer, make_server

logger = logging.getLogger(__name__)

# Only ever a test credential: the simulator is never reachable from outside a test machine.
DEFAULT_TWILIO_AUTH_TOKEN = "simulator-auth-token"
EXTENSION_KEY = "provider_simulator"

bp = Blueprint("provider_simulator", __name__)


FAULT_KINDS = ("429", "500", "slow", "reset")


@dataclass
class Fault:
    """How the next `count` sends to `provider` (None: either) go wrong."""

    kind: str
    provider: str | None = None
    count: int = 1
    retry_after: float = 1.0
    delay: float = 12.0
    processed: bool = True

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"a fault is one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")


@dataclass
class SimulatorState:
    """The simulator's memory: what it was sent, and how it answers Twilio status callbacks."""

    twilio_auth_token: str
    status_callback_delay: float | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def next_fault(self, provider: str) -> Fault | None:
        """The first fault for `provider`, one of its uses taken."""
        with self.lock:
            for fault in self.faults:
                if fault.provider in (None, provider) and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, message: dict[str, Any]) -> None:
        with self.lock:
            self.messages.append(message)

    def snapshot(self, after: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(message, status_callbacks=list(message["status_callbacks"]))
                for message in self.messages[after:]
            ]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def create_simulator_app(
    twilio_auth_token: str = DEFAULT_TWILIO_AUTH_TOKEN, status_callback_delay: float | None = None
) -> Flask:
    """The simulator as a Flask app.

    `twilio_auth_token` is both the password the Twilio endpoint accepts (with any account SID)
    and the key status callbacks are signed with, as with the real Twilio: configure the app under
    test with the same TWILIO_AUTH_TOKEN. `status_callback_delay` None sends no status callbacks.
    """
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = SimulatorState(twilio_auth_token, status_callback_delay)
    app.register_blueprint(bp)
    return app


def _state() -> SimulatorState:
    return current_app.extensions[EXTENSION_KEY]


def _now() -> datetime:
    return datetime.now(UTC)


# --- SendGrid ---------------------------------------------------------------------------------


def _sendgrid_error(status: int, message: str, field_name: str | None = None) -> tuple[Any, int]:
    return jsonify({"errors": [{"message": message, "field": field_name, "help": None}]}), status


@bp.post("/v3/mail/send")
def sendgrid_mail_send() -> Any:
    """Accept a Mail Send call like SendGrid: 202 and an X-Message-Id header, no body."""
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or not authorization.removeprefix("Bearer ").strip():
        return _sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _sendgrid_error(400, "Bad Request")
    problem = _sendgrid_payload_problem(payload)
    if problem:
        return _sendgrid_error(400, problem[1], problem[0])
    fault = _state().next_fault("sendgrid")
    if fault and fault.kind == "429":
        answer = _sendgrid_error(429, "too many requests")
        return answer[0], 429, {"Retry-After": _seconds(fault.retry_after)}

    message_id = secrets.token_urlsafe(16)  # SendGrid's ids are 22 url-safe characters, no dots
    personalization = payload["personalizations"][0]
    contents = {content.get("type"): content.get("value") for content in payload["content"]}
    _state().record(
        {
            "id": message_id,
            "provider": "sendgrid",
            "received_at": _now().isoformat(),
            "to": personalization["to"][0]["email"],
            "from": payload["from"]["email"],
            "subject": personalization.get("subject") or payload.get("subject"),
            "text": contents.get("text/plain"),
            "html": contents.get("text/html"),
            "body": None,
            "reference": (payload.get("custom_args") or {}).get("delivery_id"),
            "headers": payload.get("headers") or {},
            "status_callback": None,
            "status_callbacks": [],
            "payload": payload,
        }
    )
    logger.info("Recorded SendGrid message %s", message_id)
    answer = "", 202, {"X-Message-Id": message_id}
    if fault:
        return _after_taking_it(fault, _sendgrid_error(500, "Internal server error"), answer)
    return answer


def _sendgrid_payload_problem(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, message) for the first thing SendGrid would refuse in the parts we use, else None."""
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "personalizations", "The personalizations field is required and must have at least one item."
    for index, personalization in enumerate(personalizations):
        recipients = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(recipients, list) or not recipients:
            return f"personalizations.{index}.to", "The to array is required for all personalization objects."
        if not all(isinstance(recipient, dict) and recipient.get("email") for recipient in recipients):
            return f"personalizations.{index}.to", "Does not contain a valid address."
    sender = payload.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        return "from.email", "The from object must be provided for every email send."
    has_subject = bool(payload.get("subject")) or all(
        isinstance(personalization, dict) and personalization.get("subject")
        for personalization in personalizations
    )
    if not has_subject:
        return "subject", "The subject is required."
    contents = payload.get("content")
    if not isinstance(contents, list) or not contents:
        return "content", "The content value must be provided."
    if not all(
        isinstance(content, dict) and content.get("type") and content.get("value") for content in contents
    ):
        return "content", "The content value must be a string at least one character in length."
    return None


# --- Twilio -----------------------------------------------------------------------------------


def _twilio_error(status: int, code: int, message: str) -> tuple[Any, int]:
    return (
        jsonify(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            }
        ),
        status,
    )


@bp.post("/2010-04-01/Accounts/<account_sid>/Messages.json")
def twilio_create_message(account_sid: str) -> Any:
    """Accept a Messages create call like Twilio: 201 and the message resource as JSON."""
    state = _state()
    if not _twilio_credentials_accepted(account_sid, state.twilio_auth_token):
        return _twilio_error(401, 20003, "Authenticate")
    form = request.form
    to = form.get("To", "").strip()
    body = form.get("Body", "")
    sender = form.get("From", "").strip() or None
    messaging_service_sid = form.get("MessagingServiceSid", "").strip() or None
    if not to:
        return _twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender and not messaging_service_sid:
        return _twilio_error(400, 21603, "A 'From' phone number is required.")
    content_sid = form.get("ContentSid", "").strip() or None
    if content_sid:
        # A template (WhatsApp): Twilio fills it in; the simulator shows its variables in order.
        try:
            variables = json.loads(form.get("ContentVariables") or "{}")
        except ValueError:
            return _twilio_error(400, 21656, "The ContentVariables Parameter is invalid.")
        body = body or " ".join(str(value) for _, value in sorted(variables.items()))
    if not body:
        return _twilio_error(400, 21602, "Message body is required.")
    fault = state.next_fault("twilio")
    if fault and fault.kind == "429":
        answer = _twilio_error(429, 20429, "Too Many Requests")
        return answer[0], 429, {"Retry-After": _seconds(fault.retry_after)}
    if fault and fault.kind == "500" and not fault.processed:
        return _twilio_error(500, 20500, "Internal Server Error")

    message_sid = "SM" + secrets.token_hex(16)
    status_callback = form.get("StatusCallback") or None
    now = format_datetime(_now())
    resource = {
        "sid": message_sid,
        "account_sid": account_sid,
        "messaging_service_sid": messaging_service_sid,
        "to": to,
        "from": sender,
        "body": body,
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "num_media": "0",
        "api_version": "2010-04-01",
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "price": None,
        "price_unit": "USD",
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}.json",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media.json"
        },
    }
    record = {
        "id": message_sid,
        "provider": "twilio",
        "received_at": _now().isoformat(),
        "to": to,
        "from": sender or messaging_service_sid,
        "subject": None,
        "text": None,
        "html": None,
        "body": body,
        "reference": None,
        "headers": {},
        "status_callback": status_callback,
        "status_callbacks": [],
        "payload": form.to_dict(flat=True),
        "content_sid": content_sid,
    }
    record["resource"] = resource  # what the Messages list answers with
    state.record(record)
    logger.info("Recorded Twilio message %s", message_sid)
    if status_callback and state.status_callback_delay is not None:
        callback = {
            "MessageSid": message_sid,
            "SmsSid": message_sid,
            "AccountSid": account_sid,
            "From": sender or "",
            "To": to,
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
            "ApiVersion": "2010-04-01",
        }
        if messaging_service_sid:
            callback["MessagingServiceSid"] = messaging_service_sid
        threading.Thread(
            target=_send_status_callback,
            args=(state, record, status_callback, callback),
            name=f"status-callback-{message_sid}",
            daemon=True,
        ).start()
    if fault:
        server_error = _twilio_error(500, 20500, "Internal Server Error")
        return _after_taking_it(fault, server_error, (jsonify(resource), 201))
    return jsonify(resource), 201


@bp.get("/2010-04-01/Accounts/<account_sid>/Messages.json")
def twilio_list_messages(account_sid: str) -> Any:
    """Twilio's Messages list, filtered by `To`, newest first, one page."""
    if not _twilio_credentials_accepted(account_sid, _state().twilio_auth_token):
        return _twilio_error(401, 20003, "Authenticate")
    wanted = request.args.get("To")
    page_size = min(int(request.args.get("PageSize", "50") or 50), 1000)
    resources = [
        message["resource"]
        for message in reversed(_state().snapshot())
        if message["provider"] == "twilio" and (not wanted or message["to"] == wanted)
    ][:page_size]
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
    return jsonify(
        {
            "messages": resources,
            "end": max(len(resources) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }
    )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _after_taking_it(fault: Fault, server_error: tuple[Any, int], answer: Any) -> Any:
    """The answer to a send the simulator recorded, spoiled as `fault` says."""
    if fault.kind == "slow":
        time.sleep(fault.delay)
        return answer  # to a client that has long given up
    if fault.kind == "reset":
        connection = request.environ.get("werkzeug.socket")
        if connection is not None:
            # SO_LINGER 0: close() sends a TCP reset instead of a polite FIN.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
        return "", 500
    return server_error


def _twilio_credentials_accepted(account_sid: str, auth_token: str) -> bool:
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return False
    # Twilio takes the account SID, or an API key SID (SK...) with its secret, as the username.
    username = credentials.username or ""
    if username != account_sid and not username.startswith("SK"):
        return False
    return secrets.compare_digest((credentials.password or "").encode(), auth_token.encode())


def _send_status_callback(
    state: SimulatorState, record: dict[str, Any], url: str, params: dict[str, str]
) -> None:
    """POST a status callback signed as Twilio signs it, and note the outcome on the message."""
    time.sleep(state.status_callback_delay or 0)
    signature = RequestValidator(state.twilio_auth_token).compute_signature(url, params)
    outcome: dict[str, Any] = {"status": params["MessageStatus"], "url": url}
    try:
        response = requests.post(url, data=params, headers={SIGNATURE_HEADER: signature}, timeout=10)
        outcome["response_status"] = response.status_code
    except requests.RequestException as exc:
        # Twilio does not retry a failed status callback either; the note is for whoever debugs.
        outcome["error"] = type(exc).__name__
        logger.warning("Status callback for %s failed: %s", params["MessageSid"], type(exc).__name__)
    with state.lock:
        record["status_callbacks"].append(outcome)


# --- Inspection -------------------------------------------------------------------------------


@bp.get("/_simulator/messages")
def list_messages() -> Any:
    """Recorded messages, oldest first, as a JSON list; `?provider=` and `?to=` filter it, `?after=N` skips
    the first N recorded."""
    messages = _state().snapshot(max(0, request.args.get("after", 0, type=int)))
    for name in ("provider", "to"):
        wanted = request.args.get(name)
        if wanted:
            messages = [message for message in messages if message[name] == wanted]
    return jsonify(messages)


@bp.delete("/_simulator/messages")
def clear_messages() -> Any:
    """Forget every recorded message."""
    _state().clear()
    return "", 204


@bp.post("/_simulator/faults")
def add_fault() -> Any:
    """Spoil the next sends: see the module's documentation."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": "a JSON object is required"}), 400
    try:
        fault = Fault(**body)
    except (TypeError, ValueError) as exc:
        return jsonify({"error": str(exc)}), 400
    _state().add_fault(fault)
    return "", 204


@bp.delete("/_simulator/faults")
def clear_faults() -> Any:
    """Forget the faults not used yet."""
    _state().clear_faults()
    return "", 204


# --- Serving ----------------------------------------------------------------------------------


class SimulatorServer:
    """The simulator served on a real local port in a background thread (tests, e2e launchers)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.base_url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(
            # A short poll keeps stop() quick; the default half second adds up across tests.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-simulator",
            daemon=True,
        )

    def start(self) -> SimulatorServer:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port (printed on start)")
    parser.add_argument(
        "--twilio-auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN", DEFAULT_TWILIO_AUTH_TOKEN),
        help="Twilio password accepted and status-callback signing key (default: $TWILIO_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--status-callback-delay",
        type=float,
        default=None,
        help="seconds before a signed 'delivered' status callback; omitted: no callbacks",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="log warnings only, not a line per request (benchmarks)"
    )
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    # werkzeug sets its own logger to INFO unless it has a level.
    logging.getLogger("werkzeug").setLevel(level)
    app = create_simulator_app(args.twilio_auth_token, args.status_callback_delay)
    server = make_server(args.host, args.port, app, threaded=True)
    # One parseable line, flushed, so a launcher using --port 0 learns the address.
    print(f"provider simulator listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
