"""The dispatch service's unit of work: what its use cases may ask of its tables, and that on SQLAlchemy.

The protocols are the whole of what the use cases see; ``SqlDispatchUnitOfWork`` keeps every query, and the
unit tests' fake keeps the same methods over dicts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import Session

from shared import driver
from shared.claims import claim_due, stalled
from shared.db import Database
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models
from .domain import DELIVERY_RETRIES
from .models import Delivery, InboundSms, OptOut, ProviderEvent


class Deliveries(Protocol):
    def add(self, delivery: Delivery) -> None: ...

    def add_new(self, delivery: Delivery) -> bool:
        """Add ``delivery`` unless its source already has a delivery of its kind: then False, nothing added.

        The delivery object is not tracked: change it later through ``save_claimed``."""
        ...

    def add_new_to_send(self, delivery: Delivery, opt_out_address: str) -> tuple[bool, bool]:
        """``add_new`` for a delivery claimed to be sent once committed, and whether ``opt_out_address`` (its
        address, as opt-outs keep it) has opted out of its channel, read by the same statement: (added, opted
        out). One statement, so the transaction's last one still sees an opt-out committed meanwhile."""
        ...

    def save_claimed(
        self,
        delivery: Delivery,
        change: Callable[[Delivery], None],
        then_add: Callable[[Delivery], Delivery | None] | None = None,
    ) -> bool:
        """Apply ``change`` to ``delivery``, added claimed (in flight, its call marked as started) by
        ``add_new``, and store it, unless the stored row moved on since its call started (a provider report
        came first): then False, nothing stored. Once stored, the delivery ``then_add`` makes of the changed
        one (if any: a reminder) is added as ``add_new`` adds one."""
        ...

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


_DELIVERIES = Delivery.__table__
_COLUMN_KEYS = tuple(column.key for column in _DELIVERIES.columns)
_OPT_OUTS = OptOut.__table__


@functools.cache
def _insert_new(dialect: str, to_send: bool = False) -> Any:
    """The insert of a new delivery on ``dialect``, every column a parameter, built once: run on the
    driver (``shared.driver``) with each delivery's values. It returns the new row's id; ``to_send``: also
    whether the parameters ``opt_out_channel`` and ``opt_out_address`` name an opt-out."""
    if dialect == "postgresql":
        insert: Any = postgresql_insert
    elif dialect == "sqlite":
        # Imported here: only embedded mode and tests run on SQLite; services mode never loads its dialect.
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise KeyError(dialect)
    columns = _new_values_of(_COLUMN_KEYS)
    statement = (
        insert(_DELIVERIES).values(columns).on_conflict_do_nothing(index_elements=["source_id", "kind"])
    )
    if not to_send:
        return statement.returning(_DELIVERIES.c.id)
    # Parameters of their own, not the row's: opt-outs keep addresses normalised, deliveries as given.
    opted_out = _opt_out_named_by("opt_out_channel", "opt_out_address")
    return statement.returning(_DELIVERIES.c.id, opted_out.exists())


def _opt_out_named_by(channel_parameter: str, address_parameter: str) -> Any:
    """The opt-out of the channel and (normalised) address these parameters hold, if there is one."""
    return select(_OPT_OUTS.c.id).where(
        _OPT_OUTS.c.channel == bindparam(channel_parameter, type_=_OPT_OUTS.c.channel.type),
        _OPT_OUTS.c.address == bindparam(address_parameter, type_=_OPT_OUTS.c.address.type),
    )


_OPTED_OUT = _opt_out_named_by("channel", "address")


@functools.lru_cache(maxsize=32)
def _save_claimed(changed: tuple[str, ...]) -> Any:
    """A claimed delivery's ``changed`` columns updated, unless its row moved on since its call began."""
    return (
        update(_DELIVERIES)
        .where(
            _DELIVERIES.c.id == bindparam("claimed_id", type_=_DELIVERIES.c.id.type),
            _DELIVERIES.c.status == DELIVERY_RETRIES.in_flight,
            _DELIVERIES.c.call_started_at
            == bindparam("claimed_call_started_at", type_=_DELIVERIES.c.call_started_at.type),
        )
        .values(_new_values_of(changed))
    )


