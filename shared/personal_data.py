"""Export of one customer's personal data across services: the keys each service finds its rows by, and how
rows become JSON. Survey's export answers the keys; dispatch and followup take them (their staff endpoint
``POST /v1/personal-data/<service>``, or ``closeloop export-customer``, which asks all of them)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from shared.channels import CHANNELS

_ID = validate.Length(min=1, max=36)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class CustomerAddressSchema(_Strict):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))


class PersonalDataKeysSchema(_Strict):
    """Survey's ids of the customer, their invitations and responses, and the addresses reaching them."""

    customer_id = fields.String(required=True, validate=_ID)
    invitation_ids = fields.List(
        fields.String(validate=_ID), load_default=list, validate=validate.Length(max=10_000)
    )
    response_ids = fields.List(
        fields.String(validate=_ID), load_default=list, validate=validate.Length(max=10_000)
    )
    addresses = fields.List(
        fields.Nested(CustomerAddressSchema), load_default=list, validate=validate.Length(max=10)
    )


class PersonalDataSchema(Schema):
    """One service's part: table name to its rows about the customer."""

    service = fields.String()
    tables = fields.Dict(keys=fields.String(), values=fields.List(fields.Dict()))


def row_data(row: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """An ORM row's columns as JSON-ready values (datetimes in ISO 8601)."""
    values = {}
    for column in row.__table__.columns:
        if column.key in exclude:
            continue
        value = getattr(row, column.key)
        values[column.key] = value.isoformat() if hasattr(value, "isoformat") else value
    return values
