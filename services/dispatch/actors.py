"""The dispatch service's consumers: use cases declared with ``@consumes``; its wiring binds them."""

from __future__ import annotations

from . import privacy, service

CONSUMERS = (
    service.schedule_invitation,
    service.note_answer,
    service.schedule_referral_request,
    service.schedule_review_request,
    service.schedule_close_loop_message,
    service.schedule_reprompt,
    privacy.record_unsubscribe,
    privacy.erase_customer,
)
