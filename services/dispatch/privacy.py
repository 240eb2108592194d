"""What survey tells dispatch about a customer's privacy: an unsubscribe made elsewhere (Delighted's API, an
import), and an erasure, after which dispatch holds no delivery, opt-out or SMS of theirs."""

from __future__ import annotations

import logging

from sqlalchemy import and_, delete, or_, select

from shared.channels import normal_address
from shared.consumers import ReceivedEvent, consumes, record_erasure
from shared.outbox import forget_events_mentioning
from shared.personal_data import row_data

from . import models, service
from .models import Delivery, InboundSms, OptOut, ProviderEvent, SandboxMessage
from .runtime import DispatchRuntime
from .unit_of_work import DispatchUnitOfWork

log = logging.getLogger(__name__)


@consumes("unsubscribe.requested")
def record_unsubscribe(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    data = event.data
    service._record_opt_out(uow, data["channel"], data["address"], data["source"][:32])


@consumes("customer.erased")
def erase_customer(runtime: DispatchRuntime, uow: DispatchUnitOfWork, event: ReceivedEvent) -> None:
    """Delete the customer's deliveries (their invitations', and any message to their addresses), what the
    providers and the sandbox kept of them, their SMS replies and their opt-outs."""
    data = event.data
    record_erasure(uow, data["customer_id"], data["addresses"])
    session = uow.session  # erasure deletes by key across every table
    addresses = [
        (item["channel"], form)
        for item in data["addresses"]
        for form in {item["address"], normal_address(item["channel"], item["address"])}
    ]
    matches = [Delivery.invitation_id.in_(data["invitation_ids"])]
    matches += [
        and_(Delivery.channel == channel, Delivery.address == address) for channel, address in addresses
    ]
    delivery_ids = list(session.scalars(select(Delivery.id).where(or_(*matches))))
    phones = [address for channel, address in addresses if channel == "sms"]
    session.execute(delete(SandboxMessage).where(SandboxMessage.delivery_id.in_(delivery_ids)))
    session.execute(delete(ProviderEvent).where(ProviderEvent.delivery_id.in_(delivery_ids)))
    session.execute(
        delete(InboundSms).where(
            or_(InboundSms.delivery_id.in_(delivery_ids), InboundSms.from_phone.in_(phones))
        )
    )
    session.execute(delete(Delivery).where(Delivery.id.in_(delivery_ids)))
    for channel, address in addresses:
        session.execute(delete(OptOut).where(OptOut.channel == channel, OptOut.address == address))
    # sms.received names the invitation it answers, and carries the customer's words; delivery.bounced the
    # address.
    for marker in [*data["invitation_ids"], *(address for _, address in addresses)]:
        forget_events_mentioning(session, models.outbox, marker)
    log.info("customer %s erased in dispatch: %d deliveries", data["customer_id"], len(delivery_ids))


def _address_forms(addresses: list[dict]) -> list[tuple[str, str]]:
    return [
        (item["channel"], form)
        for item in addresses
        for form in {item["address"], normal_address(item["channel"], item["address"])}
    ]


def _deliveries_of(keys: dict, addresses: list[tuple[str, str]]):
    matches = [Delivery.invitation_id.in_(keys["invitation_ids"])]
    matches += [
        and_(Delivery.channel == channel, Delivery.address == address) for channel, address in addresses
    ]
    return or_(*matches)


def export_customer(runtime: DispatchRuntime, keys: dict) -> dict[str, list[dict]]:
    """Every delivery (with what it said), opt-out and SMS reply of the customer ``keys`` names."""
    addresses = _address_forms(keys["addresses"])
    phones = [address for channel, address in addresses if channel == "sms"]
    with runtime.unit_of_work() as uow:
        session = uow.session
        deliveries = list(session.scalars(select(Delivery).where(_deliveries_of(keys, addresses))))
        delivery_ids = [row.id for row in deliveries]
        opt_outs = [
            row
            for channel, address in addresses
            for row in session.scalars(
                select(OptOut).where(OptOut.channel == channel, OptOut.address == address)
            )
        ]
        replies = session.scalars(
            select(InboundSms).where(
                or_(InboundSms.delivery_id.in_(delivery_ids), InboundSms.from_phone.in_(phones))
            )
        )
        return {
            "deliveries": [row_data(row) for row in deliveries],
            "opt_outs": [row_data(row) for row in opt_outs],
            "inbound_sms": [row_data(row) for row in replies],
        }
