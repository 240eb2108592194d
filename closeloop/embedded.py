"""``make run``: the whole system in one process (SQLite, in-process broker, sandbox transports)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace

from werkzeug.serving import make_server

from shared.settings import MESSAGE_CHANNELS, Settings

from .demo import load_demo
from .home import create_home_app
from .system import build_system

log = logging.getLogger("closeloop")

QUIET_HOURS_VARIABLES = ("QUIET_HOURS", *(f"QUIET_HOURS_{channel.upper()}" for channel in MESSAGE_CHANNELS))


def sandbox_sending_hours(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Quiet hours off in the sandbox unless asked for: it reaches nobody, and the demo must show the whole
    loop within a minute at any hour. With real providers the customers' quiet hours always hold."""
    if settings.transport != "sandbox" or any(environ.get(name) for name in QUIET_HOURS_VARIABLES):
        return settings
    return replace(settings, quiet_hours=dict.fromkeys(MESSAGE_CHANNELS, "off"))


def run_embedded(host: str = "127.0.0.1", port: int | None = None, demo: bool = True) -> None:
    settings = sandbox_sending_hours(Settings.from_env(), os.environ)
    port = port or int(os.environ.get("PORT", "8000"))
    system = build_system(settings)
    system.start()
    demo_admin = load_demo(system) if demo else None
    identity = system.runtimes["followup"].identity
    server = make_server(host, port, system.wsgi_app(create_home_app(settings, identity)), threaded=True)
    print(f"\nCloseloop is running on http://{host}:{port}/  (Ctrl+C stops it)")
    print(
        f"  database: {settings.database_url}  broker: {settings.broker_url}  transport: {settings.transport}"
    )
    if settings.transport == "sandbox" and set(settings.quiet_hours.values()) == {"off"}:
        print("  quiet hours: off, as the sandbox reaches nobody; QUIET_HOURS=08:00-21:00 tries them")
    if demo_admin:
        print(f"  sign in as the demo admin: {demo_admin[0]}  password: {demo_admin[1]}")
    if settings.uses_development_secret_key:
        print("  staff sessions are signed with the development key: set CLOSELOOP_SECRET_KEY in production")
    if settings.uses_development_secret:
        print(f"  CRM webhook secret (development default): {settings.webhook_secret}")
        print("  set CLOSELOOP_WEBHOOK_SECRET to use your own")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        system.stop()
