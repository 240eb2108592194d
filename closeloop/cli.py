"""``closeloop``: run the embedded system, or one part of one service, and post signed events."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests

from shared.broker import create_broker
from shared.clock import utcnow
from shared.db import Database
from shared.identity.domain import IdentityError, check_password_policy, normalize_email, parse_role
from shared.identity.store import IdentityStore
from shared.outbox import outbox_channel
from shared.principal import Role
from shared.scheduling import PostgresWakeup, run_clock
from shared.settings import SERVICES, Settings
from shared.signing import signed_headers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="closeloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole system in one process (embedded mode)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    run.add_argument("--no-demo", action="store_true", help="do not load the demo customers")

    migrate = commands.add_parser("migrate", help="bring the services' tables up to date")
    migrate.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)}; default all"
    )

    clock = commands.add_parser("clock", help="a service's outbox relay and due jobs (services mode)")
    clock.add_argument("service", choices=SERVICES)

    post = commands.add_parser("post-event", help="sign a CRM event (JSON file) and post it")
    post.add_argument("file", type=Path)
    post.add_argument(
        "--url",
        default=None,
        help="the intake's full URL, or the base URL of the process (http://127.0.0.1:8001); default: "
        "$SURVEY_PUBLIC_URL, else $PUBLIC_BASE_URL, else http://127.0.0.1:$PORT",
    )
    post.add_argument(
        "--source",
        default=None,
        help="a standard source of CLOSELOOP_SOURCES: posts to its URL, signed with its secret",
    )

    roles = "|".join(role.value for role in Role)
    user = commands.add_parser("create-user", help="a staff user; the password is read from standard input")
    user.add_argument("email")
    user.add_argument("--role", required=True, metavar=roles)
    user.add_argument("--name", default=None, help="as shown to colleagues; default: the email")

    key = commands.add_parser("create-api-key", help="an API key for a machine, alone on the last line")
    key.add_argument("--name", required=True, help="what uses the key, e.g. 'CRM sync'")
    key.add_argument("--role", required=True, metavar=roles)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if args.command == "run":
        from .embedded import run_embedded

        run_embedded(args.host, args.port, demo=not args.no_demo)
    elif args.command == "migrate":
        unknown = sorted(set(args.services) - set(SERVICES))
        if unknown:
            parser.error(f"unknown service {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
        from .services import SERVICES as WIRINGS

        for service in args.services or SERVICES:
            wiring = WIRINGS[service]
            wiring.migrate(wiring.bootstrap(settings))
            print(f"{service}: migrated")
    elif args.command == "clock":
        return _run_clock(settings, args.service)
    elif args.command == "post-event":
        return _post_event(settings, args.file, args.url, args.source)
    elif args.command == "create-user":
        return _create_user(settings, args.email, args.role, args.name)
    elif args.command == "create-api-key":
        return _create_api_key(settings, args.name, args.role)
    return 0


def _run_clock(settings: Settings, service: str) -> int:
    from .services import SERVICES as WIRINGS

    wiring = WIRINGS[service]
    runtime = wiring.bootstrap(settings)
    # The clock may start before the web process has migrated; both may migrate, one waits for the other.
    wiring.migrate(runtime)
    # On PostgreSQL the outbox's trigger (and the service's queue tables') wakes this clock when another
    # process commits events.
    wakeup = (
        PostgresWakeup(runtime.database.dsn, [outbox_channel(service), *wiring.wake_channels])
        if runtime.database.is_postgresql
        else None
    )
    jobs = wiring.clock_jobs(runtime, create_broker(settings.broker_url), woken=wakeup is not None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("closeloop").info("%s clock running %s", service, ", ".join(job.name for job in jobs))
    run_clock(jobs, stop, wakeup=wakeup)
    return 0


def event_intake_url(settings: Settings, url: str | None, source: str | None = None) -> str:
    """Where post-event posts: a URL with a path is taken as it is; a base URL (or none: the running
    process's own address, from the settings) gets the intake's path for the source."""
    path = f"/v1/sources/{source}/events" if source else "/v1/events"
    if url is None:
        return settings.public_url_for("survey") + path
    if urlsplit(url).path.strip("/") == "":
        return url.rstrip("/") + path
    return url


def _post_event(settings: Settings, file: Path, url: str | None, source: str | None = None) -> int:
    secret = settings.webhook_secret
    if source is not None:
        configured = settings.sources.get(source)
        if configured is None or configured.format != "standard":
            print(
                f"closeloop post-event: no standard source {source!r} in CLOSELOOP_SOURCES", file=sys.stderr
            )
            return 2
        secret = configured.secret
    try:
        event = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        print(f"closeloop post-event: cannot read {file}: {error}", file=sys.stderr)
        return 2
    if not isinstance(event, dict):
        print(f"closeloop post-event: {file} must hold one JSON object", file=sys.stderr)
        return 2
    # Example files leave the time out, so they are never too old to survey.
    event.setdefault("occurred_at", utcnow().isoformat())
    body = json.dumps(event).encode()
    url = event_intake_url(settings, url, source)
    headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as error:
        print(f"closeloop post-event: cannot reach {url}: {error}", file=sys.stderr)
        return 2
    print(response.status_code, response.text.strip())
    return 0 if response.ok else 1


def _create_user(settings: Settings, email: str, role: str, name: str | None) -> int:
    try:
        # Refuse what can be refused before asking for the password twice.
        normalize_email(email)
        parse_role(role)
        password = _read_password()
        check_password_policy(password)
        with _identity_store(settings) as store:
            user = store.create_user(email, password, role, name)
    except IdentityError as refusal:
        print(f"closeloop create-user: {refusal}", file=sys.stderr)
        return 2
    print(f"created {user.role} {user.email}")
    return 0


def _read_password() -> str:
    if not sys.stdin.isatty():  # piped by a script: printf '%s\n' "$PASSWORD" | closeloop create-user ...
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise IdentityError("The two passwords differ.")
    return password


def _create_api_key(settings: Settings, name: str, role: str) -> int:
    try:
        with _identity_store(settings) as store:
            key, plaintext = store.create_api_key(name, role, created_by="command line")
    except IdentityError as refusal:
        print(f"closeloop create-api-key: {refusal}", file=sys.stderr)
        return 2
    print(f"API key {key.name!r} with role {key.role}, shown this once:")
    # Alone on the last line, so a script can take it with `| tail -n 1`.
    print(plaintext)
    return 0


@contextmanager
def _identity_store(settings: Settings) -> Iterator[IdentityStore]:
    # Alembic's progress lines would bury the one line these commands answer with.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    database = Database(settings.identity_database_url)
    try:
        store = IdentityStore(database)
        store.migrate()
        yield store
    finally:
        database.dispose()


if __name__ == "__main__":
    sys.exit(main())
