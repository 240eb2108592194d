"""The edge of every service's app: what a request may bring before any view reads it.

Input reaches the database only when it can be stored there. Refused here, once for every service, with a
problem naming the field: a body over its route's size limit (413); JSON that is not plain JSON (NaN,
Infinity, numbers that overflow a float or a 64-bit integer) or nests deeper than the limit (400; Python's
parser would otherwise raise RecursionError at about a thousand levels); a NUL or a lone surrogate in a JSON
string, a NUL in the query string or a form (422: PostgreSQL's text cannot hold them), or in the path (404).
Limits that belong to one field (a phone number, a comment) stay with that field's schema.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from shared.problems import problem
from shared.settings import Limits
from shared.validation import LIMITS

_INT64 = 2**63
NUL_MESSAGE = "Contains a NUL character."
# Where the edge keeps the JSON body it parsed (on ``g``), for a view that reads it without parsing again.
_PARSED_BODY = "_closeloop_json_body"


class HostileInput(ValueError):
    """A request body or parameter that cannot be taken: ``errors`` maps the field to its messages.

    400 for a body that is not plain JSON; 422, like any field a schema refuses, for text that cannot be
    stored (a NUL, a lone surrogate) in a body or a parameter.
    """

    def __init__(self, detail: str, errors: dict[str, Any] | None = None, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.status = status


@dataclass(frozen=True)
class _Refused:
    """Stands in for a value the parser met, so the walk afterwards can name the field it sat in."""

    reason: str


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a number JSON allows.")


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused("Too large a number.")


def _int(text: str) -> int | _Refused:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return _Refused("Too large a number.")
    return value if -_INT64 <= value < _INT64 else _Refused("Too large a number.")


class _StrictDecoder(threading.local):
    """A JSON decoder per thread that notes whether it met a value to refuse: json.loads given these hooks
    would build a decoder (and its scanner) for every body."""

    def __init__(self) -> None:
        self.refused = False
        self.decode = json.JSONDecoder(
            parse_constant=self._noted(_constant),
            parse_float=self._noted(_float),
            parse_int=self._noted(_int),
        ).decode

    def _noted(self, parse: Any) -> Any:
        def parse_and_note(token: str) -> Any:
            value = parse(token)
            if isinstance(value, _Refused):
                self.refused = True
            return value

        return parse_and_note


_DECODER = _StrictDecoder()


def strict_json_loads(body: bytes | str, max_depth: int) -> Any:
    """``body`` as JSON, refusing what cannot be stored or nests deeper than ``max_depth``.

    Raises ``HostileInput`` naming the offending field (its path, as marshmallow's errors nest).
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as error:
        raise HostileInput("Invalid JSON body.") from error
    decoder = _DECODER
    decoder.refused = False
    try:
        if text.startswith("\ufeff"):
            raise ValueError("Unexpected UTF-8 BOM")  # as json.loads refuses it
        value = decoder.decode(text)
    except RecursionError:
        path = _too_deep_path(text, max_depth)
        raise HostileInput(*_at(path, f"Nested deeper than {max_depth} levels.")) from None
    except ValueError as error:
        raise HostileInput("Invalid JSON body.") from error
    if (
        not decoder.refused
        and isinstance(body, bytes)
        and "\\u" not in text
        and text.count("{") + text.count("[") <= max_depth
    ):
        # Nothing for the walk to find (the intake's hot path, issue 19): text decoded from UTF-8 holds a NUL
        # or a lone surrogate only as a \u escape (JSON refuses a raw NUL), and fewer containers than the
        # depth limit cannot nest deeper than it.
        return value
    found = _first_problem(value, max_depth)
    if found is not None:
        path, reason, status = found
        raise HostileInput(*_at(path, reason), status=status)
    return value


def unstorable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Contains a lone surrogate."
    return None


def _first_problem(value: Any, max_depth: int) -> tuple[list[str], str, int] | None:
    stack: list[tuple[Any, list[str]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Refused):
            return path, node.reason, 400
        if isinstance(node, str):
            reason = unstorable_text(node)
            if reason:
                return path, reason, 422
        elif isinstance(node, dict | list):
            if len(path) >= max_depth:
                return path, f"Nested deeper than {max_depth} levels.", 400
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in items:
                name = str(key)
                reason = unstorable_text(name) if isinstance(key, str) else None
                if reason:
                    return [*path, _printable(name)], f"Its name {reason[0].lower()}{reason[1:]}", 422
                stack.append((item, [*path, name]))
    return None


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]')


def _too_deep_path(text: str, max_depth: int) -> list[str]:
    """The path to the first container deeper than ``max_depth``, read from the tokens without parsing."""
    # Each open container: [is_object, current key or index, expecting a key].
    stack: list[list[Any]] = []
    for token in _tokens(text):
        if token in ("{", "["):
            if len(stack) >= max_depth:
                break
            stack.append([token == "{", None if token == "{" else 0, token == "{"])
        elif token in ("}", "]"):
            if stack:
                stack.pop()
        elif not stack:
            continue
        elif token == ",":
            top = stack[-1]
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif token == ":":
            stack[-1][2] = False
        elif stack[-1][0] and stack[-1][2]:
            stack[-1][1] = _printable(json.loads(token))
    return [str(key) for _, key, _ in stack if key is not None]


def _tokens(text: str) -> Iterator[str]:
    for match in _JSON_TOKEN.finditer(text):
        yield match.group()


def _printable(name: str) -> str:
    return name.encode("unicode_escape", "backslashreplace").decode("ascii")


def _at(path: list[str], message: str) -> tuple[str, dict[str, Any] | None]:
    """A detail and nested field errors ({"customer": {"name": [...]}}) for a problem at ``path``."""
    if not path:
        return message, None
    errors: dict[str, Any] = {path[-1]: [message]}
    for name in reversed(path[:-1]):
        errors = {name: errors}
    return f"{'.'.join(path)}: {message}", errors


def install_edge(app: Flask, limits: Limits) -> None:
    """Refuse hostile input in front of every view of ``app`` (before its access guard reads a form)."""
    app.extensions[LIMITS] = limits
    app.config["MAX_CONTENT_LENGTH"] = limits.request_bytes
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_hostile_input)
    app.register_error_handler(RequestEntityTooLarge, _too_large)


