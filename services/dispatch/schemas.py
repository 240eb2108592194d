"""The dispatch API's payloads."""

from __future__ import annotations

from marshmallow import Schema, fields


class DeliveryQuerySchema(Schema):
    invitation_id = fields.String(required=True)


class DeliverySchema(Schema):
    id = fields.String()
    invitation_id = fields.String()
    kind = fields.String()
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    provider = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
