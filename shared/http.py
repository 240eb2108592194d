"""What every service's Flask app has in common: problem-JSON errors and its OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

JSON_PREFIXES = ("/v1/", "/webhooks/", "/openapi/")


class DomainError(Exception):
    """A request the domain refuses; ``status`` says how the API answers it."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFoundError(DomainError):
    status = 404
    title = "Not found"


class ConflictError(DomainError):
    status = 409
    title = "Conflict"


def problem(status: int, title: str, detail: str | None = None, errors: Any = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def create_api(app: Flask, service: str, version: str = "1.0.0") -> Api:
    """flask-smorest set-up: the OpenAPI document is served at /openapi/<service>.json."""
    app.config.setdefault("API_TITLE", f"Closeloop {service}")
    app.config.setdefault("API_VERSION", version)
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/openapi")
    app.config.setdefault("OPENAPI_JSON_PATH", f"{service}.json")
    api = Api(app)
    install_problem_handlers(app)
    return api


def install_problem_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):
        return problem(error.status, error.title, error.detail, error.errors)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if not request.path.startswith(JSON_PREFIXES):
            return error
        data = getattr(error, "data", None) or {}
        # webargs puts field errors under the location they came from: {"json": {"field": [...]}}.
        messages = data.get("messages")
        if isinstance(messages, dict) and len(messages) == 1:
            messages = next(iter(messages.values()))
        if isinstance(messages, list):  # about the body as a whole, such as "Invalid JSON body."
            return problem(error.code or 400, error.name, " ".join(map(str, messages)))
        detail = "Some fields are invalid." if messages else error.description
        return problem(error.code or 500, error.name, detail, messages)
