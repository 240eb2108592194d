"""Run with ``dramatiq services.dispatch.worker --queues dispatch``."""

from shared.wiring import serve_worker

from .bootstrap import SERVICE

broker = serve_worker(SERVICE)
