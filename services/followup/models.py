"""The followup service's tables: the success team's tasks and their timelines, its teams, the referral and
review requests, and the outbound webhooks' endpoints and deliveries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import TYPE_ANNOTATION_MAP
from shared.outbox import consumed_events_table, outbox_table

SERVICE = "followup"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "followup_alembic_version"


class Base(DeclarativeBase):
    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Team(Base):
    """Part of the success team: the touchpoints it follows up and its members, who take new tasks in turn."""

    __tablename__ = "followup_teams"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # New tasks given to members so far: the next one goes to member number turns % len(members). Counted
    # in this row so that several workers take turns without handing two tasks the same turn.
    turns: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    touchpoints: Mapped[list[TeamTouchpoint]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="TeamTouchpoint.touchpoint"
    )
    members: Mapped[list[TeamMember]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="TeamMember.position"
    )


class TeamTouchpoint(Base):
    """A touchpoint a team follows up; its primary key makes it one team's at most."""

    __tablename__ = "followup_team_touchpoints"

    touchpoint: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("followup_teams.id"), index=True)


class TeamMember(Base):
    __tablename__ = "followup_team_members"

    team_id: Mapped[str] = mapped_column(ForeignKey("followup_teams.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(200))
    # The order of the round-robin.
    position: Mapped[int]


class ResponseRevision(Base):
    """The latest revision of each response followup acted on: an older one arriving late changes nothing,
    whether or not the response left a task, a referral or a review request behind."""

    __tablename__ = "followup_response_revisions"

    response_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int]
    updated_at: Mapped[datetime]


class FollowupTask(Base):
    """A customer to call back (a detractor, a promoter whose comment contradicts the score, or a passive when
    the settings ask for it); one per response, kept up to date with the response's latest revision.

    It carries what the agent needs to act without looking elsewhere: contact details, the answer and its
    sentiment, and the properties of the event the customer was asked about (an order id, an amount).
    """

    __tablename__ = "followup_tasks"
    __table_args__ = (
        Index("ix_followup_tasks_queue", "status", "priority", "due_at"),
        Index("ix_followup_tasks_owner", "owner_id", "status"),
        Index("ix_followup_tasks_team", "team_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    response_revision: Mapped[int]
    invitation_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_external_id: Mapped[str | None] = mapped_column(String(200))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(32))
    touchpoint: Mapped[str] = mapped_column(String(32))
    # None on tasks opened before events carried them.
    properties: Mapped[dict[str, Any] | None]
    # What the events to dispatch need; None on tasks opened before followup kept them.
    locale: Mapped[str | None] = mapped_column(String(16))
    # Where the customer answered (email or sms): the channel their messages prefer.
    channel: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[dict[str, Any] | None]
    # A promoter's score with a clearly negative comment (domain.is_mismatch).
    mismatch: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    owner_name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("followup_teams.id"))
    # When its owner took it (a claim, or assigning it to themselves); None while given to them by others.
    claimed_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution_code: Mapped[str | None] = mapped_column(String(32))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    # What the resolution sent the customer (followup.resolved); cleared with the resolution on reopening.
    close_loop_message: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Loaded only where asked for (the task's own page): a list of tasks never pulls every timeline.
    timeline: Mapped[list[TimelineEntry]] = relationship(
        viewonly=True, lazy="raise", order_by="TimelineEntry.id"
    )


class TimelineEntry(Base):
    """Something that happened to a task, oldest first: who did it (None: Closeloop itself) and what."""

    __tablename__ = "followup_timeline"

    # A sequence, not the time: entries written in one transaction share their time but keep their order.
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    assignee_id: Mapped[str | None] = mapped_column(String(64))
    assignee_name: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    # The message to the customer the resolution recorded here sent.
    close_loop_message: Mapped[str | None] = mapped_column(Text)


class ReferralRequest(Base):
    """A promoter to ask for a referral, through their own link (``code``); referral.requested asks dispatch
    to send it once ``send_at`` has come, and the clicks on the link are counted here."""

    __tablename__ = "followup_referral_requests"
    __table_args__ = (Index("ix_followup_referral_requests_due", "status", "send_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    invitation_id: Mapped[str] = mapped_column(String(36))
    # In the link (/r/<code>) and, from there, in the landing page's ?ref=: what the CRM sends back.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    # The score that made the customer a promoter.
    score: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    # When it goes to dispatch; None once sent, withdrawn or converted, or when it never will be (no landing
    # URL configured when it was created, no email nor phone).
    send_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    clicks: Mapped[int] = mapped_column(default=0)
    last_clicked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ReferralClick(Base):
    """Someone opened a promoter's link (an email scanner fetching every link counts too)."""

    __tablename__ = "followup_referral_clicks"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_request_id: Mapped[str] = mapped_column(ForeignKey("followup_referral_requests.id"), index=True)
    clicked_at: Mapped[datetime]
    user_agent: Mapped[str | None] = mapped_column(String(200))


class ReviewRequest(Base):
    """A respondent to ask for a review (FOLLOWUP_REVIEW_URL), whatever the score: one per response.

    ``score`` follows the response's revisions until review.requested goes to dispatch, which words the
    message by it.
    """

    __tablename__ = "followup_review_requests"
    __table_args__ = (Index("ix_followup_review_requests_due", "send_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    invitation_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int]
    # When it goes to dispatch; None once sent, or when it never will be (no email nor phone).
    send_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


# --- Outbound webhooks and alerts (webhooks.py) ---------------------------------------------------------


class WebhookEndpoint(Base):
    """A receiver an admin registered: the events it subscribes to and the secret that signs its messages.

    A disabled endpoint gets no new deliveries and its waiting ones are held until it is enabled again.
    """

    __tablename__ = "followup_webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    # Kept to sign every message: shown once, when the endpoint is created, and never again by the API.
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool]
    # Why and when it was disabled: by an admin, or after a delivery failed for about a day.
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    subscriptions: Mapped[list[WebhookSubscription]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="WebhookSubscription.event_type"
    )

    @property
    def event_types(self) -> list[str]:
        return [subscription.event_type for subscription in self.subscriptions]


class WebhookSubscription(Base):
    __tablename__ = "followup_webhook_subscriptions"

    endpoint_id: Mapped[str] = mapped_column(ForeignKey("followup_webhook_endpoints.id"), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32), primary_key=True)


class WebhookDelivery(Base):
    """One message to send (a webhook to an endpoint, or an alert), waiting for its due time and its log.

    Claimed and retried by ``webhooks.WEBHOOK_RETRIES`` (``shared.claims``): status, next_attempt_at,
    attempts and updated_at are its schedule; the rest is what the delivery log shows.
    """

    __tablename__ = "followup_webhook_deliveries"
    __table_args__ = (
        Index("ix_followup_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_followup_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
        Index("ix_followup_webhook_deliveries_kind", "kind", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # None for an alert, which goes to the URL of the settings.
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("followup_webhook_endpoints.id"))
    url: Mapped[str] = mapped_column(String(2000))
    event_type: Mapped[str] = mapped_column(String(32))
    # The webhook-id header: the same on every attempt and when sent again, so receivers de-duplicate.
    message_id: Mapped[str] = mapped_column(String(64))
    # The message body, as sent.
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    # The start of the receiver's last answer (webhooks.RESPONSE_EXCERPT_BYTES at most).
    response_body: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The delivery this one sends again ("send again" in the log).
    resent_from: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


outbox = outbox_table(Base.metadata, SERVICE)
consumed_events = consumed_events_table(Base.metadata, SERVICE)
metadata = Base.metadata
