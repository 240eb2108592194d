"""The followup API's payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .domain import TaskPriority, TaskStatus

TASK_STATUSES = tuple(status.value for status in TaskStatus)
TASK_PRIORITIES = tuple(priority.value for priority in TaskPriority)


class TaskQuerySchema(Schema):
    status = fields.Enum(TaskStatus, by_value=True, load_default=TaskStatus.OPEN)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class SentimentSchema(Schema):
    polarity = fields.Float(allow_none=True)
    subjectivity = fields.Float(allow_none=True)
    label = fields.String()
    language = fields.String()
    key_phrases = fields.List(fields.String())


class TaskSchema(Schema):
    id = fields.String()
    response_id = fields.String()
    customer_id = fields.String()
    customer_external_id = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    touchpoint = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    sentiment = fields.Nested(SentimentSchema, allow_none=True)
    # The validators are not run on output; they put the possible values in the OpenAPI document.
    priority = fields.String(validate=validate.OneOf(TASK_PRIORITIES))
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    owner = fields.String(allow_none=True)
    due_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class ReferralRequestSchema(Schema):
    id = fields.String()
    response_id = fields.String()
    customer_id = fields.String()
    customer_name = fields.String(allow_none=True)
    score = fields.Integer()
    status = fields.String()
    created_at = fields.AwareDateTime()
