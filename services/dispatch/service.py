"""The dispatch service's use cases: schedule, send, follow provider reports, take inbound SMS."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from shared.channels import Channel
from shared.clock import utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.http import NotFoundError
from shared.locales import localized, resolve_locale
from shared.metrics import times_sends

from . import domain, routes
from .domain import DELIVERY_RETRIES, DeliveryKind, DeliveryState
from .models import Delivery, InboundSms, OptOut, ProviderEvent
from .providers import (
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    redact_contact_details,
)
from .providers.webhooks import ProviderStatus, ProviderStatusEvent, SmsReplyKind, classify_sms_reply
from .runtime import DispatchRuntime
from .unit_of_work import DispatchUnitOfWork

log = logging.getLogger(__name__)

_emails = Environment(loader=PackageLoader("services.dispatch", "templates"), autoescape=select_autoescape())


@consumes("invitation.requested")
def schedule_invitation(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    """Pick the channel for a requested invitation, render the message, and send it once committed."""
    data = event.data
    _schedule(
        runtime,
        uow,
        DeliveryKind.INVITATION,
        data["invitation_id"],
        {**data["contact"], "preferred_channel": data["preferred_channel"]},
        data["locale"],
        lambda delivery: _render_invitation(runtime, delivery, data["message"]),
        invitation_id=data["invitation_id"],
    )


@consumes("referral.requested")
def schedule_referral_request(
    runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent
) -> None:
    """Send a promoter their own referral link, on their channel, in their language."""
    data = event.data
    locale = resolve_locale(data["locale"])
    message = domain.referral_message(locale, data["customer"]["name"], data["referral_url"])
    _schedule_message(
        runtime, uow, DeliveryKind.REFERRAL, data["referral_id"], data["customer"], locale, message
    )


@consumes("review.requested")
def schedule_review_request(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    """Ask a respondent for a review, worded for their score, on their channel, in their language."""
    data = event.data
    locale = resolve_locale(data["locale"])
    message = domain.review_message(locale, data["customer"]["name"], data["review_url"], data["score"])
    _schedule_message(
        runtime, uow, DeliveryKind.REVIEW, data["review_request_id"], data["customer"], locale, message
    )


@consumes("followup.resolved")
def schedule_close_loop_message(
    runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent
) -> None:
    """Send the success team's closing words to the customer, when the resolved task has some."""
    data = event.data
    text = (data.get("close_loop_message") or "").strip()
    if not text:
        return
    locale = resolve_locale(data["locale"])
    message = domain.close_loop_message(locale, data["customer"]["name"], text)
    _schedule_message(
        runtime, uow, DeliveryKind.CLOSE_LOOP, data["task_id"], data["customer"], locale, message
    )


def _schedule_message(
    runtime: DispatchRuntime,
    uow: DispatchUnitOfWork,
    kind: DeliveryKind,
    source_id: str,
    customer: dict[str, Any],
    locale: str,
    message: domain.CustomerMessage,
) -> None:
    render = partial(_render_message, runtime, message=message)
    _schedule(runtime, uow, kind, source_id, customer, locale, render)


def _schedule(
    runtime: DispatchRuntime,
    uow: DispatchUnitOfWork,
    kind: DeliveryKind,
    source_id: str,
    contact: dict[str, Any],
    locale: str,
    render: Callable[[Delivery], dict[str, Any]],
    invitation_id: str | None = None,
) -> None:
    """One delivery of ``kind`` for ``source_id``, on the customer's channel, sent once committed.

    Never to an address that opted out: with no channel left the delivery is kept as suppressed, with why.
    """
    if any(delivery.kind == kind for delivery in uow.deliveries.for_source(source_id)):
        # Asked again under another event id (a producer's retry): the first request is the one sent.
        log.info("%s %s already has its delivery", kind, source_id)
        return
    delivery = _new_delivery(uow, kind, source_id, contact, locale, invitation_id)
    if delivery.status == DeliveryState.SCHEDULED:
        delivery.content = render(delivery)
        uow.after_commit(lambda: attempt_delivery(runtime, delivery.id))
    uow.deliveries.add(delivery)


