"""Logs: one JSON object a line (``CLOSELOOP_LOG_JSON=true``), a request id carried from the HTTP request
through every event it causes, and email addresses and phone numbers masked in every line.

The request id comes from the caller's ``X-Request-Id`` header (or is made up), is answered in the same
header, is written into each event envelope emitted meanwhile (``request_id``), and is set again while a
consumer acts on that event: one id follows a CRM event from intake to the follow-up task.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "X-Request-Id"
# What a caller's id may look like; anything else is replaced (it goes into logs and events).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "closeloop_request_id", default=None
)

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
# E.164 (+ and 7 to 15 digits) and numbers written with 10 or more digits, spaces, dots or dashes between;
# fewer digits without a "+" are left alone, so that dates (2026-11-26) stay readable.
# Not next to a letter, digit, "/" or "-" (and without a "+", not before ":"): the digit groups of a UUID
# (an event id) and a date with its time are not phone numbers.
_PHONE = re.compile(r"(?<![\w/-])(?:\+\d(?:[ .-]?\d){6,14}(?![\w-])|\d(?:[ .-]?\d){9,14}(?![\w:-]))")


def current_request_id() -> str | None:
    return _current_request_id.get()


def accepted_request_id(value: str | None) -> str:
    """The caller's id when it is a plain token, else a new one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return secrets.token_hex(16)  # 32 hex digits, as uuid4().hex, without building a UUID


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _current_request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _current_request_id.reset(token)


@contextmanager
def request_id_scope(value: str | None):
    """Within the block, logs and emitted events carry ``value`` (a consumer acting on an event)."""
    token = _current_request_id.set(value)
    try:
        yield
    finally:
        _current_request_id.reset(token)


def mask_contacts(text: str) -> str:
    """``ana@example.com`` -> ``a***@***``, ``+14155550123`` -> ``+1***23``: enough to tell lines apart."""
    text = _EMAIL.sub(lambda match: f"{match.group(1)}***@***", text)
    return _PHONE.sub(lambda match: f"{match.group()[:2]}***{match.group()[-2:]}", text)


class MaskContacts(logging.Filter):
    """Masks email addresses and phone numbers in a record's message (its arguments already merged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: the handler reports it, as without this filter
            return True
        masked = mask_contacts(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        record.request_id = current_request_id()
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = mask_contacts(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(json_lines: bool, level: int = logging.INFO) -> None:
    """Mask contacts and add the request id on every handler of the root logger, formatted as JSON lines or
    plain text. Handlers already there stay (dramatiq's worker processes log through a pipe to their parent);
    without any, one writing to standard error is added."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if not any(isinstance(existing, MaskContacts) for existing in handler.filters):
            handler.addFilter(MaskContacts())
        if json_lines:
            handler.setFormatter(JsonLines())
        elif handler.formatter is None:
            handler.setFormatter(logging.Formatter(_PLAIN))
    root.setLevel(level)
