"""The problem+json body (RFC 9457) every API error is answered with."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

PROBLEM_MIMETYPE = "application/problem+json"
# Paths whose errors are answered as problem+json; pages answer theirs as HTML.
JSON_PREFIXES = ("/v1/", "/webhooks/", "/openapi/", "/delighted/")


def problem(status: int, title: str, detail: str | None = None, errors: Any = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    return response
