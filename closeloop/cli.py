"""``closeloop``: run the embedded system, or one part of one service, and post signed events."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import requests

from shared.broker import create_broker
from shared.clock import utcnow
from shared.scheduling import run_clock
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
    post.add_argument("--url", default=None, help="default: $PUBLIC_BASE_URL/v1/events")

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
        return _post_event(settings, args.file, args.url)
    return 0


def _run_clock(settings: Settings, service: str) -> int:
    from .services import SERVICES as WIRINGS

    wiring = WIRINGS[service]
    runtime = wiring.bootstrap(settings)
    # The clock may start before the web process has migrated; both may migrate, one waits for the other.
    wiring.migrate(runtime)
    jobs = wiring.clock_jobs(runtime, create_broker(settings.broker_url))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("closeloop").info("%s clock running %s", service, ", ".join(job.name for job in jobs))
    run_clock(jobs, stop)
    return 0


def _post_event(settings: Settings, file: Path, url: str | None) -> int:
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
    url = url or settings.public_url_for("survey") + "/v1/events"
    headers = {"Content-Type": "application/json", **signed_headers(settings.webhook_secret, body)}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as error:
        print(f"closeloop post-event: cannot reach {url}: {error}", file=sys.stderr)
        return 2
    print(response.status_code, response.text.strip())
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
