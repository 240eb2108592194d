from flask import Flask, Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from werkzeug.test import EnvironBuilder
from werkzeug.urls import iri_to_uri

from shared.http import PROBLEM_MIMETYPE, AnswerResponse, ProblemSchema, create_api, problem


class _ItemSchema(Schema):
    name = fields.String(required=True)


def _app() -> Flask:
    app = Flask(__name__)
    blp = Blueprint("items", __name__, url_prefix="/v1")

    @blp.route("/items")
    class Items(MethodView):
        @blp.arguments(_ItemSchema)
        @blp.response(201, _ItemSchema)
        def post(self, item):
            return item

    create_api(app, "demo").register_blueprint(blp)
    return app


def test_problem_body_has_the_documented_fields_only():
    documented = set(ProblemSchema().fields)
    required = {name for name, field in ProblemSchema().fields.items() if field.required}
    with Flask(__name__).app_context():
        full = problem(422, "Unprocessable Entity", "Some fields are invalid.", {"name": ["Missing."]})
        bare = problem(404, "Not found")
    assert set(full.get_json()) == documented
    assert set(bare.get_json()) == required


def test_automatic_422_and_default_error_are_documented_as_problem_json():
    document = _app().test_client().get("/openapi/demo.json").get_json()
    responses = document["paths"]["/v1/items"]["post"]["responses"]

    for status, name in (("422", "UNPROCESSABLE_ENTITY"), ("default", "DEFAULT_ERROR")):
        assert responses[status] == {"$ref": f"#/components/responses/{name}"}
        content = document["components"]["responses"][name]["content"]
        assert content == {PROBLEM_MIMETYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert responses["201"]["content"].keys() == {"application/json"}


def test_nested_field_errors_point_back_at_the_errors_mapping():
    document = _app().test_client().get("/openapi/demo.json").get_json()
    errors = document["components"]["schemas"]["Problem"]["properties"]["errors"]

    nested = errors["additionalProperties"]["oneOf"][1]["$ref"]
    target = document
    for part in nested.removeprefix("#/").split("/"):
        target = target[part]
    assert target == errors


def test_a_location_is_answered_as_werkzeug_encodes_it_and_in_its_place():
    app = Flask(__name__)
    create_api(app, "demo")

    @app.get("/moved/<path:target>")
    def moved(target):
        return "", 303, {"X-Before": "1", "Location": target, "X-After": "2"}

    client = app.test_client()
    plain = client.get("/moved/https://cx.example:8443/v1/events/evt-1")
    assert plain.headers["Location"] == "https://cx.example:8443/v1/events/evt-1"
    assert [name for name, _ in plain.headers][:3] == ["X-Before", "Location", "X-After"]
    # Anything Werkzeug would change is still changed by it: non-ASCII, spaces, an upper-case host.
    assert client.get("/moved/https://cx.example/é s").headers["Location"] == "https://cx.example/%C3%A9%20s"
    assert client.get("/moved/https://CX.example/a").headers["Location"] == "https://cx.example/a"


def test_a_hook_made_for_one_request_runs_on_that_request_only():
    from flask import after_this_request

    app = Flask(__name__)
    create_api(app, "demo")
    seen = []

    @app.get("/once/<n>")
    def once(n):
        @after_this_request
        def note(response):
            seen.append(n)
            response.headers["X-Note"] = n
            return response

        return "ok"

    client = app.test_client()
    assert [client.get(f"/once/{n}").headers["X-Note"] for n in "abc"] == ["a", "b", "c"]
    assert seen == ["a", "b", "c"]


def _werkzeug_headers(response, environ) -> list:
    return list(Response.get_wsgi_headers(response, environ).items())


def test_an_answer_with_a_uri_location_sends_the_headers_werkzeug_would():
    app = _app()
    assert app.response_class is AnswerResponse
    environ = EnvironBuilder(path="/v1/events", base_url="http://testserver").get_environ()
    cases = []
    for status, location in [
        (202, "http://testserver/v1/events/0f8c4e2e-1111-2222-3333-444455556666"),
        (200, "https://surveys.example.com/base/v1/events/evt_1.a-b"),
        (204, "http://testserver/v1/events/x"),  # Werkzeug trims a 204's headers: its own answer
        (202, "http://bücher.example/v1/events/ä"),  # an IRI: no view says it is a URI
    ]:
        with app.test_request_context():
            response = app.json.response({"status": "accepted", "links": {"event": location}})
        response.status_code = status
        response.headers.add("Location", location)
        response.headers["X-Request-Id"] = "req-1"
        if iri_to_uri(location) == location:  # as the intake's view checks it
            response.uri_location = location
        cases.append((response, _werkzeug_headers(response, environ)))
    for response, werkzeug in cases:
        assert list(response.get_wsgi_headers(environ).items()) == werkzeug
    assert dict(cases[3][1])["Location"] == "http://xn--bcher-kva.example/v1/events/%C3%A4"
    # A Location changed after the view said it was a URI is Werkzeug's to convert.
    response = cases[0][0]
    response.headers["Location"] = "/v1/events/ä"
    assert list(response.get_wsgi_headers(environ).items()) == _werkzeug_headers(response, environ)
    assert response.get_wsgi_headers(environ)["Location"] == "/v1/events/%C3%A4"
