"""The dispatch service's unit of work: what its use cases may ask of its tables, and that on SQLAlchemy.

The protocols are the whole of what the use cases see; ``SqlDispatchUnitOfWork`` keeps every query, and the
unit tests' fake keeps the same methods over dicts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.claims import claim_due, stalled
from shared.db import Database
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models
from .domain import DELIVERY_RETRIES
from .models import Delivery, InboundSms, OptOut, ProviderEvent


class Deliveries(Protocol):
    def add(self, delivery: Delivery) -> None: ...

    def get(self, delivery_id: str) -> Delivery | None: ...

    def for_invitation(self, invitation_id: str) -> list[Delivery]:
        """Oldest first."""
        ...

    def for_source(self, source_id: str) -> list[Delivery]:
        """The deliveries ``source_id`` asked for (of any kind), oldest first."""
        ...

    def with_provider_message_id(self, provider_message_id: str) -> Delivery | None: ...

    def to_address(self, channel: str, address: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` deliveries to exactly ``address``, newest first."""
        ...

    def claim(self, delivery_id: str, now: datetime) -> Delivery | None:
        """This delivery, claimed for an attempt (``DELIVERY_RETRIES``); None when it is not due or taken."""
        ...

    def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        """Up to ``limit`` due deliveries, earliest first, each claimed for an attempt."""
        ...

    def stalled(self, now: datetime, lease: timedelta) -> list[Delivery]:
        """Deliveries claimed longer than ``lease`` ago (their worker died), unchanged, for the caller."""
        ...

    def latest_to(
        self, channel: str, address: str, states: Collection[str], since: datetime
    ) -> Delivery | None:
        """The newest delivery of any kind created since ``since`` to exactly ``address``, in ``states``."""
        ...


class OptOuts(Protocol):
    """Addresses come normalized (``domain.normal_address``)."""

    def has(self, channel: str, address: str) -> bool: ...

    def add(self, opt_out: OptOut) -> None: ...

    def remove(self, channel: str, address: str) -> None: ...


class InboundMessages(Protocol):
    def has(self, message_sid: str) -> bool: ...

    def add(self, message: InboundSms) -> None: ...


class ProviderReports(Protocol):
    def has(self, provider_event_id: str) -> bool: ...

    def add(self, report: ProviderEvent) -> None: ...


class DispatchUnitOfWork(UnitOfWork):
    """A unit of work with the dispatch repositories, open inside ``with uow:``."""

    deliveries: Deliveries
    opt_outs: OptOuts
    inbound_sms: InboundMessages
    provider_events: ProviderReports


class SqlDeliveries:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, delivery: Delivery) -> None:
        self.session.add(delivery)

    def get(self, delivery_id: str) -> Delivery | None:
        return self.session.get(Delivery, delivery_id)

    def for_invitation(self, invitation_id: str) -> list[Delivery]:
        query = select(Delivery).where(Delivery.invitation_id == invitation_id).order_by(Delivery.created_at)
        return list(self.session.scalars(query).all())

    def for_source(self, source_id: str) -> list[Delivery]:
        query = select(Delivery).where(Delivery.source_id == source_id).order_by(Delivery.created_at)
        return list(self.session.scalars(query).all())

    def with_provider_message_id(self, provider_message_id: str) -> Delivery | None:
        query = select(Delivery).where(Delivery.provider_message_id == provider_message_id)
        return self.session.scalars(query).first()

    def to_address(self, channel: str, address: str, limit: int) -> list[Delivery]:
        query = (
            select(Delivery)
            .where(Delivery.channel == channel, Delivery.address == address)
            .order_by(Delivery.created_at.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query).all())

    def claim(self, delivery_id: str, now: datetime) -> Delivery | None:
        claimed = claim_due(self.session, Delivery, DELIVERY_RETRIES, now, 1, [Delivery.id == delivery_id])
        return claimed[0] if claimed else None

    def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        return claim_due(self.session, Delivery, DELIVERY_RETRIES, now, limit)

    def stalled(self, now: datetime, lease: timedelta) -> list[Delivery]:
        return stalled(self.session, Delivery, replace(DELIVERY_RETRIES, lease=lease), now)

    def latest_to(
        self, channel: str, address: str, states: Collection[str], since: datetime
    ) -> Delivery | None:
        query = (
            select(Delivery)
            .where(
                Delivery.channel == channel,
                Delivery.address == address,
                Delivery.status.in_(states),
                Delivery.created_at >= since,
            )
            .order_by(Delivery.created_at.desc())
        )
        return self.session.scalars(query).first()


class SqlOptOuts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def has(self, channel: str, address: str) -> bool:
        query = select(OptOut.id).where(OptOut.channel == channel, OptOut.address == address)
        return self.session.scalars(query).first() is not None

    def add(self, opt_out: OptOut) -> None:
        self.session.add(opt_out)

    def remove(self, channel: str, address: str) -> None:
        self.session.execute(delete(OptOut).where(OptOut.channel == channel, OptOut.address == address))


class SqlInboundMessages:
    def __init__(self, session: Session) -> None:
        self.session = session

    def has(self, message_sid: str) -> bool:
        return self.session.get(InboundSms, message_sid) is not None

    def add(self, message: InboundSms) -> None:
        self.session.add(message)


class SqlProviderReports:
    def __init__(self, session: Session) -> None:
        self.session = session

    def has(self, provider_event_id: str) -> bool:
        return self.session.get(ProviderEvent, provider_event_id) is not None

    def add(self, report: ProviderEvent) -> None:
        self.session.add(report)


class SqlDispatchUnitOfWork(SqlUnitOfWork, DispatchUnitOfWork):
    def __init__(self, database: Database) -> None:
        super().__init__(models.SERVICE, database, models.outbox, models.consumed_events)

    def _open_repositories(self, session: Session) -> None:
        self.deliveries = SqlDeliveries(session)
        self.opt_outs = SqlOptOuts(session)
        self.inbound_sms = SqlInboundMessages(session)
        self.provider_events = SqlProviderReports(session)
