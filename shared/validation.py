"""Input rules every service's schemas share."""

from __future__ import annotations

from typing import Any

from marshmallow import fields


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
