"""The followup API's payloads: one schema per shape, each the validation and the OpenAPI document at once."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from shared.clock import utcnow
from shared.validation import StorableString

from . import domain
from .domain import (
    MAX_CLOSE_LOOP_MESSAGE,
    ReferralStatus,
    ResolutionCode,
    StaffMember,
    TaskPriority,
    TaskQuery,
    TaskSort,
    TaskStatus,
    TimelineKind,
)
from .webhooks import EVENT_TYPES, MAX_URL_LENGTH, DeliveryKind, DeliveryStatus

TASK_STATUSES = tuple(status.value for status in TaskStatus)
TASK_PRIORITIES = tuple(priority.value for priority in TaskPriority)
RESOLUTION_CODES = tuple(code.value for code in ResolutionCode)
TIMELINE_KINDS = tuple(kind.value for kind in TimelineKind)
REFERRAL_STATUSES = tuple(status.value for status in ReferralStatus)


class TaskQuerySchema(Schema):
    status = fields.List(
        fields.Enum(TaskStatus, by_value=True),
        load_default=lambda: sorted(TaskQuery.statuses),
        metadata={"description": "Repeat for several; by default open and in_progress, the work left to do."},
    )
    owner = StorableString(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "A user id, `me` for the caller's tasks, or `none` for unassigned ones."},
    )
    team = StorableString(validate=validate.Length(min=1, max=36), metadata={"description": "A team id."})
    touchpoint = StorableString(validate=validate.Length(min=1, max=32))
    priority = fields.Enum(TaskPriority, by_value=True)
    overdue = fields.Boolean(
        metadata={
            "description": "true: only tasks past their due time and still to act on; false: the others."
        }
    )
    sort = fields.Enum(TaskSort, by_value=True, load_default=TaskQuery.sort)
    order = fields.String(
        validate=validate.OneOf(("asc", "desc")),
        metadata={
            "description": "By default the soonest due, the newest, the lowest score or the most urgent "
            "first; ties go to the soonest due."
        },
    )
    page = fields.Integer(load_default=TaskQuery.page, validate=validate.Range(min=1, max=100_000))
    page_size = fields.Integer(load_default=TaskQuery.page_size, validate=validate.Range(min=1, max=500))

    @post_load
    def _query(self, data: dict[str, Any], **_kwargs: Any) -> TaskQuery:
        order = data.get("order")
        return TaskQuery(
            statuses=frozenset(data["status"]),
            owner=data.get("owner"),
            team_id=data.get("team"),
            touchpoint=data.get("touchpoint"),
            priority=data.get("priority"),
            overdue=data.get("overdue"),
            sort=data["sort"],
            descending=None if order is None else order == "desc",
            page=data["page"],
            page_size=data["page_size"],
        )


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
    customer_email = fields.String(allow_none=True)
    customer_phone = fields.String(allow_none=True)
    touchpoint = fields.String()
    properties = fields.Dict(
        keys=fields.String(),
        allow_none=True,
        metadata={"description": "The CRM event's properties and customer attributes (order id, amount...)."},
    )
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    sentiment = fields.Nested(SentimentSchema, allow_none=True)
    mismatch = fields.Boolean(
        metadata={
            "description": "A promoter's score (9-10) with a clearly negative comment: opened instead of a "
            "referral request."
        }
    )
    # The validators are not run on output; they put the possible values in the OpenAPI document.
    priority = fields.String(
        validate=validate.OneOf(TASK_PRIORITIES),
        metadata={"description": "low: a passive's task, when FOLLOWUP_PASSIVES is task."},
    )
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    team_id = fields.String(allow_none=True)
    claimed_at = fields.AwareDateTime(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    resolution_code = fields.String(allow_none=True, validate=validate.OneOf(RESOLUTION_CODES))
    resolution_note = fields.String(allow_none=True)
    close_loop_message = fields.String(
        allow_none=True, metadata={"description": "What the resolution sent the customer, if anything."}
    )
    due_at = fields.AwareDateTime()
    # Derived when answering: it turns true with the clock, not with a write.
    overdue = fields.Function(
        lambda task: domain.is_overdue(task.status, task.due_at, utcnow()),
        metadata={"type": "boolean", "description": "Past its due time and still to act on."},
    )
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class TimelineEntrySchema(Schema):
    id = fields.Integer()
    kind = fields.String(validate=validate.OneOf(TIMELINE_KINDS))
    at = fields.AwareDateTime()
    actor_id = fields.String(allow_none=True, metadata={"description": "None when Closeloop itself acted."})
    actor_name = fields.String(allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    assignee_id = fields.String(allow_none=True)
    assignee_name = fields.String(allow_none=True)
    body = fields.String(allow_none=True, metadata={"description": "A note's text."})
    close_loop_message = fields.String(
        allow_none=True, metadata={"description": "The message to the customer this resolution sent."}
    )


class TaskDetailsSchema(TaskSchema):
    timeline = fields.List(fields.Nested(TimelineEntrySchema), metadata={"description": "Oldest first."})


class StatusChangeSchema(Schema):
    status = fields.Enum(TaskStatus, by_value=True, required=True)
    resolution_code = fields.Enum(
        ResolutionCode,
        by_value=True,
        allow_none=True,
        load_default=None,
        metadata={"description": "Required to resolve a task, refused otherwise."},
    )
    note = StorableString(allow_none=True, load_default=None, validate=validate.Length(max=5000))
    close_loop_message = StorableString(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=MAX_CLOSE_LOOP_MESSAGE),
        metadata={
            "description": "Only when resolving: a short message sent to the customer by email or SMS "
            "(followup.resolved), as written."
        },
    )


class NoteSchema(Schema):
    body = StorableString(required=True, validate=validate.Length(min=1, max=5000))


class StaffMemberSchema(Schema):
    """Someone on the success team: whom a task is assigned to, or a team's member."""

    user_id = StorableString(required=True, validate=validate.Length(min=1, max=64))
    user_name = StorableString(required=True, validate=validate.Length(min=1, max=200))

    @post_load
    def _member(self, data: dict[str, Any], **_kwargs: Any) -> StaffMember:
        return StaffMember(data["user_id"], data["user_name"])


