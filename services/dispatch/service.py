"""The dispatch service's use cases: schedule, send, follow provider reports, take inbound SMS."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.http import NotFoundError
from shared.unit_of_work import UnitOfWork

from . import domain
from .models import Delivery, InboundSms, OptOut, ProviderEvent
from .providers import (
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    TransientDeliveryError,
    redact_contact_details,
)
from .providers.webhooks import (
    ProviderStatus,
    ProviderStatusEvent,
    SmsReplyKind,
    classify_sms_reply,
    delivery_state_for,
    is_forward_transition,
)
from .runtime import DispatchRuntime

log = logging.getLogger(__name__)

# An SMS reply answers the latest invitation sent to that number within this window.
REPLY_WINDOW = timedelta(days=14)

_emails = Environment(loader=PackageLoader("services.dispatch", "templates"), autoescape=select_autoescape())


@consumes("invitation.requested")
def schedule_invitation(runtime: DispatchRuntime, uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Pick the channel for a requested invitation, render the message, and send it once committed."""
    delivery = _new_invitation_delivery(runtime, uow.session, event.data)
    if delivery.status == "scheduled":
        uow.after_commit(lambda: attempt_delivery(runtime, delivery.id))


def _new_invitation_delivery(runtime: DispatchRuntime, session: Session, data: dict[str, Any]) -> Delivery:
    contact, message = data["contact"], data["message"]
    opted_out = _opted_out_channels(session, contact.get("email"), contact.get("phone"))
    choice = domain.choose_channel(
        data["preferred_channel"], contact.get("email"), contact.get("phone"), opted_out
    )
    now = utcnow()
    delivery = Delivery(
        id=str(uuid.uuid4()),
        invitation_id=data["invitation_id"],
        kind="invitation",
        channel=choice[0] if choice else data["preferred_channel"],
        address=choice[1] if choice else "",
        recipient_name=contact.get("name"),
        locale=data["locale"],
        content={},
        status="scheduled" if choice else "suppressed",
        attempts=0,
        next_attempt_at=now if choice else None,
        last_error=None if choice else "the customer has opted out of every channel we have an address for",
        created_at=now,
        updated_at=now,
    )
    if choice:
        delivery.content = _render_invitation(runtime, delivery, message)
    session.add(delivery)
    return delivery


def _render_invitation(
    runtime: DispatchRuntime, delivery: Delivery, message: dict[str, Any]
) -> dict[str, Any]:
    if delivery.channel == "sms":
        return {"body": message["sms_body"]}
    links = domain.score_links(message["answer_url"])
    return {
        "subject": message["subject"],
        "html": _emails.get_template("dispatch/invitation_email.html").render(
            message=message,
            links=links,
            locale=delivery.locale,
            footer=domain.footer_texts(delivery.locale),
            unsubscribe_url=_unsubscribe_url(runtime, delivery.id),
        ),
        "text": domain.invitation_email_text(
            message["greeting"],
            message["question"],
            message["low_label"],
            message["high_label"],
            message["answer_url"],
        ),
    }


def _unsubscribe_url(runtime: DispatchRuntime, delivery_id: str) -> str:
    # The delivery id is random (uuid4) and names one message, so it can stand in the link.
    return f"{runtime.public_url}/unsubscribe/{delivery_id}"


def _opted_out_channels(session: Session, email: str | None, phone: str | None) -> set[str]:
    return {
        channel
        for channel, address in (("email", email), ("sms", phone))
        if address and _is_opted_out(session, channel, address)
    }


def _is_opted_out(session: Session, channel: str, address: str) -> bool:
    query = select(OptOut.id).where(OptOut.channel == channel, OptOut.address == _normal(channel, address))
    return session.scalars(query).first() is not None


def _normal(channel: str, address: str) -> str:
    return address.strip().lower() if channel == "email" else address.strip()


# --- Sending ----------------------------------------------------------------------------------------


