from flask import Flask
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from shared.http import PROBLEM_MIMETYPE, ProblemSchema, create_api, problem


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
