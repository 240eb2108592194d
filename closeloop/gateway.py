"""One address for people in services mode: the four services' apps behind one WSGI dispatcher.

Staff sign in once and the same session cookie reaches every service's pages and APIs; customers' links
and the providers' webhooks may use it too. Consumers and clocks are not started here: they run in each
service's own worker and clock processes. Serve it with ``gunicorn 'closeloop.gateway:create_gateway()'``.
"""

from __future__ import annotations

from shared.logs import configure_logging
from shared.settings import Settings

from .services import SERVICES
from .system import PathRouter


def create_gateway(settings: Settings | None = None) -> PathRouter:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_json)
    return PathRouter([wiring.create_app(wiring.bootstrap(settings)) for wiring in SERVICES.values()])
