"""Identity on real databases: users, sign-in throttling and API keys on SQLite and PostgreSQL; the guard and
the sign-in and API keys pages in a small Flask app; the two commands."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from flask import Flask, redirect, render_template_string
from sqlalchemy import select
from werkzeug.test import TestResponse

from closeloop.cli import main
from shared.db import Database
from shared.http import PROBLEM_MIMETYPE
from shared.identity.domain import (
    DuplicateEmailError,
    InvalidEmailError,
    SignInThrottledError,
    UnknownApiKeyError,
    UnknownRoleError,
    UnknownUserError,
    WeakPasswordError,
    WrongCredentialsError,
)
from shared.identity.models import VERSION_TABLE, ApiKeyRow, StaffUserRow, metadata
from shared.identity.store import IdentityStore
from shared.identity.web import install_access_control, public, register_identity_pages, requires
from shared.principal import Role, current_principal
from tests.clock import Clock
from tests.conftest import make_settings

# Cheap parameters keep the tests fast; the production default costs 64 MiB and three passes.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
SECRET_KEY = "identity-test-secret-key"


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def database(request) -> Iterator[Database]:
    database = Database(request.getfixturevalue(request.param))
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database, clock) -> IdentityStore:
    store = IdentityStore(database, password_hasher=FAST_HASHER, clock=clock)
    store.migrate()
    return store


# The store, on both databases


def test_migrations_build_the_tables_the_models_describe_and_run_twice(database):
    IdentityStore(database).migrate()
    IdentityStore(database).migrate()
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [
            diff
            for diff in compare_metadata(context, metadata)
            if not (diff[0] == "remove_table" and diff[1].name == VERSION_TABLE)
        ]
    assert differences == []


def test_a_user_signs_in_with_any_case_of_their_email(store):
    user = store.create_user("Ana.Lima@Example.com", PASSWORD, "manager", name="Ana Lima")
    principal = store.authenticate("ana.lima@EXAMPLE.com ", PASSWORD, "192.0.2.1")
    assert (principal.kind, principal.id, principal.role) == ("user", user.id, Role.MANAGER)
    assert principal.name == "Ana Lima"
    assert principal.email == user.email == "ana.lima@example.com"
    assert store.principal_for_user(user.id) == principal


def test_a_user_without_a_name_goes_by_their_email(store):
    user = store.create_user("bo@example.com", PASSWORD, Role.AGENT)
    assert store.principal_for_user(user.id).name == "bo@example.com"


def test_an_email_taken_in_another_case_is_refused(store):
    store.create_user("ana@example.com", PASSWORD, "agent")
    with pytest.raises(DuplicateEmailError, match="exists already"):
        store.create_user("ANA@example.com", "another long password", "admin")
    assert len(store.list_users()) == 1


@pytest.mark.parametrize(
    ("email", "password", "role", "error"),
    [
        ("ana@example.com", "too short", "agent", WeakPasswordError),
        ("ana@example.com", PASSWORD, "boss", UnknownRoleError),
        ("ana", PASSWORD, "agent", InvalidEmailError),
    ],
)
def test_a_refused_user_is_not_created(store, email, password, role, error):
    with pytest.raises(error):
        store.create_user(email, password, role)
    assert store.list_users() == []


def test_an_unknown_email_and_a_wrong_password_get_the_same_refusal(store):
    store.create_user("ana@example.com", PASSWORD, "agent")
    with pytest.raises(WrongCredentialsError) as unknown:
        store.authenticate("nobody@example.com", PASSWORD, "192.0.2.1")
    with pytest.raises(WrongCredentialsError) as wrong:
        store.authenticate("ana@example.com", "not the password", "192.0.2.1")
    assert str(unknown.value) == str(wrong.value)


def test_five_failures_refuse_the_right_password_for_fifteen_minutes_in_every_process(store, database, clock):
    store.create_user("ana@example.com", PASSWORD, "agent")
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"):
        with pytest.raises(WrongCredentialsError):
            store.authenticate("ana@example.com", "a wrong guess!", address)
        clock.advance(minutes=1)
    # Another process (another store on the same database) sees the same failures.
    other_process = IdentityStore(database, password_hasher=FAST_HASHER, clock=clock)
    with pytest.raises(SignInThrottledError) as refused:
        other_process.authenticate("ana@example.com", PASSWORD, "198.51.100.9")
    assert refused.value.until == clock.now - timedelta(minutes=1) + timedelta(minutes=15)
    clock.advance(minutes=13, seconds=59)
    with pytest.raises(SignInThrottledError):
        store.authenticate("ana@example.com", PASSWORD, "198.51.100.9")
    clock.advance(seconds=1)
    assert store.authenticate("ana@example.com", PASSWORD, "198.51.100.9").email == "ana@example.com"


def test_failures_from_one_address_refuse_it_for_every_email_but_not_other_addresses(store):
    store.create_user("ana@example.com", PASSWORD, "agent")
    for number in range(5):
        with pytest.raises(WrongCredentialsError):
            store.authenticate(f"guess{number}@example.com", PASSWORD, "203.0.113.7")
    with pytest.raises(SignInThrottledError):
        store.authenticate("ana@example.com", PASSWORD, "203.0.113.7")
    assert store.authenticate("ana@example.com", PASSWORD, "192.0.2.1").email == "ana@example.com"


def test_a_successful_sign_in_forgets_the_failures_against_the_email(store):
    store.create_user("ana@example.com", PASSWORD, "agent")
    for round_ in range(2):
        for attempt in range(4):
            with pytest.raises(WrongCredentialsError):
                store.authenticate("ana@example.com", "a wrong guess!", f"192.0.2.{round_ * 10 + attempt}")
        store.authenticate("ana@example.com", PASSWORD, f"198.51.100.{round_}")


def test_a_deactivated_user_can_no_longer_sign_in_nor_use_a_session(store):
    user = store.create_user("ana@example.com", PASSWORD, "agent")
    assert store.deactivate_user(user.id).active is False
    assert store.principal_for_user(user.id) is None
    with pytest.raises(WrongCredentialsError):
        store.authenticate("ana@example.com", PASSWORD, "192.0.2.1")
    assert [u.active for u in store.list_users()] == [False]


def test_unknown_ids_are_refused_by_name(store):
    with pytest.raises(UnknownUserError):
        store.deactivate_user("00000000-0000-0000-0000-000000000000")
    with pytest.raises(UnknownUserError):
        store.deactivate_user("not-a-uuid\x00")
    with pytest.raises(UnknownApiKeyError):
        store.revoke_api_key("0123456789abcdef")
    with pytest.raises(UnknownApiKeyError):
        store.revoke_api_key("x\x00")
    assert store.principal_for_user("nobody") is None


def test_a_hash_made_with_older_parameters_is_replaced_at_sign_in(store, database, clock):
    user = store.create_user("ana@example.com", PASSWORD, "agent")
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    IdentityStore(database, password_hasher=stronger, clock=clock).authenticate(
        "ana@example.com", PASSWORD, "192.0.2.1"
    )
    with database.transaction() as session:
        new_hash = session.get(StaffUserRow, user.id).password_hash
    assert not stronger.check_needs_rehash(new_hash)
    assert stronger.verify(new_hash, PASSWORD)


def test_an_api_key_is_returned_once_and_stored_only_as_its_digest(store, database):
    key, plaintext = store.create_api_key("CRM sync", "manager", created_by="ana@example.com")
    assert re.fullmatch(r"clk_[0-9a-f]{16}_[A-Za-z0-9_-]{43,}", plaintext)
    assert plaintext.startswith(key.prefix) and len(key.prefix) < 16
    assert (key.name, key.role, key.created_by) == ("CRM sync", Role.MANAGER, "ana@example.com")
    assert not key.revoked
    with database.transaction() as session:
        stored = session.scalars(select(ApiKeyRow)).one()
        assert plaintext not in [getattr(stored, column.key) for column in ApiKeyRow.__table__.columns]
    assert store.list_api_keys() == [key]
    principal = store.verify_api_key(plaintext)
    assert (principal.kind, principal.id, principal.name) == ("api_key", key.id, "CRM sync")
    assert principal.role == Role.MANAGER


def test_a_key_records_its_last_use_at_most_once_a_minute(store, clock):
    key, plaintext = store.create_api_key("CRM sync", "agent", created_by="command line")
    first_use = clock.now
    store.verify_api_key(plaintext)
    clock.advance(seconds=59)
    store.verify_api_key(plaintext)
    assert store.list_api_keys()[0].last_used_at == first_use
    clock.advance(seconds=1)
    store.verify_api_key(plaintext)
    assert store.list_api_keys()[0].last_used_at == clock.now


def test_an_altered_unknown_or_revoked_key_is_refused(store):
    key, plaintext = store.create_api_key("CRM sync", "agent", created_by="command line")
    altered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert store.verify_api_key(altered) is None
    assert store.verify_api_key("clk_0123456789abcdef_" + "a" * 43) is None
    assert store.verify_api_key("not a key") is None
    revoked = store.revoke_api_key(key.id)
    assert revoked.revoked and store.revoke_api_key(key.id).revoked_at == revoked.revoked_at
    assert store.verify_api_key(plaintext) is None


# The guard and the pages, in a small app on SQLite

QUEUE_PAGE = """<h1>Queue of {{ principal.name }}</h1>
<form method="post" action="/queue/notes">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
</form>
"""


@pytest.fixture
def web_store(sqlite_url) -> Iterator[IdentityStore]:
    database = Database(sqlite_url)
    store = IdentityStore(database, password_hasher=FAST_HASHER)
    store.migrate()
    store.create_user("admin@example.com", PASSWORD, "admin", name="Ada Admin")
    store.create_user("agent@example.com", PASSWORD, "agent", name="Zoë Agent")
    yield store
    database.dispose()


def _staff_app(store: IdentityStore) -> Flask:
    app = Flask(__name__)

    @app.get("/queue")
    def queue():
        return render_template_string(QUEUE_PAGE)

    @app.post("/queue/notes")
    def add_note():
        return redirect("/queue", code=303)

    @app.get("/v1/me")
    def me():
        principal = current_principal()
        return {"kind": principal.kind, "name": principal.name, "role": principal.role}

    @app.post("/v1/notes")
    def create_note():
        return {"created": True}, 201

    @app.get("/v1/team-report")
    @requires(Role.MANAGER)
    def team_report():
        return {"report": []}

    @app.get("/answer/<token>")
    @public
    def answer(token):
        return f"answer page {token}"

    install_access_control(app, store, make_settings("sqlite://", secret_key=SECRET_KEY))
    register_identity_pages(app, store, landing_path="/queue")
    return app


def _csrf_token(response: TestResponse) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))[1]


def _sign_in(client, email: str, password: str = PASSWORD, next_path: str | None = None) -> TestResponse:
    page = client.get("/sign-in" + (f"?next={quote(next_path, safe='')}" if next_path else ""))
    form = {"email": email, "password": password, "csrf_token": _csrf_token(page)}
    if next_path is not None:
        form["next"] = next_path
    return client.post("/sign-in", data=form)


def test_a_stranger_gets_401_problem_json_and_a_redirect_to_sign_in_for_pages(web_store):
    client = _staff_app(web_store).test_client()
    api = client.get("/v1/me")
    assert api.status_code == 401 and api.mimetype == PROBLEM_MIMETYPE
    assert api.headers["WWW-Authenticate"].startswith("Bearer")
    page = client.get("/queue")
    assert page.status_code == 303 and page.headers["Location"] == "/sign-in?next=%2Fqueue"
    assert client.get("/answer/tok-1").status_code == 200


def test_signing_in_on_the_page_leads_back_with_an_http_only_lax_cookie(web_store):
    client = _staff_app(web_store).test_client()
    with client.session_transaction() as before:
        before["planted"] = "by someone who handed this browser a cookie"
    signed_in = _sign_in(client, "AGENT@example.com", next_path="/queue?status=open")
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/queue?status=open"
    cookie = signed_in.headers["Set-Cookie"]
    assert cookie.startswith("closeloop_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie and "Expires=" in cookie
    with client.session_transaction() as after:
        assert "planted" not in after  # nothing from before signing in carries over
    queue = client.get("/queue")
    assert queue.status_code == 200 and "Queue of Zoë Agent" in queue.get_data(as_text=True)
    assert client.get("/v1/me").get_json() == {"kind": "user", "name": "Zoë Agent", "role": "agent"}


def test_an_open_route_without_a_cookie_neither_reads_nor_sets_a_session(web_store, monkeypatch):
    app = _staff_app(web_store)
    client = app.test_client()

    def no_serializer(_app):
        raise AssertionError("a request without a cookie decoded or encoded a session")

    monkeypatch.setattr(app.session_interface, "get_signing_serializer", no_serializer)
    for response in (client.get("/answer/tok-1"), client.get("/v1/me"), client.post("/v1/notes")):
        assert response.status_code in (200, 401)
        assert "Set-Cookie" not in response.headers
        # As Flask says of any session the guard looked at: the answer depended on the (missing) cookie.
        assert "Cookie" in response.headers["Vary"]
    client.set_cookie("someone_elses", "1")
    answer = client.get("/answer/tok-1")
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers


def _forged(cookie: str) -> str:
    """The cookie with its signature's first character changed. Not its last: the 20 bytes of the HMAC fill
    only four of that character's six bits, so four characters decode the same and a changed one may not be
    a change at all (CI failed once that way: its last two characters made "xx" were the signature still, a
    chance of about 1 in 1,024)."""
    payload, _, signature = cookie.rpartition(".")
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def test_a_staff_session_is_refreshed_on_each_request_and_a_forged_one_opens_nothing(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "agent@example.com")
    for path in ("/queue", "/answer/tok-1"):
        refreshed = client.get(path)
        assert refreshed.status_code == 200
        cookie = refreshed.headers["Set-Cookie"]  # SESSION_REFRESH_EACH_REQUEST: a new expiry each time
        assert cookie.startswith("closeloop_session=") and "Expires=" in cookie
    stranger = _staff_app(web_store).test_client()
    stranger.set_cookie("closeloop_session", _forged(client.get_cookie("closeloop_session").value))
    assert stranger.get("/v1/me").status_code == 401


def test_the_cookie_is_secure_when_served_over_https(web_store):
    app = Flask(__name__)
    settings = make_settings("sqlite://", public_base_url="https://cx.example", secret_key=SECRET_KEY)
    install_access_control(app, web_store, settings)
    register_identity_pages(app, web_store)
    client = app.test_client()
    page = client.get("/sign-in", base_url="https://cx.example")
    response = client.post(
        "/sign-in",
        base_url="https://cx.example",
        data={"email": "agent@example.com", "password": PASSWORD, "csrf_token": _csrf_token(page)},
        # Over https Flask-WTF also checks that the form came from this origin.
        headers={"Referer": "https://cx.example/sign-in"},
    )
    assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/queue", "/\\evil.example"])
def test_sign_in_never_leads_to_another_site(web_store, next_path):
    client = _staff_app(web_store).test_client()
    response = _sign_in(client, "agent@example.com", next_path=next_path)
    assert response.status_code == 303 and response.headers["Location"] == "/queue"


def test_a_wrong_password_shows_the_form_again_and_repeated_failures_answer_429(web_store):
    client = _staff_app(web_store).test_client()
    for _ in range(5):
        wrong = _sign_in(client, "agent@example.com", "not the password")
        assert wrong.status_code == 200
        assert "The email or password is not right." in wrong.get_data(as_text=True)
    throttled = _sign_in(client, "agent@example.com")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    assert client.get("/v1/me").status_code == 401


def test_signing_in_without_the_forms_csrf_token_is_refused(web_store):
    client = _staff_app(web_store).test_client()
    client.get("/sign-in")
    response = client.post("/sign-in", data={"email": "agent@example.com", "password": PASSWORD})
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert client.get("/v1/me").status_code == 401


def test_with_a_session_every_post_needs_the_csrf_token(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "agent@example.com")
    token = _csrf_token(client.get("/queue"))
    page = client.post("/queue/notes", data={})
    assert page.status_code == 400 and page.mimetype == "text/html"
    api = client.post("/v1/notes", json={})
    assert api.status_code == 400 and api.mimetype == PROBLEM_MIMETYPE
    assert client.post("/queue/notes", data={"csrf_token": token}).status_code == 303
    assert client.post("/v1/notes", json={}, headers={"X-CSRFToken": token}).status_code == 201


def test_a_bearer_key_needs_no_csrf_token_and_stops_working_once_revoked(web_store):
    client = _staff_app(web_store).test_client()
    key, plaintext = web_store.create_api_key("CRM sync", "agent", created_by="command line")
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/v1/me", headers=bearer).get_json() == {
        "kind": "api_key",
        "name": "CRM sync",
        "role": "agent",
    }
    assert client.post("/v1/notes", json={}, headers=bearer).status_code == 201
    web_store.revoke_api_key(key.id)
    refused = client.get("/v1/me", headers=bearer)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_a_manager_route_refuses_an_agent_with_403_and_lets_an_admin_in(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "agent@example.com")
    assert client.get("/v1/team-report").status_code == 403
    client.post("/sign-out", data={"csrf_token": _csrf_token(client.get("/queue"))})
    _sign_in(client, "admin@example.com")
    assert client.get("/v1/team-report").status_code == 200


def test_signing_out_needs_the_token_and_ends_the_session(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "agent@example.com")
    assert client.post("/sign-out").status_code == 400
    assert client.get("/queue").status_code == 200
    signed_out = client.post("/sign-out", data={"csrf_token": _csrf_token(client.get("/queue"))})
    assert signed_out.status_code == 303 and signed_out.headers["Location"] == "/sign-in"
    assert client.get("/queue").status_code == 303


def test_a_deactivated_user_loses_access_at_their_next_request(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "agent@example.com")
    assert client.get("/queue").status_code == 200
    agent = next(user for user in web_store.list_users() if user.email == "agent@example.com")
    web_store.deactivate_user(agent.id)
    assert client.get("/queue").status_code == 303
    assert client.get("/v1/me").status_code == 401


def test_the_api_keys_page_is_for_admins_only(web_store):
    client = _staff_app(web_store).test_client()
    assert client.get("/api-keys").status_code == 303
    _sign_in(client, "agent@example.com")
    assert client.get("/api-keys").status_code == 403


def test_the_api_keys_page_shows_a_new_key_once_and_revokes_it(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "admin@example.com")
    page = client.get("/api-keys")
    assert page.status_code == 200 and "No keys yet." in page.get_data(as_text=True)
    token = _csrf_token(page)
    created = client.post("/api-keys", data={"name": "Zapier", "role": "manager", "csrf_token": token})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    plaintext = re.search(r'<code id="new-api-key">(clk_[^<]+)</code>', created.get_data(as_text=True))[1]
    assert web_store.verify_api_key(plaintext).role == Role.MANAGER
    key = web_store.list_api_keys()[0]
    assert key.created_by == "admin@example.com"

    listed = client.get("/api-keys").get_data(as_text=True)
    assert plaintext not in listed and key.prefix in listed and "Zapier" in listed

    revoked = client.post(f"/api-keys/{key.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303 and revoked.headers["Location"] == "/api-keys"
    assert web_store.verify_api_key(plaintext) is None
    assert "Revoked" in client.get("/api-keys").get_data(as_text=True)
    unknown = client.post("/api-keys/0123456789abcdef/revoke", data={"csrf_token": token})
    assert unknown.status_code == 404


def test_the_api_keys_page_refuses_a_key_without_a_name(web_store):
    client = _staff_app(web_store).test_client()
    _sign_in(client, "admin@example.com")
    token = _csrf_token(client.get("/api-keys"))
    response = client.post("/api-keys", data={"name": "   ", "role": "agent", "csrf_token": token})
    assert response.status_code == 400 and web_store.list_api_keys() == []


# The commands, against the identity database of the settings


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def identity_url(sqlite_url, monkeypatch) -> str:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.delenv("IDENTITY_DATABASE_URL", raising=False)
    return sqlite_url


def _store_at(url: str) -> IdentityStore:
    return IdentityStore(Database(url))


def test_create_user_reads_the_password_from_standard_input(identity_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["create-user", "Ana@Example.com", "--role", "admin", "--name", "Ana Lima"]) == 0
    assert capsys.readouterr().out.strip() == "created admin ana@example.com"
    store = _store_at(identity_url)
    assert store.authenticate("ana@example.com", PASSWORD, None).name == "Ana Lima"
    store.database.dispose()


def test_create_user_prompts_twice_on_a_terminal(identity_url, monkeypatch, capsys):
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something else entirely"])
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["create-user", "ana@example.com", "--role", "agent"]) == 0
    assert main(["create-user", "bo@example.com", "--role", "agent"]) == 2
    assert capsys.readouterr().err.strip() == "closeloop create-user: The two passwords differ."


@pytest.mark.parametrize(
    ("arguments", "password", "message"),
    [
        (["ana@example.com", "--role", "admin"], PASSWORD, "A user with the email ana@example.com exists"),
        (["bo@example.com", "--role", "admin"], "short", "The password must have at least 12 characters."),
        (["bo@example.com", "--role", "boss"], PASSWORD, "Unknown role 'boss'; choose one of agent, manager"),
    ],
)
def test_create_user_refuses_in_one_line_with_status_2(
    identity_url, monkeypatch, capsys, arguments, password, message
):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    main(["create-user", "ana@example.com", "--role", "agent"])
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["create-user", *arguments]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"closeloop create-user: {message}")


def test_create_api_key_prints_the_key_alone_on_its_last_line(identity_url, capsys):
    assert main(["create-api-key", "--name", "CRM sync", "--role", "manager"]) == 0
    plaintext = capsys.readouterr().out.splitlines()[-1]
    store = _store_at(identity_url)
    assert store.verify_api_key(plaintext).role == Role.MANAGER
    assert store.list_api_keys()[0].created_by == "command line"
    store.database.dispose()
    assert main(["create-api-key", "--name", "x", "--role", "boss"]) == 2


def test_the_commands_use_identity_database_url_when_it_is_set(identity_url, tmp_path, monkeypatch, capsys):
    elsewhere = f"sqlite:///{tmp_path}/identity-elsewhere.db"
    monkeypatch.setenv("IDENTITY_DATABASE_URL", elsewhere)
    assert main(["create-api-key", "--name", "CRM sync", "--role", "agent"]) == 0
    plaintext = capsys.readouterr().out.splitlines()[-1]
    store = _store_at(elsewhere)
    assert store.verify_api_key(plaintext) is not None
    store.database.dispose()
