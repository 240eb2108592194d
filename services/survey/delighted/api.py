"""Delighted's v1 REST API under ``/delighted/v1/``, for integrations written against its official clients.

Each path also answers with the ``.json`` suffix Delighted's documentation uses. Every request carries a
Closeloop API key as HTTP Basic user name (checked here, once, for the whole blueprint: the staff guard
reads only Bearer keys and sessions), is counted against the key's rate, and is answered in Delighted's
shapes: Unix-second times, string ids, ``{"status", "message", "errors"}`` error bodies.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, jsonify, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException

from shared.http import DomainError
from shared.identity.web import public
from shared.problems import register_error_shape

from . import service
from .domain import RateLimiter, SuppressionKind, api_key_from_basic
from .schemas import (
    BounceOutSchema,
    DelightedErrorSchema,
    ExpandQuerySchema,
    ListQuerySchema,
    MetricsQuerySchema,
    MetricsSchema,
    OkSchema,
    PeopleQuerySchema,
    PersonInSchema,
    PersonOutSchema,
    PersonSentSchema,
    SurveyResponseInSchema,
    SurveyResponseOutSchema,
    SurveyResponsesQuerySchema,
    SurveyResponseUpdateSchema,
    UnsubscribeInSchema,
    UnsubscribeOutSchema,
)
from .unit_of_work import PeopleFilter, ResponsesFilter

log = logging.getLogger(__name__)

PREFIX = "/delighted/v1"
SECURITY_SCHEME = "delightedBasic"
_LIMITER = "closeloop.delighted.rate_limiter"
_SECURED = {"security": [{SECURITY_SCHEME: []}]}

blp = Blueprint(
    "delighted",
    __name__,
    url_prefix=PREFIX,
    description="Delighted-compatible API: Basic auth with a Closeloop API key as the user name.",
)


def register(app: Flask, api: Api) -> None:
    """Serve the Delighted API on ``app``, documented in ``api``'s OpenAPI document."""
    runtime = app.extensions["closeloop.survey"]
    app.extensions[_LIMITER] = RateLimiter(runtime.settings.delighted_rate_limit_per_minute, time.time)
    api.spec.components.security_scheme(
        SECURITY_SCHEME,
        {"type": "http", "scheme": "basic", "description": "A Closeloop API key as user name, no password."},
    )
    api.register_blueprint(blp)
    _document_delighted_errors(api)
    # Refusals of the shared edge (a body too large, NaN, a NUL) in Delighted's shape too.
    register_error_shape(app, PREFIX + "/", _error)


def _document_delighted_errors(api: Api) -> None:
    """Every error of these operations is Delighted's ``{"status", "message", "errors"}``, not problem+json:
    the document says so, in place of the problem+json responses flask-smorest adds to each operation."""
    api.spec.components.schema("DelightedError", schema=DelightedErrorSchema)
    error = {"$ref": "#/components/responses/DELIGHTED_ERROR"}
    api.spec.components.response(
        "DELIGHTED_ERROR",
        {
            "description": "Delighted's error body; 429 carries Retry-After in seconds.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DelightedError"}}},
        },
    )
    # apispec keeps the paths it was given in ``_paths``; there is no public way to change one afterwards.
    for path, operations in api.spec._paths.items():
        if not path.startswith(PREFIX):
            continue
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue  # the path's parameters
            responses = operation.get("responses", {})
            for status in [s for s in responses if s == "default" or int(s) >= 400]:
                responses[status] = error
            responses.update({"401": error, "429": error})


def _runtime():
    return current_app.extensions["closeloop.survey"]


