"""The followup service's consumers: use cases declared with ``@consumes``; its wiring binds them."""

from __future__ import annotations

from . import privacy, service

CONSUMERS = (service.act_on_scored_response, service.attribute_referral, privacy.erase_customer)
