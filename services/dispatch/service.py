"""The dispatch service's use cases: schedule, send, follow provider reports, take inbound SMS."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache, partial
from typing import TYPE_CHECKING, Any

from shared.channels import Channel, normal_address
from shared.clock import as_utc, utcnow
from shared.consumers import ReceivedEvent, consumes
from shared.errors import NotFoundError
from shared.locales import localized, resolve_locale
from shared.metrics import times_sends
from shared.settings import Settings

from . import domain, failures, routes
from .domain import DELIVERY_RETRIES, DeliveryKind, DeliveryState
from .models import Delivery, InboundSms, OptOut, ProviderEvent
from .providers import (
    OutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    OutgoingWhatsApp,
    PermanentDeliveryError,
    Reconciling,
    SendReceipt,
    TransientDeliveryError,
    mask_email,
    mask_phone,
    redact_contact_details,
)
from .providers.webhooks import ProviderStatus, ProviderStatusEvent, SmsReplyKind, classify_sms_reply
from .quiet_hours import SendingWindow, customer_zone, next_sending_time
from .runtime import DispatchRuntime
from .unit_of_work import DispatchUnitOfWork

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)


def _email_template(name: str) -> jinja2.Template:
    """An email's template, compiled on first use and kept: templates change with a release, so no file is
    looked at again per email."""
    return _email_templates().get_template(name)


@cache
def _email_templates() -> jinja2.Environment:
    # Imported here: Jinja (some 1.5 MiB) loads in the process that renders the first email, not in every
    # process importing the use cases (dispatch's worker and clock).
    import jinja2

    loader = jinja2.PackageLoader("services.dispatch", "templates")
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(), auto_reload=False)


@consumes("invitation.requested")
def schedule_invitation(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    """Pick the channel for a requested invitation, and send it once committed, worded as survey asks."""
    data = event.data
    _schedule(
        runtime,
        uow,
        DeliveryKind.INVITATION,
        data["invitation_id"],
        {**data["contact"], "preferred_channel": data["preferred_channel"]},
        data["locale"],
        lambda delivery: _survey_content(data["message"]),
        invitation_id=data["invitation_id"],
        touchpoint=data["touchpoint"],
        expires_at=data.get("expires_at"),
    )


@consumes("response.submitted")
def note_answer(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    """The customer answered: the messages that asked are answered, the reminders still waiting cancelled."""
    now = utcnow()
    for delivery in uow.deliveries.for_invitation(event.data["invitation_id"]):
        if delivery.status in domain.WAITING_STATES and delivery.reconcile_since:
            # Waiting to be looked up after an unknown outcome: the answer shows the provider had it.
            DELIVERY_RETRIES.finish(delivery, DeliveryState.ANSWERED, now)
            delivery.reconcile_since, delivery.failure_reason = None, None
        elif delivery.status in domain.WAITING_STATES:
            # A reminder, or an invitation still waiting for quiet hours answered through another channel.
            DELIVERY_RETRIES.finish(delivery, DeliveryState.CANCELLED, now)
            delivery.failure_reason = domain.CANCELLED_ANSWERED
        elif domain.reached_customer(delivery.status) and domain.is_forward_transition(
            delivery.status, DeliveryState.ANSWERED
        ):
            delivery.status, delivery.updated_at = DeliveryState.ANSWERED, now


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


@consumes("reprompt.requested")
def schedule_reprompt(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    """Ask once more, by SMS, a customer whose reply survey could not read; the answer goes to the survey."""
    data = event.data
    # By SMS only, as they wrote: the email address is left out so no fallback turns it into an email.
    contact = {**data["customer"], "email": None, "preferred_channel": Channel.SMS.value}
    _schedule(
        runtime,
        uow,
        DeliveryKind.REPROMPT,
        data["reprompt_id"],
        contact,
        resolve_locale(data["locale"]),
        lambda delivery: {"body": data["text"]},
        invitation_id=data["invitation_id"],
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
    touchpoint: str | None = None,
    expires_at: datetime | None = None,
) -> None:
    """One delivery of ``kind`` for ``source_id``, on the customer's channel, sent once committed.

    Never to an address that opted out: with no channel left the delivery is kept as suppressed, with why.
    A delivery due at once is claimed for its first attempt in this same transaction, its call marked as
    started, so the call follows the commit without a transaction of its own (as ``attempt_delivery`` would
    claim and mark it). The opt-out of its address is looked for once more by the claim's own statement,
    this transaction's last: an opt-out committed since the channel was chosen, before that statement, still
    stops it.
    """
    delivery = _new_delivery(runtime, uow, kind, source_id, contact, locale, invitation_id)
    delivery.touchpoint, delivery.expires_at = touchpoint, expires_at
    if delivery.status in domain.WAITING_STATES:
        delivery.content = render(delivery)
    send_now = delivery.status == DeliveryState.SCHEDULED
    if send_now:
        DELIVERY_RETRIES.mark_claimed(delivery, delivery.created_at)
        # Committed with the claim, before the call: a worker that dies before this commit has sent nothing.
        delivery.call_started_at = delivery.created_at
    if send_now:
        opt_out_address = normal_address(delivery.channel, delivery.address)
        added, opted_out = uow.deliveries.add_new_to_send(delivery, opt_out_address)
    else:
        added, opted_out = uow.deliveries.add_new(delivery), False
    if not added:
        # Asked again under another event id (a producer's retry): the first request is the one sent.
        log.info("%s %s already has its delivery", kind, source_id)
        return
    if not send_now:
        return
    if opted_out:
        uow.deliveries.save_claimed(delivery, partial(_unclaim_opted_out, now=delivery.created_at))
        log.info("delivery %s: %s (%s)", delivery.id, delivery.status, delivery.failure_reason)
        return
    uow.after_commit(lambda: _attempt(runtime, delivery, call_started=True))


def _unclaim_opted_out(delivery: Delivery, now: datetime) -> None:
    """Suppressed, never attempted, as ``_still_to_send`` leaves a claimed delivery whose address opted out;
    its call was marked as started with the claim, so that mark goes too."""
    _end_unattempted(delivery, DeliveryState.SUPPRESSED, domain.OPTED_OUT_WHILE_WAITING, now)
    delivery.call_started_at = None


def _end_unattempted(delivery: Delivery, state: DeliveryState, reason: str, now: datetime) -> None:
    """End a claimed delivery that was never attempted: the attempt its claim counted is taken back."""
    DELIVERY_RETRIES.finish(delivery, state, now)
    delivery.failure_reason = reason
    delivery.attempts -= 1


def _new_delivery(
    runtime: DispatchRuntime,
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
        for channel, address in ((Channel.EMAIL, email), (Channel.SMS, phone), (Channel.WHATSAPP, phone))
        if address and _is_opted_out(uow, channel, address)
    }
    available = {Channel.EMAIL, Channel.SMS}
    if runtime.whatsapp is not None and kind in domain.SURVEY_KINDS:
        available.add(Channel.WHATSAPP)  # the approved template asks the survey's question, nothing else
    order = domain.channel_order(contact["preferred_channel"], email, phone, opted_out, available)
    choice = order[0] if order else None
    now = utcnow()
    zone, _ = customer_zone(contact.get("timezone"), runtime.settings.default_timezone)
    due = next_sending_time(now, zone, _sending_window(runtime, choice[0])) if choice else None
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
        status=domain.waiting_state(now, due) if due else DeliveryState.SUPPRESSED,
        attempts=0,
        next_attempt_at=due,
        last_error=None if choice else domain.suppression_reason(email, phone),
        failure_reason=None if choice else domain.suppression_reason(email, phone),
        timezone=zone.key,
        # WhatsApp can fail where SMS and email would not (no WhatsApp account, a template refused).
        fallbacks=[list(pair) for pair in order[1:]] if choice and choice[0] == Channel.WHATSAPP else None,
        created_at=now,
        updated_at=now,
    )


def _survey_content(message: dict[str, Any]) -> dict[str, Any]:
    """What a survey message's delivery keeps: the survey's words, rendered when it is sent (``_content``).

    Not rendered before: most reminders are never sent (the customer answers first), and an email rendered
    is some 10 KB a row to write (issue 19)."""
    return {"survey_message": message}


def _content(runtime: DispatchRuntime, delivery: Delivery) -> dict[str, Any]:
    """What the delivery says: a survey message rendered now, in the channel it goes by (a fallback's may
    differ from the first one's); any other as it was rendered when scheduled. A survey message stored
    rendered (before issue 19) is sent as it was."""
    content = delivery.content or {}
    if "survey_message" not in content or content.keys() & {"html", "body", "variables"}:
        return content
    reminder = delivery.kind == DeliveryKind.REMINDER
    return _render_invitation(runtime, delivery, content["survey_message"], reminder=reminder)


def _render_invitation(
    runtime: DispatchRuntime, delivery: Delivery, message: dict[str, Any], reminder: bool = False
) -> dict[str, Any]:
    """The invitation as survey worded it; a reminder says it is one."""
    reminder_words = localized(domain.REMINDER_TEXTS, delivery.locale) if reminder else None
    if delivery.channel == Channel.WHATSAPP:
        greeting = message["greeting"]
        if reminder_words:
            greeting = f"{reminder_words['sms']} {greeting}"
        variables = domain.whatsapp_variables(greeting, message["question"], message["answer_url"])
        return {"variables": variables, "preview": "\n".join(variables.values())}
    if delivery.channel == Channel.SMS:
        body = message["sms_body"]
        return {"body": f"{reminder_words['sms']} {body}" if reminder_words else body}
    links = domain.score_links(message["answer_url"])
    subject = message["subject"]
    footer = _footer(runtime, domain.FOOTER_TEXTS, delivery.locale)
    unsubscribe_url = _unsubscribe_url(runtime, delivery.id)
    return {
        "subject": f"{reminder_words['subject']}: {subject}" if reminder_words else subject,
        "html": _email_template("dispatch/invitation_email.html").render(
            message=message,
            links=links,
            reminder=reminder_words,
            brand=_brand(runtime),
            locale=delivery.locale,
            footer=footer,
            unsubscribe_url=unsubscribe_url,
        ),
        "text": domain.invitation_email_text(
            message["greeting"],
            message["question"],
            message["low_label"],
            message["high_label"],
            message["answer_url"],
            reminder=reminder_words["text"] if reminder_words else None,
        )
        + f"\n\n-- \n{footer['why']}\n{footer['unsubscribe']}: {unsubscribe_url}",
    }


def _brand(runtime: DispatchRuntime) -> domain.Brand:
    return domain.Brand.of(runtime.settings.brand_name, runtime.settings.brand_color)


def _footer(runtime: DispatchRuntime, texts: dict[str, dict[str, str]], locale: str) -> dict[str, str]:
    words = localized(texts, locale)
    return {key: text.replace("{brand}", runtime.settings.brand_name) for key, text in words.items()}


def _render_message(
    runtime: DispatchRuntime, delivery: Delivery, message: domain.CustomerMessage
) -> dict[str, Any]:
    if delivery.channel == Channel.SMS:
        return {"body": message.sms_body}
    footer = _footer(runtime, domain.MESSAGE_FOOTER_TEXTS, delivery.locale)
    unsubscribe_url = _unsubscribe_url(runtime, delivery.id)
    return {
        "subject": message.subject,
        "html": _email_template("dispatch/message_email.html").render(
            message=message,
            brand=_brand(runtime),
            locale=delivery.locale,
            footer=footer,
            unsubscribe_url=unsubscribe_url,
        ),
        "text": domain.message_email_text(message, footer["unsubscribe"], unsubscribe_url)
        + f"\n\n-- \n{footer['why']}",
    }


def _unsubscribe_url(runtime: DispatchRuntime, delivery_id: str) -> str:
    # The delivery id is random (uuid4) and names one message, so it can stand in the link.
    return routes.UNSUBSCRIBE.url(runtime.public_url, delivery_id=delivery_id)


# --- Sending ----------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _parse_window(text: str) -> SendingWindow | None:
    return SendingWindow.parse(text)


def _sending_window(runtime: DispatchRuntime, channel: str) -> SendingWindow | None:
    """The channel's sending window from settings (checked at start by ``check_settings``)."""
    return _parse_window(runtime.settings.quiet_hours.get(channel, "off"))


def check_settings(runtime: DispatchRuntime) -> None:
    """Refuse to start with a sending window that does not parse; ValueError names the setting."""
    for channel, text in runtime.settings.quiet_hours.items():
        try:
            _parse_window(text)
        except ValueError as error:
            raise ValueError(f"QUIET_HOURS_{channel.upper()}: {error}") from error


def _due_in_window(runtime: DispatchRuntime, delivery: Delivery, at: datetime) -> datetime:
    zone, _ = customer_zone(delivery.timezone, runtime.settings.default_timezone)
    return next_sending_time(at, zone, _sending_window(runtime, delivery.channel))


def attempt_delivery(runtime: DispatchRuntime, delivery_id: str, now: datetime | None = None) -> bool:
    """One provider call for a due delivery; False when it was not due or another worker claimed it."""
    with runtime.unit_of_work() as uow:
        delivery = uow.deliveries.claim(delivery_id, now or utcnow())
    if delivery is None:
        return False
    _attempt(runtime, delivery)
    return True


def send_due_deliveries(runtime: DispatchRuntime, limit: int = 50) -> int:
    """Scheduler job: attempt every delivery whose time has come (retries, quiet hours ended, reminders).

    The batch is claimed at once, so its calls must end within the claim's lease: see ``_batch_size``.
    """
    with runtime.unit_of_work() as uow:
        claimed = uow.deliveries.claim_due(utcnow(), _batch_size(runtime, limit))
    for delivery in claimed:
        try:
            _attempt(runtime, delivery)
        except Exception:
            # The rest of the batch is claimed too: it must not wait for the lease because of this one.
            log.exception("delivery %s: the attempt ended unexpectedly", delivery.id)
    return len(claimed)


def delivery_lease(settings: Settings) -> timedelta:
    """How long a claimed delivery may wait for its attempt's outcome before its worker is taken for dead."""
    return timedelta(seconds=settings.delivery_lease_seconds)


def _batch_size(runtime: DispatchRuntime, limit: int) -> int:
    """At most ``limit``, and no more deliveries than one lease covers: a batch's last delivery, claimed with
    the first, would otherwise be taken for stalled (an email shown unknown) before its turn came. Each may
    take a look-up and a send at the provider's timeout, with as much again to spare."""
    settings = runtime.settings
    per_delivery = 3 * settings.provider_timeout_seconds
    return max(1, min(limit, int(settings.delivery_lease_seconds // per_delivery)))


def recover_stalled_deliveries(runtime: DispatchRuntime, now: datetime | None = None) -> int:
    """Deliveries whose worker died mid-attempt: never sent again blindly.

    A worker that died before its provider call could leave (no ``call_started_at`` in this attempt) sent
    nothing: the delivery is tried again. Otherwise the provider may have taken the lost attempt. Where it can
    be asked (Twilio), the delivery goes back on the schedule to be looked up before any new send; where it
    cannot (SendGrid), it is shown as unknown. The attempt was counted when it was claimed, so a message that
    keeps killing its worker still stops.
    """
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        stalled = uow.deliveries.stalled(now, delivery_lease(runtime.settings))
        for delivery in stalled:
            called = _call_started(delivery)
            if called is None:
                _retry_uncalled(runtime, delivery, now)
            else:
                _outcome_unknown(runtime, delivery, called, failures.INTERRUPTED, None, now)
    return len(stalled)


def _retry_uncalled(runtime: DispatchRuntime, delivery: Delivery, now: datetime) -> None:
    """Back on the schedule, as after a refused call: the provider never heard of it."""
    delivery.last_error = failures.INTERRUPTED_BEFORE_CALL
    retry_at = DELIVERY_RETRIES.retry_later(delivery, now)
    if retry_at is None:
        delivery.failure_reason = failures.GAVE_UP.format(attempts=f"{delivery.attempts} attempts")
    else:
        _wait_for_window(runtime, delivery, retry_at)


def _call_started(delivery: Delivery) -> datetime | None:
    """When the claimed attempt's provider call may have left; None: it cannot have (the marker, if any, is
    an earlier attempt's, older than this claim)."""
    if delivery.call_started_at is None:
        return None
    started = as_utc(delivery.call_started_at)
    return started if started >= as_utc(delivery.updated_at) else None


def _attempt(runtime: DispatchRuntime, delivery: Delivery, call_started: bool = False) -> None:
    """The provider call for a claimed delivery, outside any transaction; its outcome in a new one.

    Checked again first, as it may have waited hours: the customer's window, an opt-out, an answer or the
    survey's expiry (``call_started``: ``_schedule`` did that, and marked the call). After an unknown
    outcome the provider is asked for the message before any new send.
    """
    started = utcnow()
    try:
        # First the look-up, at any hour and whatever happened since: the message may be with the customer.
        receipt = _look_up(runtime, delivery) if delivery.reconcile_since else None
        if receipt is None:
            if not call_started and not _still_to_send(runtime, delivery.id):
                return
            receipt = _send(runtime, delivery)
    except TransientDeliveryError as error:
        _record_failure(runtime, delivery.id, error, retry_after=error.retry_after)
    except PermanentDeliveryError as error:
        _record_failure(runtime, delivery.id, error, permanent=True, opted_out=error.opted_out)
    except OutcomeUnknownError as error:
        _record_unknown(runtime, delivery.id, started, error)
    else:
        _record_sent(runtime, delivery.id, receipt, delivery if call_started else None)


def _still_to_send(runtime: DispatchRuntime, delivery_id: str) -> bool:
    now = utcnow()
    with runtime.unit_of_work() as uow:
        delivery = uow.deliveries.get(delivery_id)
        if delivery is None or delivery.status != DeliveryState.SENDING:
            return False
        ending = _reason_not_to_send(uow, delivery, now)
        if ending:
            state, reason = ending
            _end_unattempted(delivery, state, reason, now)
            log.info("delivery %s: %s (%s)", delivery.id, state, reason)
            return False
        due = _due_in_window(runtime, delivery, now)
        if due > now:
            # A retry's backoff, or a clock that ran late, brought it into the customer's quiet hours.
            delivery.status, delivery.next_attempt_at = DeliveryState.QUIET_HOURS, due
            delivery.updated_at = now
            delivery.attempts -= 1
            return False
        # Committed before the call: a worker that dies before this commit has sent nothing.
        delivery.call_started_at = now
    return True


def _reason_not_to_send(
    uow: DispatchUnitOfWork, delivery: Delivery, now: datetime
) -> tuple[DeliveryState, str] | None:
    if _is_opted_out(uow, delivery.channel, delivery.address):
        return DeliveryState.SUPPRESSED, domain.OPTED_OUT_WHILE_WAITING
    if delivery.kind != DeliveryKind.REMINDER:
        return None
    if delivery.expires_at is not None and as_utc(delivery.expires_at) <= now:
        return DeliveryState.CANCELLED, domain.CANCELLED_EXPIRED
    asked = uow.deliveries.for_invitation(delivery.invitation_id)
    if any(other.status == DeliveryState.ANSWERED for other in asked):
        return DeliveryState.CANCELLED, domain.CANCELLED_ANSWERED
    return None


def _outgoing(runtime: DispatchRuntime, delivery: Delivery) -> OutgoingEmail | OutgoingSms | OutgoingWhatsApp:
    content = _content(runtime, delivery)
    if delivery.channel == Channel.EMAIL:
        return OutgoingEmail(
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
    status_callback = routes.TWILIO_STATUS.url(
        runtime.public_url, {routes.TWILIO_STATUS_REFERENCE: delivery.id}
    )
    if delivery.channel == Channel.WHATSAPP:
        return OutgoingWhatsApp(
            to=delivery.address,
            variables=content["variables"],
            preview=content["preview"],
            reference=delivery.id,
            status_callback_url=status_callback,
        )
    return OutgoingSms(
        to=delivery.address, body=content["body"], reference=delivery.id, status_callback_url=status_callback
    )


def _transport(runtime: DispatchRuntime, channel: str) -> Any:
    return {Channel.EMAIL: runtime.email, Channel.WHATSAPP: runtime.whatsapp}.get(channel, runtime.sms)


@times_sends
def _send(runtime: DispatchRuntime, delivery: Delivery) -> SendReceipt:
    message = _outgoing(runtime, delivery)
    if isinstance(message, OutgoingEmail):
        return runtime.email.send_email(message)
    if isinstance(message, OutgoingWhatsApp):
        if runtime.whatsapp is None:
            raise PermanentDeliveryError("WhatsApp is no longer configured (TWILIO_WHATSAPP_CONTENT_SID)")
        return runtime.whatsapp.send_whatsapp(message)
    return runtime.sms.send_sms(message)


def _look_up(runtime: DispatchRuntime, delivery: Delivery) -> SendReceipt | None:
    """The provider's record of a message whose last attempt has an unknown outcome, or None: send it."""
    transport = _transport(runtime, delivery.channel)
    if not isinstance(transport, Reconciling):
        raise OutcomeUnknownError("the provider offers no look-up of a message it may have taken")
    since = as_utc(delivery.reconcile_since) if delivery.reconcile_since else utcnow()
    return transport.find_sent(_outgoing(runtime, delivery), since)


def _record_sent(
    runtime: DispatchRuntime, delivery_id: str, receipt: SendReceipt, claimed: Delivery | None = None
) -> None:
    """``claimed``: the delivery as ``_schedule`` claimed it, stored without reading it again unless a
    provider report moved it meanwhile (with its reminder, by one statement on PostgreSQL)."""
    now = utcnow()
    with runtime.unit_of_work() as uow:
        mark_sent = partial(_mark_sent, receipt=receipt, now=now)
        next_reminder = partial(_next_reminder, runtime, now=now)
        if claimed is None or not uow.deliveries.save_claimed(claimed, mark_sent, then_add=next_reminder):
            delivery = uow.deliveries.get(delivery_id)
            mark_sent(delivery)
            reminder = next_reminder(delivery)
            if reminder is not None:
                uow.deliveries.add_new(reminder)  # nothing when the reminder was planned already
    # One line per message is noise at INFO (the delivery's row holds the outcome); failures stay above it.
    log.debug("delivery %s sent by %s", delivery_id, receipt.provider)


def _mark_sent(delivery: Delivery, receipt: SendReceipt, now: datetime) -> None:
    # The provider's own report can come before its answer to the call, and may have moved it further.
    sent = domain.is_forward_transition(delivery.status, DeliveryState.SENT)
    DELIVERY_RETRIES.finish(delivery, DeliveryState.SENT if sent else delivery.status, now)
    delivery.provider, delivery.provider_message_id = receipt.provider, receipt.provider_message_id
    delivery.reconcile_since, delivery.failure_reason = None, None


def _record_failure(
    runtime: DispatchRuntime,
    delivery_id: str,
    error: TransientDeliveryError | PermanentDeliveryError,
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
            retry_at = DELIVERY_RETRIES.retry_later(delivery, now, retry_after)
            if retry_at is not None:
                _wait_for_window(runtime, delivery, retry_at)
        delivery.last_error = redact_contact_details(str(error))[:1000]
        delivery.error_code = (error.code or None) and str(error.code)[:32]
        if delivery.status == DeliveryState.FAILED:
            delivery.failure_reason = (
                failures.failure_reason(domain.provider_of(delivery.channel), error.code, str(error))
                if permanent
                else failures.GAVE_UP.format(attempts=f"{delivery.attempts} attempts")
            )[:300]
        if opted_out:
            _record_opt_out(uow, delivery.channel, delivery.address, "provider")
        if delivery.status == DeliveryState.FAILED:
            _fall_back(runtime, uow, delivery, now)
    log.warning(
        "delivery %s attempt %s failed: %s",
        delivery_id,
        "final" if delivery.status == DeliveryState.FAILED else "retry",
        delivery.last_error,
    )


def _wait_for_window(runtime: DispatchRuntime, delivery: Delivery, retry_at: datetime) -> None:
    due = _due_in_window(runtime, delivery, retry_at)
    if due > retry_at:
        delivery.status, delivery.next_attempt_at = DeliveryState.QUIET_HOURS, due


def _record_unknown(runtime: DispatchRuntime, delivery_id: str, started: datetime, error: Exception) -> None:
    now = utcnow()
    with runtime.unit_of_work() as uow:
        delivery = uow.deliveries.get(delivery_id)
        if delivery.status != DeliveryState.SENDING:
            return  # a provider report came first: it did take the message
        detail = redact_contact_details(str(error))[:1000]
        code = getattr(error, "code", None)
        _outcome_unknown(runtime, delivery, started, detail, code, now)
    log.warning("delivery %s: the provider's answer is unknown (%s)", delivery_id, delivery.status)


def _outcome_unknown(
    runtime: DispatchRuntime,
    delivery: Delivery,
    started: datetime,
    detail: str,
    code: str | None,
    now: datetime,
) -> None:
    """A sending delivery whose provider may have taken it: looked up before a new send, or shown unknown."""
    delivery.last_error, delivery.error_code = detail, code
    if not isinstance(_transport(runtime, delivery.channel), Reconciling):
        DELIVERY_RETRIES.finish(delivery, DeliveryState.UNKNOWN, now)
        delivery.failure_reason = failures.OUTCOME_UNKNOWN_EMAIL
        return
    # The earliest unanswered attempt bounds the look-up: a message from any of them counts.
    earlier = as_utc(delivery.reconcile_since) if delivery.reconcile_since else started
    delivery.reconcile_since = min(earlier, started)
    retry_at = DELIVERY_RETRIES.retry_later(delivery, now)
    if retry_at is None:
        # No attempt left to look it up with: shown, not failed, for it may well have arrived.
        DELIVERY_RETRIES.finish(delivery, DeliveryState.UNKNOWN, now)
        delivery.failure_reason = failures.OUTCOME_UNKNOWN_LOOKUP
        return
    delivery.failure_reason = failures.OUTCOME_UNKNOWN_LOOKUP
    _wait_for_window(runtime, delivery, retry_at)


# --- Reminders ---------------------------------------------------------------------------------------


def _reminder_plan(runtime: DispatchRuntime, touchpoint: str | None) -> tuple[int, timedelta]:
    settings = runtime.settings
    count, hours = settings.reminders_by_touchpoint.get(touchpoint or "", (settings.reminder_count, None))
    return count, timedelta(hours=hours or settings.reminder_delay_hours)


def _next_reminder(runtime: DispatchRuntime, sent: Delivery, now: datetime) -> Delivery | None:
    """After an invitation (or a reminder) was sent, the next reminder, due after the configured delay in the
    customer's sending window; None when there is none to plan: not after an answer, nor after a failure the
    provider reported before answering our call, nor when the survey will have expired by then."""
    if not domain.reached_customer(sent.status) or sent.status == DeliveryState.ANSWERED:
        return None
    if sent.kind not in domain.SURVEY_KINDS or not sent.invitation_id:
        return None
    number = domain.reminder_number(sent.source_id) + 1 if sent.kind == DeliveryKind.REMINDER else 1
    count, delay = _reminder_plan(runtime, sent.touchpoint)
    if number > count or "survey_message" not in (sent.content or {}):
        return None
    source_id = domain.reminder_source(sent.invitation_id, number)
    after = now + delay
    due = _due_in_window(runtime, sent, after)
    if sent.expires_at is not None and due >= as_utc(sent.expires_at):
        log.info("invitation %s expires before its reminder %d would be due", sent.invitation_id, number)
        return None
    reminder = Delivery(
        id=str(uuid.uuid4()),
        source_id=source_id,
        invitation_id=sent.invitation_id,
        kind=DeliveryKind.REMINDER,
        channel=sent.channel,
        address=sent.address,
        recipient_name=sent.recipient_name,
        locale=sent.locale,
        content={},
        status=DeliveryState.QUIET_HOURS if due > after else DeliveryState.SCHEDULED,
        attempts=0,
        next_attempt_at=due,
        timezone=sent.timezone,
        touchpoint=sent.touchpoint,
        expires_at=sent.expires_at,
        fallbacks=sent.fallbacks,
        created_at=now,
        updated_at=now,
    )
    reminder.content = _survey_content(sent.content["survey_message"])
    return reminder


# --- Fallback ------------------------------------------------------------------------------------------


def _fall_back(runtime: DispatchRuntime, uow: DispatchUnitOfWork, failed: Delivery, now: datetime) -> None:
    """A survey message that failed for good on WhatsApp goes again on the next channel: SMS, then email.

    The failed delivery keeps its state and reason; the fallback is a delivery of its own, due at once or in
    the customer's sending window for that channel.
    """
    content = failed.content or {}
    if failed.channel != Channel.WHATSAPP or not failed.fallbacks or "survey_message" not in content:
        return
    remaining = [
        (channel, address)
        for channel, address in failed.fallbacks
        if not _is_opted_out(uow, channel, address)
    ]
    if not remaining:
        return
    (channel, address), rest = remaining[0], remaining[1:]
    source_id = domain.fallback_source(failed.source_id, channel)
    if uow.deliveries.for_source(source_id):
        return
    fallback = Delivery(
        id=str(uuid.uuid4()),
        source_id=source_id,
        invitation_id=failed.invitation_id,
        kind=failed.kind,
        channel=channel,
        address=address,
        recipient_name=failed.recipient_name,
        locale=failed.locale,
        content={},
        attempts=0,
        timezone=failed.timezone,
        touchpoint=failed.touchpoint,
        expires_at=failed.expires_at,
        fallbacks=[list(pair) for pair in rest] or None,
        created_at=now,
        updated_at=now,
    )
    due = _due_in_window(runtime, fallback, now)
    fallback.status, fallback.next_attempt_at = domain.waiting_state(now, due), due
    fallback.content = _survey_content(content["survey_message"])
    uow.deliveries.add(fallback)
    if fallback.status == DeliveryState.SCHEDULED:
        uow.after_commit(lambda: attempt_delivery(runtime, fallback.id))
    log.info("delivery %s failed on WhatsApp: falling back to %s as %s", failed.id, channel, fallback.id)


# --- Opt-outs ---------------------------------------------------------------------------------------


def _is_opted_out(uow: DispatchUnitOfWork, channel: str, address: str) -> bool:
    return uow.opt_outs.has(channel, normal_address(channel, address))


def _record_opt_out(uow: DispatchUnitOfWork, channel: str, address: str, source: str) -> None:
    address = normal_address(channel, address)
    if not uow.opt_outs.has(channel, address):
        uow.opt_outs.add(OptOut(channel=channel, address=address, source=source, created_at=utcnow()))
        # Survey skips a customer opted out of every channel, and says so, instead of inviting in vain.
        uow.emit("customer.opted_out", {"channel": channel, "address": address, "reason": source})


def unsubscribe(runtime: DispatchRuntime, delivery_id: str) -> None:
    """The RFC 8058 one-click POST, or the button on the unsubscribe page."""
    with runtime.unit_of_work() as uow:
        delivery = _unsubscribable_delivery(uow, delivery_id)
        _record_opt_out(uow, delivery.channel, delivery.address, "unsubscribe_link")


@dataclass(frozen=True)
class UnsubscribePage:
    """What the unsubscribe page shows: in the message's language, naming the address it unsubscribes,
    masked (the link may be forwarded or fetched by a scanner)."""

    done: bool
    locale: str
    masked_address: str
    brand: str


def unsubscribe_page(runtime: DispatchRuntime, delivery_id: str) -> UnsubscribePage:
    with runtime.unit_of_work() as uow:
        delivery = _unsubscribable_delivery(uow, delivery_id)
        masked = mask_email if delivery.channel == Channel.EMAIL else mask_phone
        return UnsubscribePage(
            done=_is_opted_out(uow, delivery.channel, delivery.address),
            locale=resolve_locale(delivery.locale),
            masked_address=masked(delivery.address),
            brand=runtime.settings.brand_name,
        )


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
            if delivery.status in domain.WAITING_STATES:
                # Waiting to be looked up after an unknown outcome: the provider has it, nothing is due.
                delivery.next_attempt_at = None
            delivery.status = state
            delivery.last_error = report.reason or delivery.last_error
            delivery.provider_message_id = delivery.provider_message_id or report.provider_message_id
            delivery.updated_at = utcnow()
            if state in domain.TERMINAL_FAILURE_STATES:
                delivery.error_code = report.error_code
                delivery.failure_reason = failures.failure_reason(
                    report.provider, report.error_code, report.reason
                )[:300]
                _fall_back(runtime, uow, delivery, utcnow())
            else:
                # The provider has it: an earlier doubt (an unknown outcome) is settled.
                delivery.failure_reason, delivery.reconcile_since = None, None
            if state == DeliveryState.BOUNCED:
                # Survey lists bounces for Delighted's GET /bounces.
                uow.emit(
                    "delivery.bounced",
                    {
                        "channel": delivery.channel,
                        "address": delivery.address,
                        "delivery_id": delivery.id,
                        "bounced_at": report.occurred_at.isoformat(),
                    },
                )
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
    # WhatsApp replies come through the same webhook, from "whatsapp:+1555...".
    channel, number = domain.inbound_channel(from_phone)
    phone = normal_address(channel, number)
    with runtime.unit_of_work() as uow:
        if uow.inbound_sms.has(message_sid):
            return None
        delivery = None
        if kind is SmsReplyKind.OPT_OUT:
            _record_opt_out(uow, channel, phone, "sms_stop")
        elif kind is SmsReplyKind.OPT_IN and uow.opt_outs.has(channel, phone):
            uow.opt_outs.remove(channel, phone)
            uow.emit("customer.opted_in", {"channel": channel, "address": phone, "reason": "sms_start"})
        elif kind is SmsReplyKind.ANSWER:
            delivery = uow.deliveries.latest_to(
                channel, phone, domain.REPLYABLE_STATES, since=now - domain.REPLY_WINDOW
            )
            # A reply is to the last message that reached the number: after a referral or review request
            # or a close-the-loop message it is about that, not a comment on the survey answered before.
            if delivery and delivery.kind in domain.ANSWERED_BY_REPLY:
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


def help_reply(runtime: DispatchRuntime) -> str | None:
    """What an SMS "HELP" is answered with (SMS_HELP_TEXT, with {brand}); None leaves it to Twilio."""
    text = runtime.settings.sms_help_text
    return text.replace("{brand}", runtime.settings.brand_name) if text else None


def deliveries_for(runtime: DispatchRuntime, invitation_id: str) -> list[Delivery]:
    """Oldest first."""
    with runtime.unit_of_work() as uow:
        return uow.deliveries.for_invitation(invitation_id)


def deliveries_to_phone(runtime: DispatchRuntime, phone: str, limit: int = 100) -> list[Delivery]:
    """Text messages to ``phone``, newest first: what a success team checks when a customer calls."""
    with runtime.unit_of_work() as uow:
        return uow.deliveries.to_address(Channel.SMS, normal_address(Channel.SMS, phone), limit)


def sending_window(runtime: DispatchRuntime, channel: str, timezone: str) -> dict[str, Any]:
    """The channel's sending window in ``timezone`` and when a message would go out from now."""
    now = utcnow()
    zone, _ = customer_zone(timezone, runtime.settings.default_timezone)
    window = _sending_window(runtime, channel)
    due = next_sending_time(now, zone, window)
    return {
        "channel": channel,
        "timezone": zone.key,
        "window": runtime.settings.quiet_hours.get(channel) if window else None,
        "open_now": due <= now,
        "next_sending_time": due,
    }


def deliveries_requested_by(runtime: DispatchRuntime, source_id: str) -> list[Delivery]:
    """What an invitation, a referral or review request or a resolved task asked for, oldest first."""
    with runtime.unit_of_work() as uow:
        return uow.deliveries.for_source(source_id)
