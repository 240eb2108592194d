"""The four services, wired to one broker: what the embedded process and the tests run.

Services still talk only through events here: each keeps its own runtime and tables, and the broker carries
the events of ``shared.events.EVENTS`` and their acknowledgements.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RoutingException

from shared.scheduling import COMMITTED_EVENTS, PeriodicJob, run_clock
from shared.settings import Settings

from .services import SERVICES

if TYPE_CHECKING:
    # Imported where the embedded system starts: the gateway uses this module's PathRouter only.
    import dramatiq

log = logging.getLogger(__name__)


@dataclass
class System:
    settings: Settings
    broker: dramatiq.Broker
    runtimes: dict[str, Any]
    apps: dict[str, Flask]
    jobs: list[PeriodicJob]
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _worker: dramatiq.Worker | None = None

    def start(self, worker_threads: int = 4) -> None:
        """Start a dramatiq worker and the clock (outbox relays, due deliveries) in this process."""
        import dramatiq

        self._worker = dramatiq.Worker(self.broker, worker_threads=worker_threads, worker_timeout=100)
        self._worker.start()
        # Every service commits in this process, so the in-process wake-up hears every new event.
        clock = threading.Thread(
            target=run_clock,
            args=(self.jobs, self._stop),
            kwargs={"wakeup": COMMITTED_EVENTS},
            name="closeloop-clock",
            daemon=True,
        )
        clock.start()
        self._threads.append(clock)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._worker:
            self._worker.stop()
        self.broker.close()
        for runtime in self.runtimes.values():
            runtime.database.dispose()

    def wsgi_app(self, *extra_apps: Flask) -> PathRouter:
        return PathRouter([*extra_apps, *self.apps.values()])


def build_system(settings: Settings) -> System:
    from shared.broker import create_broker

    broker = create_broker(settings.broker_url)
    runtimes: dict[str, Any] = {}
    apps: dict[str, Flask] = {}
    jobs: list[PeriodicJob] = []
    for name, wiring in SERVICES.items():
        runtime = wiring.bootstrap(settings)
        wiring.migrate(runtime)
        wiring.declare(broker, runtime)
        runtimes[name] = runtime
        apps[name] = wiring.create_app(runtime)
        jobs.extend(wiring.clock_jobs(runtime, broker, woken=True))
    return System(settings, broker, runtimes, apps, jobs)


class PathRouter:
    """One WSGI entry for several Flask apps: each request goes to the app whose routes match its path."""

    def __init__(self, apps: list[Flask]) -> None:
        self.apps = apps

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app_for(environ)(environ, start_response)

    def app_for(self, environ: dict[str, Any]) -> Flask:
        for app in self.apps:
            try:
                app.url_map.bind_to_environ(environ).match()
            except NotFound:
                continue
            except (MethodNotAllowed, RoutingException):  # the path is this app's, the method or slash is not
                return app
            return app
        return self.apps[0]
