"""``closeloop import-delighted``: Delighted's CSV exports (survey responses with their properties, people,
unsubscribes, bounces) into survey's customers, invitations and responses.

A file is imported in one transaction: all of its readable rows or, when a row cannot be read and
``skip_bad_rows`` is not set, none of them. Rows keep their original times; a row imported before (by the
export's id, or the row's content when it has none) is skipped, so a second run adds nothing. Imported
responses are history: they count in the NPS and the Delighted API, but emit no ``response.submitted`` (no
follow-up task or referral request for an answer given long ago). Unsubscribes reach dispatch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.channels import Channel
from shared.clock import utcnow
from shared.locales import DEFAULT_LOCALE, resolve_locale

from ..models import Customer, DelightedImport, Invitation, Response
from ..runtime import SurveyRuntime
from ..unit_of_work import SurveyUnitOfWork
from . import service
from .domain import SuppressionKind

# Header names as Delighted's exports write them, lower-cased, to ours.
_ALIASES = {
    "response id": "id",
    "response_id": "id",
    "id": "id",
    "person id": "person_id",
    "person_id": "person_id",
    "person": "person_id",
    "date": "created_at",
    "created at": "created_at",
    "created_at": "created_at",
    "response date": "created_at",
    "updated at": "updated_at",
    "updated_at": "updated_at",
    "updated": "updated_at",
    "name": "name",
    "email": "email",
    "email address": "email",
    "phone number": "phone",
    "phone_number": "phone",
    "phone": "phone",
    "score": "score",
    "comment": "comment",
    "unsubscribed at": "unsubscribed_at",
    "unsubscribed_at": "unsubscribed_at",
    "bounced at": "bounced_at",
    "bounced_at": "bounced_at",
}
# Columns of a response export that are neither ours nor the person's properties.
_IGNORED = {
    "survey type",
    "survey_type",
    "permalink",
    "tags",
    "notes",
    "delighted source",
    "source",
    "channel",
}
_PROPERTY_PREFIX = re.compile(r"^propert(y|ies)\s*[:\-]\s*", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
IMPORT_CHANNEL = "import"


class ImportRefused(Exception):
    """The file is not a Delighted export this command reads."""


@dataclass
class FileReport:
    path: str
    kind: str = ""
    imported: int = 0
    skipped: int = 0
    # (line number in the file, why)
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    committed: bool = False


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]
    properties: dict[str, str]


def _kind(columns: set[str]) -> str:
    if "score" in columns:
        return "responses"
    if "unsubscribed_at" in columns:
        return "unsubscribes"
    if "bounced_at" in columns:
        return "bounces"
    if "email" in columns or "phone" in columns:
        return "people"
    raise ImportRefused("no Score, Unsubscribed At, Bounced At, Email or Phone Number column")


def parse_time(text: str) -> datetime:
    """Unix seconds, ISO 8601, or ``2024-03-01 10:22:33 UTC``; a time without a zone is UTC."""
    text = text.strip()
    if re.fullmatch(r"\d{9,11}", text):
        return datetime.fromtimestamp(int(text), UTC)
    text = re.sub(r"\s*UTC$", "+00:00", text).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_export(text: str) -> tuple[str, list[_Row]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration as error:
        raise ImportRefused("the file is empty") from error
    names: list[tuple[str, bool]] = []  # (our name or the property's, is a property)
    for column in header:
        key = column.strip().lstrip("\ufeff")
        lowered = key.lower()
        if lowered in _ALIASES:
            names.append((_ALIASES[lowered], False))
        elif lowered in _IGNORED or not key:
            names.append(("", False))
        else:
            names.append((_PROPERTY_PREFIX.sub("", key), True))
    kind = _kind({name for name, is_property in names if not is_property})
    rows = []
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        values, properties = {}, {}
        for (name, is_property), cell in zip(names, record, strict=False):
            if not name or not cell.strip():
                continue
            (properties if is_property else values)[name] = cell.strip()
        if len(record) > len(names):
            values["__extra__"] = "yes"
        rows.append(_Row(reader.line_num, values, properties if kind == "responses" else {}))
    return kind, rows


def _checked(kind: str, row: _Row) -> dict[str, Any]:
    """The row's values, checked; ValueError says why it cannot be read."""
    values = row.values
    if values.get("__extra__"):
        raise ValueError("more cells than the header has columns")
    email, phone = values.get("email", "").lower() or None, values.get("phone") or None
    if email and not _EMAIL.match(email):
        raise ValueError(f"not an email address: {email!r}")
    if phone and not _E164.match(phone):
        raise ValueError("the phone number is not in E.164 form (+14155550123)")
    checked: dict[str, Any] = {"email": email, "phone": phone, "name": values.get("name")}
    for name in ("created_at", "updated_at", "unsubscribed_at", "bounced_at"):
        if values.get(name):
            try:
                checked[name] = parse_time(values[name])
            except (ValueError, OverflowError, OSError) as error:
                raise ValueError(f"not a time: {values[name]!r}") from error
    if kind == "responses":
        score = values.get("score", "")
        if not (score.isascii() and score.isdigit() and 0 <= int(score) <= 10):
            raise ValueError(f"the score is not 0 to 10: {score!r}")
        if "created_at" not in checked:
            raise ValueError("no date")
        checked.update(score=int(score), comment=values.get("comment"), properties=row.properties)
        if not (email or phone or values.get("person_id")):
            raise ValueError("no person: neither an email, a phone number nor a person id")
    elif kind in ("unsubscribes", "bounces"):
        if not email:
            raise ValueError("no email")
    elif not email and not phone:
        raise ValueError("neither an email nor a phone number")
    checked["source_id"] = values.get("id") or _content_key(kind, values)
    # In a people export the row's id is the person's.
    checked["person_id"] = values.get("person_id") or (values.get("id") if kind == "people" else None)
    return checked