def _new_delivery(
    uow: DispatchUnitOfWork,
    kind: DeliveryKind,
    source_id: str,
    contact: dict[str, Any],
    locale: str,
    invitation_id: str | None,
) -> Delivery:
    email, phone = contact.get("email"), contact.get("phone")
    opted_out = {
        channel
        for channel, address in ((Channel.EMAIL, email), (Channel.SMS, phone))
        if address and _is_opted_out(uow, channel, address)
    }
    choice = domain.choose_channel(contact["preferred_channel"], email, phone, opted_out)
    now = utcnow()
    return Delivery(
        id=str(uuid.uuid4()),
        source_id=source_id,
        invitation_id=invitation_id,
        kind=kind,
        channel=choice[0] if choice else contact["preferred_channel"],
        address=choice[1] if choice else "",
        recipient_name=contact.get("name"),
        locale=locale,
        content={},
        status=DeliveryState.SCHEDULED if choice else DeliveryState.SUPPRESSED,
        attempts=0,
        next_attempt_at=now if choice else None,
        last_error=None if choice else domain.suppression_reason(email, phone),
        created_at=now,
        updated_at=now,
    )


def _render_invitation(
    runtime: DispatchRuntime, delivery: Delivery, message: dict[str, Any]
) -> dict[str, Any]:
    if delivery.channel == Channel.SMS:
        return {"body": message["sms_body"]}
    links = domain.score_links(message["answer_url"])
    return {
        "subject": message["subject"],
        "html": _emails.get_template("dispatch/invitation_email.html").render(
            message=message,
            links=links,
            locale=delivery.locale,
            footer=localized(domain.FOOTER_TEXTS, delivery.locale),
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


def _render_message(
    runtime: DispatchRuntime, delivery: Delivery, message: domain.CustomerMessage
) -> dict[str, Any]:
    if delivery.channel == Channel.SMS:
        return {"body": message.sms_body}
    footer = localized(domain.MESSAGE_FOOTER_TEXTS, delivery.locale)
    unsubscribe_url = _unsubscribe_url(runtime, delivery.id)
    return {
        "subject": message.subject,
        "html": _emails.get_template("dispatch/message_email.html").render(
            message=message, locale=delivery.locale, footer=footer, unsubscribe_url=unsubscribe_url
        ),
        "text": domain.message_email_text(message, footer["unsubscribe"], unsubscribe_url),
    }


def _unsubscribe_url(runtime: DispatchRuntime, delivery_id: str) -> str:
    # The delivery id is random (uuid4) and names one message, so it can stand in the link.
    return routes.UNSUBSCRIBE.url(runtime.public_url, delivery_id=delivery_id)


# --- Sending ----------------------------------------------------------------------------------------


def attempt_delivery(runtime: DispatchRuntime, delivery_id: str, now: datetime | None = None) -> bool:
    """One provider call for a due delivery; False when it was not due or another worker claimed it."""
    with runtime.unit_of_work() as uow:
        delivery = uow.deliveries.claim(delivery_id, now or utcnow())
    if delivery is None:
        return False
    _attempt(runtime, delivery)
    return True


def send_due_deliveries(runtime: DispatchRuntime, limit: int = 50) -> int:
    """Scheduler job: attempt every delivery whose time has come (retries, later: quiet hours).

    The batch is claimed at once, so its calls must end within the claim's lease (50 x a 10 s timeout).
    """
    with runtime.unit_of_work() as uow:
        claimed = uow.deliveries.claim_due(utcnow(), limit)
    for delivery in claimed:
        try:
            _attempt(runtime, delivery)
        except Exception:
            # The rest of the batch is claimed too: it must not wait for the lease because of this one.
            log.exception("delivery %s: the attempt ended unexpectedly", delivery.id)
    return len(claimed)


def recover_stalled_deliveries(runtime: DispatchRuntime, now: datetime | None = None) -> int:
    """Put deliveries whose worker died mid-attempt back on the schedule.

    The attempt was counted when it was claimed, so a message that keeps killing its worker still stops at its
    last attempt. The provider may have accepted the lost attempt: a rare duplicate beats a lost survey.
    """
    with runtime.unit_of_work() as uow:
        stalled = uow.deliveries.recover_stalled(now or utcnow())
        for delivery in stalled:
            delivery.last_error = "the attempt was interrupted before the provider answered"
    return len(stalled)


def _attempt(runtime: DispatchRuntime, delivery: Delivery) -> None:
    """The provider call for a claimed delivery, outside any transaction; its outcome in a new one."""
    try:
        receipt = _send(runtime, delivery)
    except TransientDeliveryError as error:
        _record_failure(runtime, delivery.id, error, retry_after=error.retry_after)
    except PermanentDeliveryError as error:
        _record_failure(runtime, delivery.id, error, permanent=True, opted_out=error.opted_out)
    else:
        _record_sent(runtime, delivery.id, receipt)


@times_sends
def _send(runtime: DispatchRuntime, delivery: Delivery) -> SendReceipt:
    content = delivery.content
    if delivery.channel == Channel.EMAIL:
        return runtime.email.send_email(
            OutgoingEmail(
                to_email=delivery.address,
                to_name=delivery.recipient_name,
                subject=content["subject"],
                html=content["html"],
                text=content["text"],
                reference=delivery.id,
                unsubscribe_url=_unsubscribe_url(runtime, delivery.id),
                # Opaque, as SendGrid keeps categories forever: statistics per kind of message.
                category=f"closeloop-{delivery.kind}",
            )
        )
    status_callback = routes.TWILIO_STATUS.url(
        runtime.public_url, {routes.TWILIO_STATUS_REFERENCE: delivery.id}
    )
    return runtime.sms.send_sms(
        OutgoingSms(
            to=delivery.address,
            body=content["body"],
            reference=delivery.id,
            status_callback_url=status_callback,
        )
    )


def _record_sent(runtime: DispatchRuntime, delivery_id: str, receipt: SendReceipt) -> None:
    with runtime.unit_of_work() as uow:
        delivery = uow.deliveries.get(delivery_id)
        # The provider's own report can come before its answer to the call, and may have moved it further.
        sent = domain.is_forward_transition(delivery.status, DeliveryState.SENT)
        DELIVERY_RETRIES.finish(delivery, DeliveryState.SENT if sent else delivery.status, utcnow())
        delivery.provider, delivery.provider_message_id = receipt.provider, receipt.provider_message_id
    log.info("delivery %s sent by %s", delivery_id, receipt.provider)


def _record_failure(
    runtime: DispatchRuntime,
    delivery_id: str,
    error: Exception,
    retry_after: float | None = None,
    permanent: bool = False,
    opted_out: bool = False,
) -> None:
    now = utcnow()
    with runtime.unit_of_work() as uow:
        delivery = uow.deliveries.get(delivery_id)
        if delivery.status != DeliveryState.SENDING:
            # A provider report came first: the call failed (timed out) after the provider took the message.
            log.info(
                "delivery %s: its call failed after a report moved it to %s", delivery_id, delivery.status
            )
            return
        if permanent:
            DELIVERY_RETRIES.finish(delivery, DeliveryState.FAILED, now)
        else:
            DELIVERY_RETRIES.retry_later(delivery, now, retry_after)
        delivery.last_error = redact_contact_details(str(error))[:1000]
        if opted_out:
            _record_opt_out(uow, delivery.channel, delivery.address, "provider")
    log.warning(
        "delivery %s attempt %s failed: %s",
        delivery_id,
        "final" if delivery.status == DeliveryState.FAILED else "retry",
        delivery.last_error,
    )


# --- Opt-outs ---------------------------------------------------------------------------------------


def _is_opted_out(uow: DispatchUnitOfWork, channel: str, address: str) -> bool:
    return uow.opt_outs.has(channel, domain.normal_address(channel, address))


def _record_opt_out(uow: DispatchUnitOfWork, channel: str, address: str, source: str) -> None:
    address = domain.normal_address(channel, address)
    if not uow.opt_outs.has(channel, address):
        uow.opt_outs.add(OptOut(channel=channel, address=address, source=source, created_at=utcnow()))


def unsubscribe(runtime: DispatchRuntime, delivery_id: str) -> None:
    """The RFC 8058 one-click POST, or the button on the unsubscribe page."""
    with runtime.unit_of_work() as uow:
        delivery = _unsubscribable_delivery(uow, delivery_id)
        _record_opt_out(uow, delivery.channel, delivery.address, "unsubscribe_link")


def is_unsubscribed(runtime: DispatchRuntime, delivery_id: str) -> bool:
    with runtime.unit_of_work() as uow:
        delivery = _unsubscribable_delivery(uow, delivery_id)
        return _is_opted_out(uow, delivery.channel, delivery.address)


def _unsubscribable_delivery(uow: DispatchUnitOfWork, delivery_id: str) -> Delivery:
    delivery = uow.deliveries.get(delivery_id)
    if delivery is None or not delivery.address:
        raise NotFoundError("This unsubscribe link is not valid.")
    return delivery


# --- Provider reports and inbound SMS ------------------------------------------------------------------


def apply_status_event(runtime: DispatchRuntime, report: ProviderStatusEvent) -> bool:
    """Apply one provider report once; a delivery's state only moves forward. False for a repeat."""
    with runtime.unit_of_work() as uow:
        if uow.provider_events.has(report.provider_event_id):
            return False
        delivery = uow.deliveries.get(report.reference) if report.reference else None
        if delivery is None and report.provider_message_id:
            delivery = uow.deliveries.with_provider_message_id(report.provider_message_id)
        uow.provider_events.add(
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
            _record_opt_out(uow, delivery.channel, delivery.address, str(report.status))
        state = report.status.delivery_state
        if state is not None and domain.is_forward_transition(delivery.status, state):
            delivery.status = state
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
    phone = domain.normal_address(Channel.SMS, from_phone)
    with runtime.unit_of_work() as uow:
        if uow.inbound_sms.has(message_sid):
            return None
        delivery = None
        if kind is SmsReplyKind.OPT_OUT:
            _record_opt_out(uow, Channel.SMS, phone, "sms_stop")
        elif kind is SmsReplyKind.OPT_IN:
            uow.opt_outs.remove(Channel.SMS, phone)
        elif kind is SmsReplyKind.ANSWER:
            delivery = uow.deliveries.latest_to(
                Channel.SMS, phone, domain.REPLYABLE_STATES, since=now - domain.REPLY_WINDOW
            )
            # A reply is to the last message that reached the number: after a referral or review request
            # or a close-the-loop message it is about that, not a comment on the survey answered before.
            if delivery and delivery.kind == DeliveryKind.INVITATION:
                uow.emit(
                    "sms.received",
                    {
                        "message_sid": message_sid,
                        "invitation_id": delivery.invitation_id,
                        "body": body,
                        "received_at": now.isoformat(),
                    },
                )
        uow.inbound_sms.add(
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
    """Oldest first."""
    with runtime.unit_of_work() as uow:
        return uow.deliveries.for_invitation(invitation_id)


def deliveries_requested_by(runtime: DispatchRuntime, source_id: str) -> list[Delivery]:
    """What an invitation, a referral or review request or a resolved task asked for, oldest first."""
    with runtime.unit_of_work() as uow:
        return uow.deliveries.for_source(source_id)
