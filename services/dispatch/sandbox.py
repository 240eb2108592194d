"""Sandbox transports: every email and SMS lands on the /sandbox page instead of leaving the machine."""

from __future__ import annotations

from shared.clock import utcnow
from shared.db import Database

from .models import SandboxMessage
from .providers import OutgoingEmail, OutgoingSms, SendReceipt


class SandboxTransport:
    """An EmailTransport and SmsTransport that writes to the dispatch database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def send_email(self, email: OutgoingEmail) -> SendReceipt:
        return self._keep(email.reference, "email", email.to_email, email.subject, email.text, email.html)

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        return self._keep(sms.reference, "sms", sms.to, None, sms.body, None)

    def _keep(
        self, delivery_id: str, channel: str, to: str, subject: str | None, text: str, html: str | None
    ):
        with self.database.transaction() as session:
            message = SandboxMessage(
                delivery_id=delivery_id,
                channel=channel,
                to=to,
                subject=subject,
                text=text,
                html=html,
                created_at=utcnow(),
            )
            session.add(message)
            session.flush()
            return SendReceipt("sandbox", f"sandbox-{message.id}")
