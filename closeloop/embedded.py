"""``make run``: the whole system in one process (SQLite, in-process broker, sandbox transports)."""

from __future__ import annotations

import logging
import os

from werkzeug.serving import make_server

from shared.settings import Settings

from .demo import load_demo
from .home import create_home_app
from .system import build_system

log = logging.getLogger("closeloop")


def run_embedded(host: str = "127.0.0.1", port: int | None = None, demo: bool = True) -> None:
    settings = Settings.from_env()
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
