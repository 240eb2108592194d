"""The service protocol: what the embedded process, the CLI, the workers and the tests need of a service.

Each service's ``bootstrap`` module declares one ``ServiceWiring``; ``closeloop.services`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from shared.consumers import Consumer
from shared.db import Database
from shared.identity.store import IdentityStore
from shared.logs import configure_logging
from shared.migrations import upgrade
from shared.outbox import RELAY_BATCH, Outbox, outbox_channel
from shared.scheduling import PeriodicJob
from shared.settings import Settings
from shared.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    # Only the processes that run them load dramatiq (workers, clocks) or Flask (web processes).
    import dramatiq
    from flask import Flask


class ServiceRuntime(Protocol):
    """What every service's runtime offers: settings, database, outbox, identity store, units of work."""

    settings: Settings
    database: Database
    outbox: Outbox
    identity: IdentityStore

    def unit_of_work(self) -> UnitOfWork: ...


R = TypeVar("R", bound=ServiceRuntime)


@dataclass(frozen=True)
class ServiceWiring(Generic[R]):
    name: str
    bootstrap: Callable[[Settings], R]
    create_app: Callable[[R], Flask]
    migrations: Path
    version_table: str
    consumers: Sequence[Consumer] = ()
    # The service's own due jobs; the outbox relay and pruning are added to every service's clock.
    periodic_jobs: Callable[[R], list[PeriodicJob]] = field(default=lambda runtime: [])
    # PostgreSQL NOTIFY channels besides the outbox's that wake the service's clock (queue tables' triggers).
    wake_channels: Sequence[str] = ()

    def migrate(self, runtime: R) -> None:
        upgrade(runtime.database.url, self.migrations, self.version_table)
        # Every service's guard reads the identity tables; whichever starts first creates them.
        runtime.identity.migrate()

    def declare(self, broker: dramatiq.Broker, runtime: R) -> list[dramatiq.Actor]:
        """Bind the service's consumers and its outbox acknowledgements to ``broker``."""
        from shared.broker import declare_consumers

        return declare_consumers(broker, self.name, runtime, self.consumers, runtime.outbox)

    def clock_jobs(self, runtime: R, broker: dramatiq.Broker, woken: bool = False) -> list[PeriodicJob]:
        """The clock's jobs; ``woken``: its clock wakes when events are committed (``shared.scheduling``)."""
        from shared.broker import publisher

        outbox = runtime.outbox
        publish = publisher(broker)
        return [
            # Woken, the relay publishes new rows at once and polls each second for redeliveries; otherwise
            # every tenth of a second keeps the loop quick. A row is claimed by one clock at a time.
            PeriodicJob(
                f"{self.name}.outbox",
                1.0 if woken else 0.1,
                lambda: outbox.relay_due(publish),
                on_wakeup=woken,
                wake_channel=outbox_channel(self.name),
                batch=RELAY_BATCH,
            ),
            PeriodicJob(f"{self.name}.outbox_prune", 3600.0, outbox.prune),
            *(
                # A job that runs on wake-ups polls as quickly as the relay when nothing wakes the clock.
                job if woken or not job.on_wakeup else replace(job, interval=min(job.interval, 0.1))
                for job in self.periodic_jobs(runtime)
            ),
        ]


def serve_worker(wiring: ServiceWiring[Any], settings: Settings | None = None) -> dramatiq.Broker:
    """Body of a service's ``worker`` module, the one ``dramatiq services.<name>.worker`` imports."""
    import dramatiq

    from shared.broker import create_broker

    settings = settings or Settings.from_env()
    configure_logging(settings.log_json)
    broker = create_broker(settings.broker_url)
    dramatiq.set_broker(broker)
    wiring.declare(broker, wiring.bootstrap(settings))
    return broker


def service_app(wiring: ServiceWiring[Any], settings: Settings | None = None) -> Flask:
    """A service's app from the environment's settings: what gunicorn serves in services mode."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_json)
    return wiring.create_app(wiring.bootstrap(settings))
