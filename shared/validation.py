"""Input rules every service's schemas share."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from typing import Any

from marshmallow import ValidationError, fields

from shared.settings import Limits

# Where the edge keeps the app's limits (shared.edge.install_edge).
LIMITS = "closeloop.limits"


def current_limits() -> Limits:
    """The limits of the app serving this request; the defaults outside one (unit tests of schemas)."""
    # A worker or a clock validates events without Flask: not loaded, there is no app to ask.
    flask = sys.modules.get("flask")
    limits = flask.current_app.extensions.get(LIMITS) if flask and flask.has_app_context() else None
    return limits if isinstance(limits, Limits) else Limits()


class StorableString(fields.String):
    """Text PostgreSQL can store: refused at the edge with a 422, never a 500 from the database."""

    default_error_messages = {"unstorable": "Contains a NUL character or a lone surrogate."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise self.make_error("unstorable") from error
        if "\x00" in text:
            raise self.make_error("unstorable")
        return text


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 time with its offset, handed on in UTC; one that leaves the years 1-9999 in UTC is refused
    (``0001-01-01T00:00:00+14:00``) instead of overflowing later."""

    default_error_messages = {"out_of_range": "Out of range: in UTC it must fall within the years 1 to 9999."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as error:
            raise self.make_error("out_of_range") from error


def within_properties_limit(value: Any) -> None:
    """A CRM's free-form properties or attributes: at most ``MAX_PROPERTIES_BYTES`` as JSON."""
    limit = current_limits().properties_bytes
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > limit:
        raise ValidationError(f"At most {limit} bytes as JSON.")
