"""Sandbox transports: every email and SMS lands on the /sandbox page instead of leaving the machine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from shared.channels import Channel
from shared.clock import utcnow
from shared.db import Database

from .domain import WAITING_STATES
from .models import Delivery, InboundSms, SandboxMessage
from .providers import OutgoingEmail, OutgoingSms, OutgoingWhatsApp, SendReceipt


class SandboxTransport:
    """An EmailTransport, SmsTransport and WhatsAppTransport that writes to the dispatch database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def send_email(self, email: OutgoingEmail) -> SendReceipt:
        return self._keep(
            email.reference, Channel.EMAIL, email.to_email, email.subject, email.text, email.html
        )

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        return self._keep(sms.reference, Channel.SMS, sms.to, None, sms.body, None)

    def send_whatsapp(self, message: OutgoingWhatsApp) -> SendReceipt:
        return self._keep(message.reference, Channel.WHATSAPP, message.to, None, message.preview, None)

    def find_sent(
        self, message: OutgoingEmail | OutgoingSms | OutgoingWhatsApp, since: datetime
    ) -> SendReceipt | None:
        """What the sandbox kept for this delivery, if an attempt got that far before its worker died."""
        kept = message_for(self.database, message.reference)
        return SendReceipt("sandbox", f"sandbox-{kept.id}") if kept else None

    def _keep(
        self, delivery_id: str, channel: str, to: str, subject: str | None, text: str, html: str | None
    ) -> SendReceipt:
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


def latest_messages(database: Database, limit: int = 100) -> list[SandboxMessage]:
    """What the sandbox 'sent', newest first."""
    with database.transaction() as session:
        query = select(SandboxMessage).order_by(SandboxMessage.id.desc()).limit(limit)
        return list(session.scalars(query).all())


def message_for(database: Database, delivery_id: str) -> SandboxMessage | None:
    with database.transaction() as session:
        query = select(SandboxMessage).where(SandboxMessage.delivery_id == delivery_id)
        return session.scalars(query).first()


def replies_by_delivery(database: Database) -> dict[str, list[InboundSms]]:
    """Inbound SMS by the delivery they answered ("" for none), oldest first."""
    with database.transaction() as session:
        replies = session.scalars(select(InboundSms).order_by(InboundSms.received_at)).all()
    by_delivery: dict[str, list[InboundSms]] = {}
    for reply in replies:
        by_delivery.setdefault(reply.delivery_id or "", []).append(reply)
    return by_delivery


def waiting_deliveries(database: Database, limit: int = 50) -> list[Delivery]:
    """Deliveries not sent yet (quiet hours, a reminder's delay, a retry), soonest first."""
    with database.transaction() as session:
        query = (
            select(Delivery)
            .where(Delivery.status.in_(WAITING_STATES))
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        )
        return list(session.scalars(query).all())
