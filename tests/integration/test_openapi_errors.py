"""Each service's OpenAPI document describes the problem+json its API really answers errors with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from closeloop.services import SERVICES
from tests.conftest import crm_event, make_settings, migrated_service, signed_request, staff_client

PROBLEM = "application/problem+json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _bad_crm_event(client: FlaskClient) -> TestResponse:
    # Two bad fields of the nested customer: the field errors nest too.
    body, headers = signed_request(crm_event(email="not-an-email", preferred_channel="pigeon"))
    return client.post("/v1/events", data=body, headers=headers)


# service -> (path, method) of the operation, and a request it refuses with field errors.
INVALID_REQUESTS: dict[str, tuple[str, str, Callable[[FlaskClient], TestResponse]]] = {
    "survey": ("/v1/events", "post", _bad_crm_event),
    "dispatch": ("/v1/deliveries", "get", lambda client: client.get("/v1/deliveries")),
    "sentiment": ("/v1/analyze", "post", lambda client: client.post("/v1/analyze", json={})),
    "followup": ("/v1/tasks", "get", lambda client: client.get("/v1/tasks?page_size=0")),
}


@pytest.fixture(params=sorted(INVALID_REQUESTS))
def service(request, sqlite_url) -> Iterator[tuple[str, FlaskClient]]:
    name = request.param
    with migrated_service(name, make_settings(sqlite_url)) as runtime:
        yield name, staff_client(SERVICES[name].create_app(runtime), runtime.identity)


def _openapi(name: str, client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"/openapi/{name}.json")
    assert response.status_code == 200
    return response.get_json()


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local $refs ("#/components/...") until a node that is not one."""
    while "$ref" in node:
        reference = node["$ref"]
        assert reference.startswith("#/"), f"not a local reference: {reference}"
        node = document
        for part in reference[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def _violations(document: dict[str, Any], schema: dict[str, Any], value: Any, at: str = "$") -> list[str]:
    """What ``value`` breaks of the keywords our documents use; a JSON Schema validator is no dependency."""
    schema = _resolve(document, schema)
    found: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_JSON_TYPES[name](value) for name in types):
            return [f"{at}: {value!r} is not of type {types}"]
    if "oneOf" in schema:
        matches = [option for option in schema["oneOf"] if not _violations(document, option, value, at)]
        if len(matches) != 1:
            found.append(f"{at}: {value!r} matches {len(matches)} of oneOf, not exactly one")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{at}: {key!r} is required" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                found += _violations(document, properties[key], item, f"{at}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{at}: {key!r} is not a documented property")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += _violations(document, schema["additionalProperties"], item, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += _violations(document, schema["items"], item, f"{at}[{index}]")
    return found


def test_violations_catch_an_undocumented_error_body():
    document = {"components": {"schemas": {"Problem": {"type": "object", "additionalProperties": False}}}}
    schema = {"$ref": "#/components/schemas/Problem"}
    assert _violations(document, schema, {"code": 422}) == ["$: 'code' is not a documented property"]


def test_refused_request_answers_the_problem_json_its_422_documents(service):
    name, client = service
    path, method, send_invalid_request = INVALID_REQUESTS[name]
    document = _openapi(name, client)

    response = send_invalid_request(client)

    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["errors"], "the request was meant to fail on fields"

    documented = _resolve(document, document["paths"][path][method]["responses"]["422"])
    assert set(documented["content"]) == {PROBLEM}
    schema = documented["content"][PROBLEM]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}
    problem_schema = _resolve(document, schema)
    assert set(problem_schema["properties"]) == {"type", "title", "status", "detail", "errors"}
    assert set(problem_schema["required"]) == {"type", "title", "status"}
    assert _violations(document, schema, body) == []


def test_every_documented_error_response_is_problem_json(service):
    name, client = service
    document = _openapi(name, client)

    error_responses = [
        (f"{method.upper()} {path} {status}", _resolve(document, response))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
        for status, response in operation["responses"].items()
        if status == "default" or int(status) >= 400
    ]

    assert error_responses
    for where, response in error_responses:
        if " /delighted/" in where:
            # Delighted's API answers Delighted's error body, for its clients; documented as that.
            assert set(response["content"]) == {"application/json"}, where
            assert response["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/DelightedError"
            }, where
            continue
        # A response documented with a description only (no body promised) is left as it is.
        assert set(response.get("content", {PROBLEM: None})) == {PROBLEM}, where
        if PROBLEM in response.get("content", {}):
            assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}, where
