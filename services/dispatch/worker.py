"""Run with ``dramatiq services.dispatch.worker --queues dispatch``."""

from shared.broker import serve_consumers
from shared.settings import Settings

from .actors import consumers
from .bootstrap import bootstrap

settings = Settings.from_env()
broker = serve_consumers(lambda: consumers(bootstrap(settings)), settings.broker_url)
