"""The provider edge of the dispatch service: SendGrid and Twilio transports and their webhooks.

Pure adapters: no database, no Flask. The dispatch service decides when to send and records what
happened; these modules only talk to the providers and translate their answers.
"""

from .base import (
    DeliveryError,
    EmailTransport,
    OutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    OutgoingWhatsApp,
    PermanentDeliveryError,
    Reconciling,
    SendReceipt,
    SmsTransport,
    TransientDeliveryError,
    WhatsAppTransport,
    mask_email,
    mask_phone,
    redact_contact_details,
)

__all__ = [
    "DeliveryError",
    "EmailTransport",
    "OutgoingEmail",
    "OutcomeUnknownError",
    "OutgoingSms",
    "OutgoingWhatsApp",
    "PermanentDeliveryError",
    "Reconciling",
    "SendReceipt",
    "SmsTransport",
    "TransientDeliveryError",
    "WhatsAppTransport",
    "mask_email",
    "mask_phone",
    "redact_contact_details",
]