def attempt_delivery(runtime: DispatchRuntime, delivery_id: str, now: datetime | None = None) -> bool:
    """One provider call for a due delivery; False when it was not due or another worker claimed it."""
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        session = uow.session
        query = select(Delivery).where(
            Delivery.id == delivery_id, Delivery.status == "scheduled", Delivery.next_attempt_at <= now
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        delivery = session.scalars(query).first()
        if delivery is None:
            return False
        # Claimed: counted before the call, so a worker killed mid-call cannot retry forever.
        delivery.status, delivery.attempts, delivery.updated_at = "sending", delivery.attempts + 1, now
        channel, address, name, content = (
            delivery.channel,
            delivery.address,
            delivery.recipient_name,
            delivery.content,
        )
    try:
        if channel == "email":
            receipt = runtime.email.send_email(
                OutgoingEmail(
                    to_email=address,
                    to_name=name,
                    subject=content["subject"],
                    html=content["html"],
                    text=content["text"],
                    reference=delivery_id,
                    unsubscribe_url=_unsubscribe_url(runtime, delivery_id),
                )
            )
        else:
            receipt = runtime.sms.send_sms(
                OutgoingSms(
                    to=address,
                    body=content["body"],
                    reference=delivery_id,
                    status_callback_url=f"{runtime.public_url}/webhooks/twilio/status?delivery_id={delivery_id}",
                )
            )
    except TransientDeliveryError as error:
        _after_failed_attempt(runtime, delivery_id, error, error.retry_after)
    except PermanentDeliveryError as error:
        _after_failed_attempt(runtime, delivery_id, error, None, permanent=True, opted_out=error.opted_out)
    else:
        with runtime.unit_of_work() as uow:
            session = uow.session
            delivery = session.get(Delivery, delivery_id)
            delivery.status, delivery.next_attempt_at, delivery.updated_at = "sent", None, utcnow()
            delivery.provider, delivery.provider_message_id = receipt.provider, receipt.provider_message_id
        log.info("delivery %s sent by %s", delivery_id, receipt.provider)
    return True


def _after_failed_attempt(
    runtime: DispatchRuntime,
    delivery_id: str,
    error: Exception,
    retry_after: float | None,
    permanent: bool = False,
    opted_out: bool = False,
) -> None:
    now = utcnow()
    with runtime.unit_of_work() as uow:
        session = uow.session
        delivery = session.get(Delivery, delivery_id)
        retry_at = None if permanent else domain.next_attempt_at(delivery.attempts, now, retry_after)
        delivery.status = "scheduled" if retry_at else "failed"
        delivery.next_attempt_at = retry_at
        delivery.last_error = redact_contact_details(str(error))[:1000]
        delivery.updated_at = now
        if opted_out:
            _record_opt_out(session, delivery.channel, delivery.address, "provider")
    log.warning(
        "delivery %s attempt %s failed: %s",
        delivery_id,
        "retry" if retry_at else "final",
        delivery.last_error,
    )


def recover_stalled_deliveries(runtime: DispatchRuntime, now: datetime | None = None) -> int:
    """Put deliveries whose worker died mid-attempt back on the schedule.

    The attempt was counted when it was claimed, so a message that keeps killing its worker still stops at
    MAX_ATTEMPTS. The provider may have accepted the lost attempt: a rare duplicate beats a lost survey.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        session = uow.session
        stalled = session.scalars(
            select(Delivery).where(
                Delivery.status == "sending", Delivery.updated_at <= now - domain.STALLED_AFTER
            )
        ).all()
        for delivery in stalled:
            retry_at = domain.next_attempt_at(delivery.attempts, now)
            delivery.status = "scheduled" if retry_at else "failed"
            delivery.next_attempt_at = retry_at
            delivery.last_error = "the attempt was interrupted before the provider answered"
            delivery.updated_at = now
        return len(stalled)


def send_due_deliveries(runtime: DispatchRuntime, limit: int = 50) -> int:
    """Scheduler job: attempt every delivery whose time has come (retries, later: quiet hours)."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        session = uow.session
        due = session.scalars(
            select(Delivery.id)
            .where(Delivery.status == "scheduled", Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        ).all()
    return sum(attempt_delivery(runtime, delivery_id, now) for delivery_id in due)


# --- Opt-outs ---------------------------------------------------------------------------------------


def _record_opt_out(session: Session, channel: str, address: str, source: str) -> None:
    if not _is_opted_out(session, channel, address):
        session.add(
            OptOut(channel=channel, address=_normal(channel, address), source=source, created_at=utcnow())
        )


def unsubscribe(runtime: DispatchRuntime, delivery_id: str) -> None:
    """The RFC 8058 one-click POST, or the button on the unsubscribe page."""
    with runtime.unit_of_work() as uow:
        session = uow.session
        delivery = _unsubscribable_delivery(session, delivery_id)
        _record_opt_out(session, delivery.channel, delivery.address, "unsubscribe_link")


def is_unsubscribed(runtime: DispatchRuntime, delivery_id: str) -> bool:
    with runtime.unit_of_work() as uow:
        session = uow.session
        delivery = _unsubscribable_delivery(session, delivery_id)
        return _is_opted_out(session, delivery.channel, delivery.address)


def _unsubscribable_delivery(session: Session, delivery_id: str) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or not delivery.address:
        raise NotFoundError("This unsubscribe link is not valid.")
    return delivery


# --- Provider reports and inbound SMS ------------------------------------------------------------------


def apply_status_event(runtime: DispatchRuntime, report: ProviderStatusEvent) -> bool:
    """Apply one provider report once; a delivery's state only moves forward. False for a repeat."""
    with runtime.unit_of_work() as uow:
        session = uow.session
        if session.get(ProviderEvent, report.provider_event_id):
            return False
        delivery = session.get(Delivery, report.reference) if report.reference else None
        if delivery is None and report.provider_message_id:
            delivery = session.scalars(
                select(Delivery).where(Delivery.provider_message_id == report.provider_message_id)
            ).first()
        session.add(
            ProviderEvent(
                provider_event_id=report.provider_event_id,
                provider=report.provider,
                delivery_id=delivery.id if delivery else None,
                status=str(report.status),
                occurred_at=report.occurred_at,
            )
        )
        if delivery is None:
            log.info("%s report for an unknown message", report.provider)
            return True
        if _means_opted_out(report):
            _record_opt_out(session, delivery.channel, delivery.address, str(report.status))
        if is_forward_transition(delivery.status, report.status):
            delivery.status = delivery_state_for(report.status)
            delivery.last_error = report.reason or delivery.last_error
            delivery.updated_at = utcnow()
        return True


def _means_opted_out(report: ProviderStatusEvent) -> bool:
    """An unsubscribe or spam report, or SendGrid dropping mail to an address on its own suppression lists."""
    if report.status in (ProviderStatus.UNSUBSCRIBED, ProviderStatus.SPAM_REPORTED):
        return True
    # SendGrid answers 202 to mail for a suppressed address and reports it as dropped, with these reasons.
    reason = (report.reason or "").lower()
    return report.status is ProviderStatus.DROPPED and (
        "unsubscribed address" in reason or "spam reporting" in reason
    )


def receive_sms(
    runtime: DispatchRuntime, message_sid: str, from_phone: str, body: str
) -> SmsReplyKind | None:
    """An inbound SMS: opt-out words are honoured, anything else answers the latest invitation.

    Returns what the message was, or None when this MessageSid was already received.
    """
    now = utcnow()
    kind = classify_sms_reply(body)
    with runtime.unit_of_work() as uow:
        session = uow.session
        if session.get(InboundSms, message_sid):
            return None
        delivery = None
        if kind is SmsReplyKind.OPT_OUT:
            _record_opt_out(session, "sms", from_phone, "sms_stop")
        elif kind is SmsReplyKind.OPT_IN:
            session.execute(
                delete(OptOut).where(OptOut.channel == "sms", OptOut.address == _normal("sms", from_phone))
            )
        elif kind is SmsReplyKind.ANSWER:
            delivery = session.scalars(
                select(Delivery)
                .where(
                    Delivery.channel == "sms",
                    Delivery.address == _normal("sms", from_phone),
                    Delivery.kind == "invitation",
                    Delivery.status.in_(("sent", "delivered")),
                    Delivery.created_at >= now - REPLY_WINDOW,
                )
                .order_by(Delivery.created_at.desc())
            ).first()
            if delivery:
                uow.emit(
                    "sms.received",
                    {
                        "message_sid": message_sid,
                        "invitation_id": delivery.invitation_id,
                        "body": body,
                        "received_at": now.isoformat(),
                    },
                )
        session.add(
            InboundSms(
                message_sid=message_sid,
                from_phone=from_phone,
                body=body,
                kind=str(kind),
                delivery_id=delivery.id if delivery else None,
                received_at=now,
            )
        )
    return kind


def deliveries_for(runtime: DispatchRuntime, invitation_id: str) -> list[Delivery]:
    with runtime.unit_of_work() as uow:
        session = uow.session
        return list(session.scalars(select(Delivery).where(Delivery.invitation_id == invitation_id)).all())
