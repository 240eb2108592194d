"""``closeloop``: run the embedded system, or one part of one service, and post signed events."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared import logs
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

if TYPE_CHECKING:
    from shared.wiring import ServiceWiring


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

    erase = commands.add_parser(
        "erase-customer", help="erase everything about a customer, in every service (customer.erased)"
    )
    erase.add_argument(
        "external_id", help="the customer's id in the CRM (delighted-<id> for Delighted's people)"
    )

    export = commands.add_parser(
        "export-customer", help="everything every service holds about a customer, as JSON"
    )
    export.add_argument("external_id")

    imports = commands.add_parser(
        "import-delighted", help="Delighted's CSV exports: responses, people, unsubscribes, bounces"
    )
    imports.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imports.add_argument(
        "--skip-bad-rows", action="store_true", help="import a file's readable rows even when others are not"
    )

    args = parser.parse_args(argv)
    settings = Settings.from_env()
    # Masked contacts, request ids; JSON lines with CLOSELOOP_LOG_JSON=true.
    logs.configure_logging(settings.log_json)
    if args.command == "run":
        from .embedded import run_embedded

        run_embedded(args.host, args.port, demo=not args.no_demo)
    elif args.command == "migrate":
        unknown = sorted(set(args.services) - set(SERVICES))
        if unknown:
            parser.error(f"unknown service {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
        for service in args.services or SERVICES:
            wiring = _wiring(service)
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
    elif args.command == "erase-customer":
        return _erase_customer(settings, args.external_id)
    elif args.command == "export-customer":
        return _export_customer(settings, args.external_id)
    elif args.command == "import-delighted":
        return _import_delighted(settings, args.files, args.skip_bad_rows)
    return 0


def _wiring(service: str) -> ServiceWiring[Any]:
    """The named service's wiring, importing that service alone: a clock, or the migration before a web
    process, holds no other service's modules (nor their libraries) in memory."""
    return importlib.import_module(f"services.{service}.bootstrap").SERVICE


@contextmanager
def _runtimes(settings: Settings, *services: str) -> Iterator[dict]:
    """The named services' runtimes on their migrated databases, disposed of afterwards."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    runtimes = {}
    try:
        for service in services:
            wiring = _wiring(service)
            runtimes[service] = wiring.bootstrap(settings)
            wiring.migrate(runtimes[service])
        yield runtimes
    finally:
        for runtime in runtimes.values():
            runtime.database.dispose()


def _erase_customer(settings: Settings, external_id: str) -> int:
    from services.survey import privacy
    from shared.errors import NotFoundError

    with _runtimes(settings, "survey") as runtimes:
        try:
            customer_id, counts = privacy.erase_by_external_id(runtimes["survey"], external_id)
        except NotFoundError as refusal:
            print(f"closeloop erase-customer: {refusal.detail}", file=sys.stderr)
            return 2
    if customer_id is None:
        waiting = json.dumps(counts)
        print(f"{external_id} was not a customer yet; erased their events waiting for a decision: {waiting}")
        return 0
    print(f"erased customer {customer_id} in survey: {json.dumps(counts)}")
    print(
        "the other services erase theirs when customer.erased reaches them (survey's clock relays it)"
    )
    return 0


def _export_customer(settings: Settings, external_id: str) -> int:
    from services.dispatch import privacy as dispatch_privacy
    from services.followup import privacy as followup_privacy
    from services.survey import privacy
    from shared.errors import NotFoundError

    with _runtimes(settings, "survey", "dispatch", "followup") as runtimes:
        try:
            survey_part = privacy.export_customer(
                runtimes["survey"], privacy.customer_id_for(runtimes["survey"], external_id)
            )
        except NotFoundError as refusal:
            print(f"closeloop export-customer: {refusal.detail}", file=sys.stderr)
            return 2
        keys = survey_part["keys"]
        export = {
            "external_id": external_id,
            "exported_at": utcnow().isoformat(),
            "survey": survey_part["tables"],
            "dispatch": dispatch_privacy.export_customer(runtimes["dispatch"], keys),
            "followup": followup_privacy.export_customer(runtimes["followup"], keys),
            # Sentiment keeps no customer data (only events it has not finished passing on).
            "sentiment": {},
        }
    print(json.dumps(export, indent=2, ensure_ascii=False, default=str))
    return 0


def _import_delighted(settings: Settings, files: list[Path], skip_bad_rows: bool) -> int:
    from services.survey.delighted.importer import ImportRefused, import_file

    failed = False
    with _runtimes(settings, "survey") as runtimes:
        for file in files:
            try:
                report = import_file(runtimes["survey"], file, skip_bad_rows)
            except ImportRefused as refusal:
                print(f"{file}: not imported: {refusal}", file=sys.stderr)
                failed = True
                continue
            for line, why in report.unreadable:
                print(f"{file}:{line}: unreadable row: {why}", file=sys.stderr)
            if report.committed:
                print(f"{file}: {report.kind}: {report.imported} imported, {report.skipped} already imported")
            else:
                print(
                    f"{file}: {report.kind}: nothing imported ({len(report.unreadable)} unreadable rows; "
                    "fix them, or pass --skip-bad-rows)",
                    file=sys.stderr,
                )
            failed = failed or bool(report.unreadable)
    return 1 if failed else 0


def _migrate_in_a_child(wiring: ServiceWiring[Any], settings: Settings) -> None:
    """Migrate in a forked child process: Alembic and its templates, some 10 MiB, would otherwise stay
    resident in a long-running process that needs them once. Forked before this process connects to
    anything, so the child shares no connection with it."""
    child = os.fork()
    if child == 0:
        status = 1
        try:
            wiring.migrate(wiring.bootstrap(settings))
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"closeloop clock: migrating {wiring.name} failed")


def _run_clock(settings: Settings, service: str) -> int:
    wiring = _wiring(service)
    # The clock may start before the web process has migrated; both may migrate, one waits for the other.
    _migrate_in_a_child(wiring, settings)
    runtime = wiring.bootstrap(settings)
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
    import requests  # only this command speaks HTTP; the clocks run from this module too

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
