"""Run with ``dramatiq services.sentiment.worker --queues sentiment``."""

from shared.wiring import serve_worker

from .bootstrap import SERVICE

broker = serve_worker(SERVICE)
