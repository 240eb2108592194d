"""Access control for every service's Flask app, and the staff's sign-in and API keys pages.

Every app calls ``install_access_control``: from then on each endpoint needs a principal (a staff session
or an API key) unless its view is marked ``@public``, and ``@requires(role)`` asks for more. One app calls
``register_identity_pages``; as all apps share the secret key, cookie name and origin, its session cookie
works in the others.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

from shared.clock import utcnow
from shared.imports import submodule_without_package_init
from shared.principal import Principal, Role, current_principal
from shared.problems import JSON_PREFIXES, problem
from shared.settings import Settings

from .domain import IdentityError, SignInThrottledError, UnknownApiKeyError, WrongCredentialsError
from .store import IdentityStore

if TYPE_CHECKING:
    from .forms import NewApiKeyForm

# Flask-WTF's CSRF protection, which every app's guard uses, without the package's __init__: that also loads
# FlaskForm and the reCAPTCHA field (urllib.request), which only the sign-in and API keys pages need; their
# forms (.forms) load with the first of those pages.
submodule_without_package_init("flask_wtf", "csrf")
from flask_wtf.csrf import CSRFError, CSRFProtect  # noqa: E402 (after the submodule above)

log = logging.getLogger(__name__)

SIGN_IN_PATH = "/sign-in"
# The same name in every app, so the one cookie set by the sign-in page is read by all of them.
SESSION_COOKIE_NAME = "closeloop_session"
SESSION_USER_ID = "user_id"
_ACCESS_CONTROL = "closeloop.identity"
_PAGES = "closeloop.identity.pages"
_PUBLIC_MARK = "closeloop_public"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

View = TypeVar("View")
ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])


# What the guard does for an endpoint, decided on its first request (routes are fixed by then).
_UNGUARDED, _OPEN_TO_ALL, _GUARDED = "unguarded", "open to all", "guarded"


@dataclass(frozen=True)
class _AccessControl:
    store: IdentityStore
    csrf: CSRFProtect
    access: dict[str, str] = field(default_factory=dict)


class _LeanSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, less the work it repeats on each request: the serializer is built once
    per secret key (Flask builds it on every request, and again to save), a request without the session
    cookie gets an empty session without parsing any, and an empty, untouched session is not saved (only
    Vary)."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], Any] = {}

    def get_signing_serializer(self, app: Flask) -> Any:
        if not app.secret_key:
            return None
        key = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
        return serializer

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ or not request.cookies.get(self.get_cookie_name(app))
        ):
            return self.session_class()  # what Flask opens when the session cookie is missing
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if session or session.modified:
            super().save_session(app, session, response)  # sets, refreshes or deletes the cookie
        elif session.accessed:
            # All Flask does for a session that stayed empty: the answer depended on the (missing) cookie.
            if response.headers.getlist("Vary"):  # not `in`: a missing header costs Werkzeug an exception
                response.vary.add("Cookie")
            else:
                response.headers.add("Vary", "Cookie")


@dataclass(frozen=True)
class _IdentityPages:
    store: IdentityStore
    landing_path: str


def public(view: View) -> View:
    """Open a view (a function or a MethodView class) to anyone: customers' pages, signed webhooks."""
    setattr(view, _PUBLIC_MARK, True)
    return view


def is_public(view: Callable[..., Any]) -> bool:
    # A MethodView is registered as the function as_view() makes; the mark is on its class.
    return any(getattr(marked, _PUBLIC_MARK, False) for marked in (view, getattr(view, "view_class", None)))


def requires(role: Role) -> Callable[[ViewFunction], ViewFunction]:
    """Refuse the request with 403 unless the principal's role allows ``role``; also on MethodView methods."""

    def decorate(view: ViewFunction) -> ViewFunction:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            # abort() rather than return: the view may sit under flask-smorest's response decorator.
            if principal is None:
                abort(_unauthenticated())
            if not principal.role.allows(role):
                abort(_forbidden(role))
            return view(*args, **kwargs)

        return cast(ViewFunction, guarded)

    return decorate


