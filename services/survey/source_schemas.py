"""The payloads of vendors' webhooks as we read them, for the OpenAPI document; the mapping checks values.

Unknown fields are kept (vendors add fields often), and values pass through as sent: ``sources.py`` maps
them to a CRM event, which ``VendorEventSchema`` validates, naming any field it refuses.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.settings import SOURCE_FORMATS, is_standard_webhooks_secret


class _AsSent(Schema):
    class Meta:
        unknown = INCLUDE


class ShopifyOrderSchema(_AsSent):
    """Shopify's order webhook (orders/paid, orders/fulfilled): the fields a survey uses."""

    id = fields.Raw(allow_none=True, metadata={"description": "The order id (a number)."})
    name = fields.Raw(allow_none=True, metadata={"description": "The order's name, #1001."})
    order_number = fields.Raw(allow_none=True)
    email = fields.Raw(allow_none=True)
    phone = fields.Raw(allow_none=True)
    customer_locale = fields.Raw(allow_none=True)
    total_price = fields.Raw(
        allow_none=True, metadata={"description": "Money as text: 403.00; kept as the amount property."}
    )
    currency = fields.Raw(allow_none=True)
    processed_at = fields.Raw(allow_none=True)
    updated_at = fields.Raw(allow_none=True)
    customer = fields.Raw(
        allow_none=True,
        metadata={"description": "id, email, phone, first_name, last_name: the customer is <source>:<id>."},
    )


class ZendeskEventSchema(_AsSent):
    """A Zendesk event subscription's payload; zen:event-type:ticket.status_changed to solved is surveyed."""

    id = fields.Raw(allow_none=True, metadata={"description": "The event id: our de-duplication key."})
    type = fields.Raw(allow_none=True, metadata={"description": "zen:event-type:ticket.status_changed"})
    time = fields.Raw(allow_none=True)
    account_id = fields.Raw(allow_none=True)
    subject = fields.Raw(allow_none=True)
    detail = fields.Raw(
        allow_none=True, metadata={"description": "The ticket: id, requester_id, status, priority..."}
    )
    event = fields.Raw(allow_none=True, metadata={"description": "current and previous status."})


class SourceSchema(Schema):
    name = fields.String()
    format = fields.String(metadata={"description": "standard (Standard Webhooks), shopify or zendesk"})
    path = fields.String(metadata={"description": "Where the source posts its events."})
    configured_in = fields.String(
        metadata={"description": "default, settings (CLOSELOOP_SOURCES) or api (PUT /v1/sources/{name})"}
    )


class SourcePutSchema(Schema):
    """A source's format and secret; the secret is write-only: no answer ever shows it."""

    class Meta:
        unknown = RAISE

    format = fields.String(required=True, validate=validate.OneOf(SOURCE_FORMATS))
    secret = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=8, max=200),
        metadata={
            "description": "standard: a whsec_ secret; shopify: the app's client secret; zendesk: the "
            "webhook's signing secret."
        },
    )

    @validates_schema
    def _secret_fits_format(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("format") == "standard" and not is_standard_webhooks_secret(data.get("secret", "")):
            raise ValidationError("A Standard Webhooks secret: whsec_ and base64.", "secret")
