"""The sentiment service's consumers: use cases declared with ``@consumes``; its wiring binds them."""

from __future__ import annotations

from . import privacy, service

CONSUMERS = (service.score_response, privacy.erase_customer)