def install_access_control(app: Flask, store: IdentityStore, settings: Settings) -> None:
    """Sessions, CSRF and the guard in front of every endpoint of ``app``."""
    if store is None:
        raise ValueError(f"{app.name} needs an identity store: no app is served without its guard")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: a link from an email to a staff page keeps the session; a cross-site form post does not.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.lower().startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_lifetime_hours),
        # The guard checks CSRF itself, only where a cookie could be ridden: session requests, unsafe methods.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A token lives as long as the session holding it: a queue page left open all morning still posts.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if settings.uses_development_secret_key and app.config["SESSION_COOKIE_SECURE"]:
        log.warning("the development secret key signs sessions on %s: set CLOSELOOP_SECRET_KEY", app.name)
    app.session_interface = _LeanSessionInterface()
    hooks = app.before_request_funcs.setdefault(None, [])
    before = list(hooks)
    csrf = CSRFProtect(app)
    # CSRFProtect's own hook returns at once when WTF_CSRF_CHECK_DEFAULT is off (the guard checks, above):
    # it is not run on every request for nothing.
    hooks[:] = [*before, *(hook for hook in hooks[len(before) :] if hook.__name__ != "csrf_protect")]
    app.extensions[_ACCESS_CONTROL] = _AccessControl(store, csrf)
    # The guard's refusal pages are rendered in every app, not only in the one serving the identity pages.
    app.register_blueprint(Blueprint("identity_templates", __name__, template_folder="templates"))
    # First of the app's hooks, so no hook registered before this call answers a stranger.
    app.before_request_funcs.setdefault(None, []).insert(0, _guard)
    app.context_processor(lambda: {"principal": current_principal()})


def register_identity_pages(app: Flask, store: IdentityStore, landing_path: str = "/") -> None:
    """Serve sign-in, sign-out and the admins' API keys page; ``landing_path`` is where sign-in leads."""
    if _ACCESS_CONTROL not in app.extensions:
        raise RuntimeError("call install_access_control(app, ...) first: the pages need its session and CSRF")
    app.extensions[_PAGES] = _IdentityPages(store, landing_path)
    app.register_blueprint(pages)