def _content_key(kind: str, values: dict[str, str]) -> str:
    # A row without the export's id is known again by what it says.
    text = "\x1f".join(f"{key}={values[key]}" for key in sorted(values))
    return "sha256:" + hashlib.sha256(f"{kind}\x1f{text}".encode()).hexdigest()


def import_file(runtime: SurveyRuntime, path: Path, skip_bad_rows: bool = False) -> FileReport:
    report = FileReport(str(path))
    try:
        kind, rows = read_export(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ImportRefused(f"cannot read it: {error}") from error
    report.kind = kind
    checked_rows = []
    for row in rows:
        try:
            checked_rows.append(_checked(kind, row))
        except ValueError as error:
            report.unreadable.append((row.line, str(error)))
    if report.unreadable and not skip_bad_rows:
        return report  # nothing imported: the file is fixed and run again, or --skip-bad-rows
    with runtime.unit_of_work() as uow:
        for values in checked_rows:
            if uow.delighted.imported(_IMPORT_KIND[kind], values["source_id"]) is not None:
                report.skipped += 1
                continue
            customer_id = _IMPORTERS[kind](uow, values)
            uow.delighted.add_import(
                DelightedImport(
                    kind=_IMPORT_KIND[kind],
                    source_id=values["source_id"][:200],
                    customer_id=customer_id,
                    imported_at=utcnow(),
                )
            )
            report.imported += 1
    report.committed = True
    return report


def _person(uow: SurveyUnitOfWork, values: dict[str, Any]) -> Customer:
    """The customer an export's row is about: by the export's person id, then email, then phone; or new."""
    customer = None
    if values.get("person_id"):
        known = uow.delighted.imported("person", values["person_id"])
        customer = uow.delighted.customer(known.customer_id) if known else None
    if customer is None and values.get("email"):
        customer = uow.delighted.person_by_email(values["email"])
    if customer is None and values.get("phone"):
        customer = uow.delighted.person_by_phone(values["phone"])
    at = values.get("created_at") or utcnow()
    if customer is None:
        customer_id = str(uuid.uuid4())
        customer = Customer(
            id=customer_id,
            external_id=f"delighted-{values.get('person_id') or customer_id}"[:200],
            email=values.get("email"),
            phone=values.get("phone"),
            name=(values.get("name") or None) and values["name"][:200],
            locale=DEFAULT_LOCALE,
            timezone=None,
            preferred_channel=Channel.EMAIL.value if values.get("email") else Channel.SMS.value,
            properties={},
            created_at=at,
            updated_at=at,
        )
        uow.customers.add(customer)
    else:
        customer.email = customer.email or values.get("email")
        customer.phone = customer.phone or values.get("phone")
        customer.name = customer.name or ((values.get("name") or None) and values["name"][:200])
    if values.get("person_id") and uow.delighted.imported("person", values["person_id"]) is None:
        uow.delighted.add_import(
            DelightedImport(
                kind="person",
                source_id=values["person_id"][:200],
                customer_id=customer.id,
                imported_at=utcnow(),
            )
        )
    return customer


def _import_response(uow: SurveyUnitOfWork, values: dict[str, Any]) -> str:
    customer = _person(uow, values)
    created_at = values["created_at"]
    invitation = Invitation(
        id=str(uuid.uuid4()),
        token=secrets.token_urlsafe(24),
        customer_id=customer.id,
        crm_event_id=None,
        follows_up_response_id=None,
        touchpoint=service._rule(uow).touchpoint,
        locale=resolve_locale(customer.locale),
        properties=values["properties"],
        created_at=created_at,
        expires_at=None,
    )
    uow.invitations.add(invitation)
    uow.responses.add(
        Response(
            id=str(uuid.uuid4()),
            invitation_id=invitation.id,
            customer_id=customer.id,
            score=values["score"],
            comment=values.get("comment"),
            channel=IMPORT_CHANNEL,
            revision=1,
            submitted_at=created_at,
            updated_at=values.get("updated_at") or created_at,
        )
    )
    return customer.id


def _import_person(uow: SurveyUnitOfWork, values: dict[str, Any]) -> str:
    return _person(uow, values).id


def _suppression(kind: SuppressionKind, moment: str):
    def record(uow: SurveyUnitOfWork, values: dict[str, Any]) -> str:
        at = values.get(moment) or values.get("created_at") or utcnow()
        service.record_suppression(uow, kind, values["email"], at)
        person = uow.delighted.person_by_email(values["email"])
        return person.id if person else ""

    return record


_IMPORTERS = {
    "responses": _import_response,
    "people": _import_person,
    "unsubscribes": _suppression(SuppressionKind.UNSUBSCRIBE, "unsubscribed_at"),
    "bounces": _suppression(SuppressionKind.BOUNCE, "bounced_at"),
}
# DelightedImport.kind per file kind; "person" rows are also written for every person id seen.
_IMPORT_KIND = {
    "responses": "response",
    "people": "person_row",
    "unsubscribes": "unsubscribe",
    "bounces": "bounce",
}
