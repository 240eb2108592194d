"""The problem+json body (RFC 9457) every API error is answered with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, has_request_context, jsonify, request

PROBLEM_MIMETYPE = "application/problem+json"
# Paths whose errors are answered as problem+json; pages answer theirs as HTML.
JSON_PREFIXES = ("/v1/", "/webhooks/", "/openapi/", "/delighted/")


# An API that must answer errors in another shape (Delighted's, for its clients) registers a builder for its
# path prefix here, in ``app.extensions``: the shared edge's refusals then come in that shape too.
ERROR_SHAPES = "closeloop.error_shapes"
ErrorShape = Callable[[int, str, Any], Response]


def register_error_shape(app: Any, prefix: str, build: ErrorShape) -> None:
    """Answer errors under ``prefix`` with ``build(status, message, errors)`` instead of problem+json."""
    app.extensions.setdefault(ERROR_SHAPES, {})[prefix] = build


def problem(status: int, title: str, detail: str | None = None, errors: Any = None) -> Response:
    if has_request_context():
        for prefix, build in current_app.extensions.get(ERROR_SHAPES, {}).items():
            if request.path.startswith(prefix):
                return build(status, detail or title, errors)
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    return response