@functools.lru_cache(maxsize=32)
def _save_claimed_then_add(changed: tuple[str, ...]) -> Any:
    """``_save_claimed``, and a new delivery (parameters ``added_<column>``) inserted as ``_insert_new``
    inserts one, if the update stored its row: one statement, one round trip (PostgreSQL only: SQLite has
    no data-modifying CTE). Its one row: how many rows the update stored."""
    saved = _save_claimed(changed).returning(_DELIVERIES.c.id).cte("saved")
    # Each parameter typed as its column (the dialect writes $n::TYPE: INSERT ... SELECT takes no type from
    # the columns), its length checked as an INSERT's values are.
    added_values = _new_values_of(_COLUMN_KEYS, "added").values()
    added = (
        postgresql_insert(_DELIVERIES)
        .from_select(list(_COLUMN_KEYS), select(*added_values).select_from(saved))
        .on_conflict_do_nothing(index_elements=["source_id", "kind"])
        .cte("added")
    )
    return select(func.count()).select_from(saved).add_cte(added)


def _new_values_of(keys: Iterable[str], prefix: str = "new") -> dict[str, Any]:
    """The values of these columns as parameters ``<prefix>_<column>`` (a column's own name is SQLAlchemy's,
    in an INSERT or UPDATE): given by ``_as_new``."""
    return {key: bindparam(f"{prefix}_{key}", type_=_DELIVERIES.c[key].type) for key in keys}


def _as_new(values: dict[str, Any], prefix: str = "new") -> dict[str, Any]:
    return {f"{prefix}_{key}": value for key, value in values.items()}


def _column_values(delivery: Delivery) -> dict[str, Any]:
    # Read from the object's own dict where the value is (the ORM's attribute access is ~1.5 us a column, and
    # this runs three times a send: issue 19); a value never set is asked of the ORM (None, or a load).
    loaded = delivery.__dict__
    return {key: loaded[key] if key in loaded else getattr(delivery, key) for key in _COLUMN_KEYS}


class SqlDeliveries:
    def __init__(self, session: Session, dialect: str) -> None:
        self.session = session
        # Not asked of the session: that would make it a connection, which its hot statements do without.
        self.dialect = dialect

    def add(self, delivery: Delivery) -> None:
        self.session.add(delivery)

    def add_new(self, delivery: Delivery) -> bool:
        return self._insert(delivery) is not None

    def add_new_to_send(self, delivery: Delivery, opt_out_address: str) -> tuple[bool, bool]:
        row = self._insert(delivery, opt_out_address)
        return (True, bool(row[1])) if row is not None else (False, False)

    def _insert(self, delivery: Delivery, opt_out_address: str | None = None) -> tuple[Any, ...] | None:
        # One statement, no flush: the unique (source_id, kind) decides, also against a concurrent insert.
        values = _as_new(_column_values(delivery))
        to_send = opt_out_address is not None
        if to_send:
            values |= {"opt_out_channel": delivery.channel, "opt_out_address": opt_out_address}
        statement = _insert_new(self.dialect, to_send=to_send)
        rows = driver.execute(self.session, statement, values).rows
        return rows[0] if rows else None

    def save_claimed(
        self,
        delivery: Delivery,
        change: Callable[[Delivery], None],
        then_add: Callable[[Delivery], Delivery | None] | None = None,
    ) -> bool:
        before = _column_values(delivery)
        change(delivery)
        changed = {key: value for key, value in _column_values(delivery).items() if before[key] != value}
        values = _as_new(changed) | {
            "claimed_id": delivery.id,
            "claimed_call_started_at": before["call_started_at"],
        }
        added = then_add(delivery) if then_add is not None else None
        if added is None:
            return driver.execute(self.session, _save_claimed(tuple(changed)), values).rowcount == 1
        if self.dialect == "postgresql":
            values |= _as_new(_column_values(added), "added")
            [(stored,)] = driver.execute(self.session, _save_claimed_then_add(tuple(changed)), values).rows
            return stored == 1
        stored = driver.execute(self.session, _save_claimed(tuple(changed)), values).rowcount == 1
        if stored:
            self.add_new(added)
        return stored

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
        # Asked before every send: the statement built once, run on the session's connection. What this
        # transaction changed is written first, as the session's autoflush would (nothing to do: no cost).
        self.session.flush()
        return bool(driver.execute(self.session, _OPTED_OUT, {"channel": channel, "address": address}).rows)

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
        self.deliveries = SqlDeliveries(session, self.database.engine.dialect.name)
        self.opt_outs = SqlOptOuts(session)
        self.inbound_sms = SqlInboundMessages(session)
        self.provider_events = SqlProviderReports(session)
