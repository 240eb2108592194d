"""The parts of the access guard that need no database: public marks, role checks, where sign-in leads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.http import PROBLEM_MIMETYPE, create_api
from shared.identity.web import (
    install_access_control,
    is_public,
    public,
    register_identity_pages,
    requires,
    same_origin_path,
)
from shared.principal import Principal, Role, current_principal
from shared.settings import Settings


@pytest.mark.parametrize(
    "target",
    ["/", "/queue", "/tasks/42?tab=notes", "/v1/tasks?owner=me&status=open", "/search?q=%2F%2Fx"],
)
def test_a_path_on_this_site_is_where_sign_in_leads(target):
    assert same_origin_path(target, "/home") == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "queue",
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "/queue\r\nSet-Cookie: x=y",
        "javascript:alert(1)",
        "http:/evil.example",
    ],
)
def test_anything_else_leads_to_the_default(target):
    assert same_origin_path(target, "/home") == "/home"


def test_public_marks_a_view_function_and_a_method_view_class():
    @public
    def answer_page():
        return "ok"

    @public
    class Webhook(MethodView):
        def post(self):
            return "ok"

    class Tasks(MethodView):
        def get(self):
            return "ok"

    def queue():
        return "ok"

    assert is_public(answer_page)
    assert is_public(Webhook.as_view("webhook"))
    assert not is_public(Tasks.as_view("tasks"))
    assert not is_public(queue)


class FakeIdentityStore:
    """The two questions the guard asks of the store, answered from dicts."""

    def __init__(self) -> None:
        self.keys = {f"{role}-key": Principal("api_key", f"k-{role}", f"{role} robot", role) for role in Role}
        self.users = {"u-ana": Principal("user", "u-ana", "Ana", Role.AGENT, "ana@example.com")}

    def verify_api_key(self, plaintext: str) -> Principal | None:
        return self.keys.get(plaintext)

    def principal_for_user(self, user_id: str) -> Principal | None:
        return self.users.get(user_id)


def _app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True

    @app.before_request
    def _registered_before_the_guard():
        if request.path == "/v1/leak":
            return {"secret": "answered by a hook before the guard"}

    @app.get("/v1/leak")
    def leak():
        return {}

    @app.get("/v1/whoami")
    def whoami():
        principal = current_principal()
        return {"kind": principal.kind, "role": principal.role}

    @app.get("/queue")
    def queue():
        return "the queue"

    @app.get("/answer/<token>")
    @public
    def answer(token):
        return {"principal": None if current_principal() is None else current_principal().id}

    @app.get("/reports")
    @requires(Role.MANAGER)
    def reports():
        return "reports"

    @app.get("/v1/reports")
    @requires(Role.MANAGER)
    def reports_json():
        return {"reports": []}

    blp = Blueprint("settings", __name__, url_prefix="/v1")

    @blp.route("/settings")
    class SettingsView(MethodView):
        @blp.response(200)
        def get(self):
            return {"settings": {}}

        @requires(Role.ADMIN)
        @blp.response(200)
        def put(self):
            return {"settings": {}}

    @blp.route("/events")
    @public
    class Events(MethodView):
        def post(self):
            return {"accepted": True}, 202

    create_api(app, "demo").register_blueprint(blp)
    install_access_control(app, FakeIdentityStore(), settings or Settings(secret_key="unit-test-key"))
    return app


def _bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {role}-key"}


def test_a_json_route_without_a_principal_answers_401_problem_json_with_a_bearer_challenge():
    response = _app().test_client().get("/v1/whoami")
    assert response.status_code == 401 and response.mimetype == PROBLEM_MIMETYPE
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="closeloop"'


def test_a_page_without_a_principal_redirects_to_sign_in_with_the_way_back():
    response = _app().test_client().get("/queue?status=open&owner=me")
    assert response.status_code == 303
    assert response.headers["Location"] == "/sign-in?next=%2Fqueue%3Fstatus%3Dopen%26owner%3Dme"


def test_a_refused_form_post_redirects_to_sign_in_without_a_way_back():
    app = _app()
    app.add_url_rule("/queue/notes", "add_note", lambda: "noted", methods=["POST"])
    response = app.test_client().post("/queue/notes")
    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"


def test_a_hook_registered_before_the_guard_still_runs_after_it():
    assert _app().test_client().get("/v1/leak").status_code == 401


def test_public_views_static_files_and_openapi_are_open_to_strangers(tmp_path):
    (tmp_path / "app.css").write_text("body {}")
    app = _app()
    app.static_folder = str(tmp_path)
    client = app.test_client()
    assert client.get("/answer/tok-1").get_json() == {"principal": None}
    assert client.post("/v1/events").status_code == 202
    assert client.get("/openapi/demo.json").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_a_valid_key_is_the_principal_and_needs_no_csrf_token():
    client = _app().test_client()
    assert client.get("/v1/whoami", headers=_bearer("agent")).get_json() == {
        "kind": "api_key",
        "role": "agent",
    }
    assert client.put("/v1/settings", headers=_bearer("admin")).status_code == 200


def test_an_invalid_key_answers_401_invalid_token_even_on_a_page():
    client = _app().test_client()
    for path in ("/v1/whoami", "/queue"):
        response = client.get(path, headers={"Authorization": "Bearer clk_nope"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="closeloop", error="invalid_token"'


def test_an_invalid_key_on_a_public_view_is_a_stranger():
    response = _app().test_client().get("/answer/tok-1", headers={"Authorization": "Bearer clk_nope"})
    assert response.status_code == 200 and response.get_json() == {"principal": None}


def test_a_session_user_id_gives_the_user_and_a_gone_user_is_forgotten():
    client = _app().test_client()
    with client.session_transaction() as session:
        session["user_id"] = "u-ana"
    assert client.get("/queue").status_code == 200
    with client.session_transaction() as session:
        session["user_id"] = "u-gone"
    assert client.get("/queue").status_code == 303
    with client.session_transaction() as session:
        assert "user_id" not in session


def test_a_session_post_without_csrf_token_is_refused():
    client = _app().test_client()
    with client.session_transaction() as session:
        session["user_id"] = "u-ana"
    response = client.put("/v1/settings")
    assert response.status_code == 400 and response.mimetype == PROBLEM_MIMETYPE
    assert "CSRF" in response.get_json()["detail"]


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_a_role_at_or_above_the_required_one_is_let_in(role):
    client = _app().test_client()
    assert client.get("/reports", headers=_bearer(role)).status_code == 200
    assert client.get("/v1/reports", headers=_bearer(role)).status_code == 200


def test_a_lower_role_gets_403_as_a_page_or_as_problem_json():
    client = _app().test_client()
    page = client.get("/reports", headers=_bearer("agent"))
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert b"manager role" in page.data
    api = client.get("/v1/reports", headers=_bearer("agent"))
    assert api.status_code == 403 and api.mimetype == PROBLEM_MIMETYPE
    assert api.get_json()["detail"] == "This needs the manager role or a higher one."


def test_requires_works_on_a_method_view_method_under_flask_smorest():
    client = _app().test_client()
    assert client.get("/v1/settings", headers=_bearer("agent")).status_code == 200
    assert client.put("/v1/settings", headers=_bearer("manager")).status_code == 403
    assert client.put("/v1/settings", headers=_bearer("admin")).status_code == 200


def test_requires_on_a_view_open_to_strangers_answers_401():
    app = _app()
    app.add_url_rule("/v1/odd", "odd", public(requires(Role.AGENT)(lambda: {})))
    response = app.test_client().get("/v1/odd")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("base_url", "secure"), [("http://127.0.0.1:8000", False), ("https://cx.example", True)]
)
def test_the_session_cookie_is_http_only_lax_and_secure_over_https(base_url, secure):
    app = _app(Settings(secret_key="unit-test-key", public_base_url=base_url, session_lifetime_hours=8))
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is secure
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)
    assert app.secret_key == "unit-test-key"


def test_the_pages_refuse_to_be_registered_without_the_guard():
    with pytest.raises(RuntimeError, match="install_access_control"):
        register_identity_pages(Flask(__name__), store=None)