class TeamTouchpointSchema(Schema):
    touchpoint = fields.String()


class TeamSchema(Schema):
    id = fields.String()
    name = fields.String()
    touchpoints = fields.Pluck(TeamTouchpointSchema, "touchpoint", many=True)
    members = fields.List(
        fields.Nested(StaffMemberSchema), metadata={"description": "In their turn's order."}
    )
    created_at = fields.AwareDateTime()


class NewTeamSchema(Schema):
    name = StorableString(required=True, validate=validate.Length(min=1, max=100))
    touchpoints = fields.List(
        StorableString(validate=validate.Length(min=1, max=32)),
        load_default=list,
        metadata={"description": "Touchpoints whose new tasks go to this team; each one team's at most."},
    )
    members = fields.List(fields.Nested(StaffMemberSchema), load_default=list)


class TeamMembersSchema(Schema):
    members = fields.List(
        fields.Nested(StaffMemberSchema),
        required=True,
        metadata={"description": "Every member from now on, in the order new tasks go round."},
    )


class ReferralRequestSchema(Schema):
    id = fields.String()
    response_id = fields.String()
    code = fields.String(
        metadata={"description": "In the promoter's link (/r/<code>) and the landing page's ?ref=."}
    )
    customer_id = fields.String()
    customer_name = fields.String(allow_none=True)
    score = fields.Integer()
    status = fields.String(
        validate=validate.OneOf(REFERRAL_STATUSES),
        metadata={
            "description": "withdrawn: the answer changed and no longer calls for it (never sent if it was "
            "not yet); converted: a CRM event carried its code."
        },
    )
    send_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When it goes to dispatch; none once sent or never."}
    )
    sent_at = fields.AwareDateTime(allow_none=True)
    withdrawn_at = fields.AwareDateTime(allow_none=True)
    converted_at = fields.AwareDateTime(allow_none=True)
    clicks = fields.Integer(metadata={"description": "Opens of the link, email scanners' included."})
    last_clicked_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


# --- Outbound webhooks -----------------------------------------------------------------------------------

DELIVERY_KINDS = tuple(kind.value for kind in DeliveryKind)
DELIVERY_STATUSES = tuple(status.value for status in DeliveryStatus)


class NewWebhookEndpointSchema(Schema):
    url = StorableString(
        required=True,
        validate=validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={
            "description": "An http(s) URL whose host resolves to public addresses only; checked again "
            "before every delivery. No redirect is followed."
        },
    )
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata={"description": "The events to receive."},
    )
    description = StorableString(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=500),
        metadata={"description": "A note."},
    )


class WebhookEndpointSchema(Schema):
    id = fields.String()
    url = fields.String()
    description = fields.String(allow_none=True)
    event_types = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)))
    enabled = fields.Boolean(
        metadata={"description": "A disabled endpoint gets nothing new; what waits for it is held."}
    )
    disabled_reason = fields.String(
        allow_none=True,
        metadata={"description": "Who disabled it, or the delivery that failed for about a day and why."},
    )
    disabled_at = fields.AwareDateTime(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class NewWebhookEndpointAnswerSchema(WebhookEndpointSchema):
    secret = fields.String(
        metadata={
            "description": "The whsec_ secret that signs every message (Standard Webhooks). Shown in this "
            "answer only: keep it now."
        }
    )


class WebhookDeliverySchema(Schema):
    id = fields.String()
    kind = fields.String(validate=validate.OneOf(DELIVERY_KINDS))
    endpoint_id = fields.String(allow_none=True, metadata={"description": "None for an alert."})
    event_type = fields.String()
    message_id = fields.String(
        metadata={"description": "The webhook-id header: the same on every attempt and when sent again."}
    )
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    last_attempt_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    response_status = fields.Integer(
        allow_none=True, metadata={"description": "The last answer's HTTP status."}
    )
    response_body = fields.String(
        allow_none=True, metadata={"description": "The start of the last answer's body (256 bytes at most)."}
    )
    last_error = fields.String(allow_none=True)
    resent_from = fields.String(
        allow_none=True, metadata={"description": "The delivery this one sends again."}
    )
    created_at = fields.AwareDateTime()


class DeliveryLogQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