def _error(status: int, message: str, errors: Any = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


@blp.before_request
def _authenticate() -> Response | None:
    key = api_key_from_basic(request.headers.get("Authorization"))
    principal = _runtime().identity.verify_api_key(key) if key else None
    if principal is None:
        return _error(
            401, "Invalid API key.", headers={"WWW-Authenticate": 'Basic realm="Closeloop Delighted API"'}
        )
    g.principal = principal
    wait = current_app.extensions[_LIMITER].allow(principal.id)
    if wait is not None:
        return _error(429, "Too many requests.", headers={"Retry-After": str(wait)})
    return None


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> Response:
    return _error(error.status, error.detail, error.errors)


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    messages = (getattr(error, "data", None) or {}).get("messages")
    if isinstance(messages, dict) and len(messages) == 1:
        messages = next(iter(messages.values()))  # webargs files errors under their location
    if isinstance(messages, list):
        return _error(error.code or 400, " ".join(map(str, messages)))
    if messages:
        return _error(error.code or 422, "Validation failed.", messages)
    return _error(error.code or 500, error.description or error.name)


def route(rule: str):
    """Register a view at ``rule`` and at ``rule.json``, as Delighted's documentation writes its paths."""

    def register_view(view: type[MethodView]) -> type[MethodView]:
        blp.route(rule)(view)
        blp.route(rule + ".json", endpoint=f"{view.__name__}Json")(view)
        return view

    return register_view


def _public_url(path: str) -> str:
    """Where clients reach ``path`` of this API: survey's public address (PUBLIC_BASE_URL, SURVEY_PUBLIC_URL),
    as for every link Closeloop hands out, not the address a proxy in front of it was asked on."""
    return _runtime().settings.public_url_for("survey") + path


def _link_next(**query: Any) -> str:
    """A Link header to the same path with ``query`` (absolute: both clients follow it as a full URL)."""
    values = {key: value for key, value in query.items() if value is not None}
    return f'<{_public_url(request.path)}?{urlencode(values)}>; rel="next"'


def _unix_args(*names: str) -> dict[str, Any]:
    return {name: request.args.get(name) for name in names}


@route("/people")
@public  # HTTP Basic with an API key, checked by _authenticate
class People(MethodView):
    @blp.arguments(PersonInSchema)
    @blp.response(200, PersonSentSchema)
    @blp.doc(**_SECURED)
    def post(self, fields):
        """Create or update a person by email or phone number, and survey them unless send is false."""
        return service.send_to_person(_runtime(), fields)

    @blp.arguments(PeopleQuerySchema, location="query")
    @blp.response(200, PersonOutSchema(many=True))
    @blp.doc(**_SECURED)
    def get(self, query):
        """People in creation order; the Link header's rel="next" names the next page."""
        where = PeopleFilter(query["email"], query["phone_number"], query["since"], query["until"])
        page, cursor = service.list_people(_runtime(), where, query["page_info"], query["per_page"])
        headers = {}
        if cursor:
            headers["Link"] = _link_next(
                per_page=query["per_page"],
                page_info=cursor,
                **{k: request.args.get(k) for k in ("email", "phone_number", "since", "until")},
            )
        return page, 200, headers


@blp.route("/people/<path:identifier>")
@public
class Person(MethodView):
    @blp.response(202, OkSchema)
    @blp.doc(**_SECURED)
    def delete(self, identifier):
        """Erase a person (id, email:..., phone_number:+E164) and everything about them, everywhere."""
        service.delete_person(_runtime(), identifier)
        return {"ok": True}


@blp.route("/people/<path:email>/survey_requests/pending")
@public
class PendingSurveyRequests(MethodView):
    @blp.response(200, OkSchema)
    @blp.doc(**_SECURED)
    def delete(self, email):
        """Cancel the person's Delighted surveys still waiting for their delay."""
        service.delete_pending_survey_requests(_runtime(), email.removesuffix(".json"))
        return {"ok": True}


blp.add_url_rule(
    "/people/<path:email>/survey_requests/pending.json",
    view_func=PendingSurveyRequests.as_view("PendingSurveyRequestsJson"),
)


def _response_out(found: tuple, expand: bool) -> dict[str, Any]:
    response, invitation, customer, *person = found
    permalink = _public_url(f"{PREFIX}/survey_responses/{response.id}")
    return service.response_json(
        response, invitation, customer, permalink, person[0] if expand and person else None
    )


@route("/survey_responses")
@public
class SurveyResponses(MethodView):
    @blp.arguments(SurveyResponseInSchema)
    @blp.response(200, SurveyResponseOutSchema)
    @blp.doc(**_SECURED)
    def post(self, fields):
        """Add a response for a person; it is a survey response like any other (NPS, queue, sentiment)."""
        return _response_out(service.add_response(_runtime(), fields), expand=False)

    @blp.arguments(SurveyResponsesQuerySchema, location="query")
    @blp.response(200, SurveyResponseOutSchema(many=True))
    @blp.doc(**_SECURED)
    def get(self, query):
        """Responses oldest first (order=desc, asc:updated_at, desc:updated_at), page by page."""
        where = ResponsesFilter(
            query["since"],
            query["until"],
            query["updated_since"],
            query["updated_until"],
            query["person_id"],
            query["person_email"],
        )
        rows = service.list_responses(_runtime(), where, query["order"], query["page"], query["per_page"])
        return [_response_out(row, "person" in query["expand"]) for row in rows]

    @blp.arguments(SurveyResponseUpdateSchema)
    @blp.response(200, SurveyResponseOutSchema)
    @blp.doc(**_SECURED)
    def put(self, fields):
        """Node's client saves a response here, with its id in the body."""
        response_id = fields.pop("id", None)
        if not isinstance(response_id, str | int):
            raise service.UnprocessableError("Which response?", {"id": ["Missing."]})
        return _response_out(service.update_response(_runtime(), str(response_id), fields), expand=False)


@blp.route("/survey_responses/<response_id>")
@public
class SurveyResponse(MethodView):
    @blp.arguments(ExpandQuerySchema, location="query")
    @blp.response(200, SurveyResponseOutSchema)
    @blp.doc(**_SECURED)
    def get(self, query, response_id):
        """One response."""
        found = service.get_response(_runtime(), response_id.removesuffix(".json"))
        return _response_out(found, "person" in query["expand"])

    @blp.arguments(SurveyResponseUpdateSchema)
    @blp.response(200, SurveyResponseOutSchema)
    @blp.doc(**_SECURED)
    def put(self, fields, response_id):
        """Change a response's score, comment or person_properties (the clients send the whole object)."""
        fields.pop("id", None)
        found = service.update_response(_runtime(), response_id.removesuffix(".json"), fields)
        return _response_out(found, expand=False)


@route("/metrics")
@public
class Metrics(MethodView):
    @blp.arguments(MetricsQuerySchema, location="query")
    @blp.response(200, MetricsSchema)
    @blp.doc(**_SECURED)
    def get(self, query):
        """NPS and the count and whole-number share of promoters, passives and detractors."""
        return service.metrics(_runtime(), query["since"], query["until"])


@route("/unsubscribes")
@public
class Unsubscribes(MethodView):
    @blp.arguments(UnsubscribeInSchema)
    @blp.response(200, OkSchema)
    @blp.doc(**_SECURED)
    def post(self, fields):
        """Send no more surveys to this email (dispatch records the opt-out)."""
        service.unsubscribe(_runtime(), fields["person_email"])
        return {"ok": True}

    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, UnsubscribeOutSchema(many=True))
    @blp.doc(**_SECURED)
    def get(self, query):
        """Unsubscribes made through this API or imported from Delighted, oldest first."""
        return service.list_suppressions(
            _runtime(),
            SuppressionKind.UNSUBSCRIBE,
            query["since"],
            query["until"],
            query["page"],
            query["per_page"],
        )


@route("/bounces")
@public
class Bounces(MethodView):
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, BounceOutSchema(many=True))
    @blp.doc(**_SECURED)
    def get(self, query):
        """Email bounces the providers reported to dispatch, and imported ones, oldest first."""
        return service.list_suppressions(
            _runtime(),
            SuppressionKind.BOUNCE,
            query["since"],
            query["until"],
            query["page"],
            query["per_page"],
        )
