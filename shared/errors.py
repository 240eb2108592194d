"""The refusals use cases raise, each with the HTTP status the API answers it with (``shared.http``).

Plain exceptions in a module of their own, so that a worker or a clock running those use cases does not
load Flask, flask-smorest and apispec to import them.
"""

from __future__ import annotations

from typing import Any


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


class ForbiddenError(DomainError):
    """The principal's role does not allow the request."""

    status = 403
    title = "Forbidden"


class ConflictError(DomainError):
    status = 409
    title = "Conflict"
