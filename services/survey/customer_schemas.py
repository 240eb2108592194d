"""The customer's fields as every way in takes them (CRM events, vendor formats, PUT /v1/customers): the
same validation and normalisation, written once."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.channels import CHANNELS
from shared.validation import StorableString, within_properties_limit

from .contacts import InvalidContact, check_timezone, normal_phone

EXTERNAL_ID = validate.Length(min=1, max=200)


class PhoneNumber(fields.String):
    """A phone number in any usual spelling, stored in E.164 (``+90 532 123 45 67`` -> ``+905321234567``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 40:
            raise ValidationError("At most 40 characters.")
        try:
            return normal_phone(text)
        except InvalidContact as error:
            raise ValidationError(str(error)) from error


class EmailAddress(fields.Email):
    """An email address, without the spaces a CRM export may leave around it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs)


class TimeZoneName(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 64:
            raise ValidationError("At most 64 characters.")
        try:
            return check_timezone(text)
        except InvalidContact as error:
            raise ValidationError(str(error)) from error


class CustomerFieldsSchema(Schema):
    """What we know of a customer besides their id; None (or left out) where unknown."""

    class Meta:
        unknown = RAISE

    email = EmailAddress(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone = PhoneNumber(
        load_default=None,
        allow_none=True,
        metadata={"description": "Any usual spelling with its country code; stored in E.164."},
    )
    name = StorableString(load_default=None, allow_none=True, validate=validate.Length(max=200))
    locale = StorableString(load_default=None, allow_none=True, validate=validate.Length(min=1, max=16))
    timezone = TimeZoneName(
        load_default=None, allow_none=True, metadata={"description": "An IANA time zone: Europe/Istanbul."}
    )
    preferred_channel = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CHANNELS))
    consent = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={"description": "false: withdrew consent to surveys, never asked; null: unknown."},
    )
    attributes = fields.Dict(
        keys=StorableString(validate=validate.Length(min=1, max=100)),
        load_default=dict,
        validate=within_properties_limit,
        metadata={"description": "Segments the answers are sliced by: plan, region, store..."},
    )


class CustomerPutSchema(CustomerFieldsSchema):
    """A customer as PUT replaces it: a field left out is unknown (null) afterwards; attributes replaced."""


class CustomerSchema(Schema):
    external_id = fields.String()
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    locale = fields.String()
    timezone = fields.String(allow_none=True)
    preferred_channel = fields.String()
    consent = fields.Boolean(allow_none=True)
    attributes = fields.Dict(keys=fields.String())
    opted_out_channels = fields.List(
        fields.String(), metadata={"description": "Channels whose address opted out (dispatch reported it)."}
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CustomersQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    q = StorableString(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Text found in the name, email, phone or external id (any case)."},
    )
    attribute = fields.List(
        StorableString(validate=validate.Regexp(r"^[^=]{1,100}=.{0,200}$", error="name=value")),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={"description": "An attribute's value, as name=value (plan=pro); repeat for several."},
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
