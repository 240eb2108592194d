"""What every service's Flask app has in common: problem-JSON errors and its OpenAPI document."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Flask, Response, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from shared.edge import install_edge
from shared.errors import ConflictError, DomainError, ForbiddenError, NotFoundError  # noqa: F401 (below)
from shared.operations import install_operations
from shared.problems import JSON_PREFIXES, PROBLEM_MIMETYPE, problem
from shared.settings import Limits

# The name ProblemApi registers ProblemSchema under; the recursive field errors point into it.
PROBLEM_SCHEMA_NAME = "Problem"
_FIELD_ERRORS_REF = f"#/components/schemas/{PROBLEM_SCHEMA_NAME}/properties/errors"

# The domain's refusals (DomainError and its kinds) live in shared.errors, which use cases import without
# loading Flask; this module answers them, and web modules may import them from here.


class ProblemSchema(Schema):
    """The problem+json body (RFC 9457) that ``problem()`` answers every API error with.

    It only documents: ``problem()`` builds the body, so keep the two in step.
    """

    type = fields.String(
        required=True,
        metadata={"description": "A URI naming the kind of problem; always about:blank for now."},
    )
    title = fields.String(required=True, metadata={"description": "A short summary, such as Not Found."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "What went wrong with this request."})
    errors = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "Field name to its messages; a nested or list field has this mapping again.",
            # marshmallow fields cannot say "this mapping again", so the schema is given as it is.
            "additionalProperties": {
                "oneOf": [{"type": "array", "items": {"type": "string"}}, {"$ref": _FIELD_ERRORS_REF}]
            },
        },
    )


class _ProblemContentPlugin(BasePlugin):
    """Gives an operation's own error responses (``@blp.alt_response(401, description=...)``, which carry no
    schema) the problem+json body the app answers them with."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **_kwargs: Any
    ) -> None:
        problem_body = {PROBLEM_MIMETYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"}}}
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if str(code)[:1] in ("4", "5") and isinstance(response, dict) and not response.get("content"):
                    response["content"] = dict(problem_body)


class ProblemApi(Api):
    """An ``Api`` whose OpenAPI document describes every error response as ``ProblemSchema`` problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *, extra_plugins: Any = None, **options: Any) -> None:
        super()._init_spec(extra_plugins=[*(extra_plugins or ()), _ProblemContentPlugin()], **options)

    def _register_responses(self) -> None:
        # flask-smorest documents error responses with DEFAULT_RESPONSE_CONTENT_TYPE, the successful answers'
        # application/json; its maintainer's advice for another shape is to override this method
        # (marshmallow-code/flask-smorest#223). The automatic 422 of @blp.arguments and the "default"
        # response of every operation are $refs to the components registered here.
        self.spec.components.schema(PROBLEM_SCHEMA_NAME, schema=self.ERROR_SCHEMA)
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            # Unlike flask-smorest, which gives 2xx and 3xx names the error schema too: they carry no problem.
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def create_api(app: Flask, service: str, version: str = "1.0.0") -> Api:
    """flask-smorest set-up: the OpenAPI document is served at /openapi/<service>.json.

    Its error responses are documented as the problem+json that ``install_problem_handlers`` answers.
    """
    app.config.setdefault("API_TITLE", f"Closeloop {service}")
    app.config.setdefault("API_VERSION", version)
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/openapi")
    app.config.setdefault("OPENAPI_JSON_PATH", f"{service}.json")
    # Every operation is for staff or machines unless it says otherwise (``OPEN_TO_ALL``): the access guard.
    app.config.setdefault("API_SPEC_OPTIONS", {"security": [{"apiKey": []}, {"staffSession": []}]})
    # Names and comments as customers wrote them ("Ayşe"), not as \u escapes.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    api = ProblemApi(app)
    api.spec.components.security_scheme(
        "apiKey", {"type": "http", "scheme": "bearer", "description": "closeloop create-api-key"}
    )
    api.spec.components.security_scheme(
        "staffSession", {"type": "apiKey", "in": "cookie", "name": "closeloop_session"}
    )
    install_problem_handlers(app)
    # The app's runtime, set by its create_app before this call: its settings hold the limits.
    runtime = app.extensions.get(f"closeloop.{service}")
    settings = getattr(runtime, "settings", None)
    install_edge(app, settings.limits if settings is not None else Limits())
    install_operations(app, service, runtime)
    if app.response_class is Response:
        app.response_class = AnswerResponse
    return api


class AnswerResponse(Response):
    """Flask's response, which a view may tell that its ``Location`` header is a URI already
    (``uri_location``): Werkzeug then has nothing to change in its headers, and they are sent as they are
    instead of converting that URL from an IRI again (about 15 us, a tenth of the intake's duplicate answer).
    Any other response, or one whose headers Werkzeug would change, is Werkzeug's as before.
    """

    # The Location value the view built as a URI (``werkzeug.urls.iri_to_uri`` gives it back unchanged).
    uri_location: str | None = None

    def get_wsgi_headers(self, environ: Any) -> Headers:
        if (
            self.uri_location is None
            or self.autocorrect_location_header
            or self.status_code not in (200, 201, 202)  # no status whose headers Werkzeug trims
        ):
            return super().get_wsgi_headers(environ)
        location = length = None
        for key, value in self.headers:
            lowered = key.lower()
            if lowered == "location":
                location = value
            elif lowered == "content-length":
                length = value
            elif lowered == "content-location":
                return super().get_wsgi_headers(environ)
        if location != self.uri_location or length is None:
            return super().get_wsgi_headers(environ)
        # What Werkzeug answers here: a copy, its Location set to iri_to_uri(location), which is location.
        return Headers(self.headers)


# ``@blp.doc(**OPEN_TO_ALL)`` on an operation the guard leaves open (it checks a signature of its own).
OPEN_TO_ALL: dict[str, Any] = {"security": []}


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
        response = problem(error.code or 500, error.name, detail, messages)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