def _refuse_hostile_input() -> Response | None:
    limits: Limits = current_app.extensions[LIMITS]
    req = request._get_current_object()  # type: ignore[attr-defined]  # once, not through the proxy each time
    req.max_content_length = limits.body_bytes_for(req.path, req.method)
    try:
        _check_parameters(req)
        if req.is_json and (req.content_length or req.headers.get("Transfer-Encoding")):
            # webargs parses the body again with json.loads: safe now that its depth is known.
            setattr(g, _PARSED_BODY, strict_json_loads(req.get_data(cache=True), limits.json_depth))
    except HostileInput as refused:
        title = {400: "Bad request", 404: "Not found"}.get(refused.status, "Unprocessable Entity")
        return problem(refused.status, title, refused.detail, refused.errors)
    return None


def parsed_json_body() -> Any:
    """The JSON body this request's edge check parsed (as ``json.loads`` would), or None if it parsed none
    (no body, not a JSON content type)."""
    return g.get(_PARSED_BODY)


def _check_parameters(req: Request) -> None:
    for name, value in (req.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            # Nothing is stored under a name with a NUL in it: not found, as for any unknown token.
            raise HostileInput(f"{name}: {NUL_MESSAGE}", {name: [NUL_MESSAGE]}, 404)
    environ = req.environ
    # Without a query string or a content type there are no parameters: nothing is parsed to find none.
    sources: list[tuple[str, Any]] = list(req.args.items(multi=True)) if environ.get("QUERY_STRING") else []
    if environ.get("CONTENT_TYPE") and req.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sources += list(req.form.items(multi=True))
    for name, value in sources:
        if "\x00" in name:
            printable = _printable(name)
            raise HostileInput(f"{printable}: its name has a NUL", {printable: [NUL_MESSAGE]}, 422)
        if isinstance(value, str) and "\x00" in value:
            raise HostileInput(f"{name}: {NUL_MESSAGE}", {name: [NUL_MESSAGE]}, 422)


def _too_large(error: RequestEntityTooLarge) -> Response:
    limit = request.max_content_length
    detail = f"The body is over this route's limit of {limit} bytes." if limit else error.description
    return problem(413, "Content Too Large", detail)
