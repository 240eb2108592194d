"""Run with ``dramatiq services.survey.worker --queues survey``."""

from shared.wiring import serve_worker

from .bootstrap import SERVICE

broker = serve_worker(SERVICE)
