"""The survey service's consumers: use cases declared with ``@consumes``; its wiring binds them."""

from __future__ import annotations

from . import service
from .delighted import service as delighted

CONSUMERS = (service.record_sms_answer, service.schedule_follow_up_survey, delighted.record_bounce)
