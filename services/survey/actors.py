"""The survey service's consumers: use cases declared with ``@consumes``; its wiring binds them."""

from __future__ import annotations

from . import service
from .analytics import service as analytics
from .delighted import service as delighted

CONSUMERS = (
    service.record_sms_answer,
    service.schedule_follow_up_survey,
    service.record_opt_out,
    service.record_opt_in,
    analytics.record_response_sentiment,
    delighted.record_bounce,
)
