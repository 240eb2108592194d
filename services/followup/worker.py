"""Run with ``dramatiq services.followup.worker --queues followup``."""

from shared.wiring import serve_worker

from .bootstrap import SERVICE

broker = serve_worker(SERVICE)