def same_origin_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: sign-in never sends anyone elsewhere."""
    # A leading single slash rules out a scheme; browsers read "//host", "/\\host" and "/\t/host" as a host.
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or _CONTROL_CHARACTER.search(target)
    ):
        return default
    return target


def _guard() -> Response | None:
    req = request._get_current_object()  # type: ignore[attr-defined]  # once, not through the proxy each time
    endpoint = req.endpoint
    if endpoint is None:
        return None  # no such route: Flask answers 404 or 405
    control: _AccessControl = current_app.extensions[_ACCESS_CONTROL]
    access = control.access.get(endpoint)
    if access is None:
        access = control.access[endpoint] = _access_to(endpoint, req.blueprint)
    if access is _UNGUARDED:
        return None
    open_to_all = access is _OPEN_TO_ALL

    scheme, _, credentials = req.environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer":
        g.principal = principal = control.store.verify_api_key(credentials.strip())
        if principal is None and not open_to_all:
            return _unauthenticated(invalid_key=True)
        # No CSRF check: a browser never adds this header on its own, so a forged request cannot carry it.
        return None

    g.principal = principal = _session_principal(control.store)
    if open_to_all:
        return None
    if principal is None:
        return _unauthenticated()
    if req.method not in _SAFE_METHODS:
        try:
            control.csrf.protect()
        except CSRFError as refusal:
            return _csrf_refused(refusal)
    return None


def _access_to(endpoint: str, blueprint: str | None) -> str:
    if endpoint.rpartition(".")[2] == "static" or (blueprint or "").endswith("api-docs"):
        return _UNGUARDED  # static files and the OpenAPI documents are open to all
    return _OPEN_TO_ALL if is_public(current_app.view_functions[endpoint]) else _GUARDED


def _session_principal(store: IdentityStore) -> Principal | None:
    user_id = session.get(SESSION_USER_ID)
    if not isinstance(user_id, str):
        return None
    # Read afresh on every request, so deactivating a user ends their sessions at once.
    principal = store.principal_for_user(user_id)
    if principal is None:
        session.pop(SESSION_USER_ID, None)
    return principal


def _wants_problem_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def _unauthenticated(invalid_key: bool = False) -> Response:
    if invalid_key or _wants_problem_json():
        if invalid_key:
            detail = "This API key is not valid."
        else:
            detail = "Sign in, or send an API key as Authorization: Bearer <key>."
        response = problem(401, "Unauthorized", detail)
        challenge = 'Bearer realm="closeloop"'
        response.headers["WWW-Authenticate"] = challenge + (', error="invalid_token"' if invalid_key else "")
        return response
    target = None
    if request.method in ("GET", "HEAD"):  # a form post cannot be replayed after signing in
        query = request.query_string.decode("utf-8", "replace")
        target = request.script_root + request.path + (f"?{query}" if query else "")
    return redirect(SIGN_IN_PATH + (f"?{urlencode({'next': target})}" if target else ""), code=303)


def _forbidden(role: Role) -> Response:
    detail = f"This needs the {role} role or a higher one."
    if _wants_problem_json():
        return problem(403, "Forbidden", detail)
    return _page("identity/refused.html", 403, title="Not allowed", message=detail)


def _csrf_refused(refusal: CSRFError) -> Response:
    if _wants_problem_json():
        detail = f"{refusal.description} Send the X-CSRFToken header, or use an API key."
        return problem(400, "Bad Request", detail)
    message = "This form was not accepted because it had expired. Go back, reload the page and send it again."
    return _page("identity/refused.html", 400, title="Form expired", message=message)


def _page(template: str, status: int, **context: Any) -> Response:
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


# The pages

pages = Blueprint("identity", __name__)


def _identity_pages() -> _IdentityPages:
    return current_app.extensions[_PAGES]


@pages.route(SIGN_IN_PATH, methods=["GET", "POST"])
@public
def sign_in() -> Response:
    identity = _identity_pages()
    target = same_origin_path(request.values.get("next"), identity.landing_path)
    signed_in = current_principal()
    if request.method == "GET" and signed_in is not None and signed_in.is_user:
        return redirect(target, code=303)
    from .forms import SignInForm  # on first use (see the imports above)

    # FlaskForm checks the CSRF token here although the page is public: it stops a stranger's site from
    # signing a staff member into the stranger's account.
    form = SignInForm()
    if not form.validate_on_submit():
        if request.method != "POST":
            return _page("identity/sign_in.html", 200, form=form, next=target)
        expired = "csrf_token" in form.errors
        error = "The sign-in form had expired. Please try again." if expired else None
        return _page("identity/sign_in.html", 400, form=form, next=target, error=error)
    try:
        principal = identity.store.authenticate(form.email.data, form.password.data, request.remote_addr)
    except SignInThrottledError as refusal:
        response = _page("identity/sign_in.html", 429, form=form, next=target, error=str(refusal))
        response.headers["Retry-After"] = str(max(1, math.ceil((refusal.until - utcnow()).total_seconds())))
        return response
    except WrongCredentialsError as refusal:
        return _page("identity/sign_in.html", 200, form=form, next=target, error=str(refusal))
    session.clear()  # a fresh session: nothing from before signing in carries over
    session[SESSION_USER_ID] = principal.id
    session.permanent = True
    return redirect(target, code=303)


@pages.post("/sign-out")
def sign_out() -> Response:
    session.clear()
    return redirect(SIGN_IN_PATH, code=303)


@pages.get("/api-keys")
@requires(Role.ADMIN)
def api_keys() -> Response:
    from .forms import NewApiKeyForm  # on first use (see the imports above)

    return _api_keys_page(NewApiKeyForm(), 200)


@pages.post("/api-keys")
@requires(Role.ADMIN)
def create_api_key() -> Response:
    from .forms import NewApiKeyForm  # on first use (see the imports above)

    form = NewApiKeyForm()
    if not form.validate_on_submit():
        return _api_keys_page(form, 400)
    principal = cast(Principal, current_principal())
    created_by = principal.email or f"API key {principal.name}"
    try:
        key, plaintext = _identity_pages().store.create_api_key(form.name.data, form.role.data, created_by)
    except IdentityError as refusal:
        form.name.errors = [str(refusal)]
        return _api_keys_page(form, 400)
    # Rendered here rather than after a redirect: the plaintext exists only in this response.
    return _api_keys_page(NewApiKeyForm(formdata=None), 201, new_key=key, plaintext=plaintext)


@pages.post("/api-keys/<key_id>/revoke")
@requires(Role.ADMIN)
def revoke_api_key(key_id: str) -> Response:
    try:
        _identity_pages().store.revoke_api_key(key_id)
    except UnknownApiKeyError:
        abort(404)
    return redirect(url_for(".api_keys"), code=303)


def _api_keys_page(form: NewApiKeyForm, status: int, **context: Any) -> Response:
    keys = _identity_pages().store.list_api_keys()
    # no-store matters on the page showing a new key: its secret must not stay in a cache or the history.
    return _page("identity/api_keys.html", status, form=form, keys=keys, **context)
