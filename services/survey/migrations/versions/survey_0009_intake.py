"""CRM events are stored as received and decided right after: status, the customer's fields until then,
the decider's queue and its wake-up (NOTIFY on PostgreSQL)

Revision ID: survey_0009_intake
Revises: survey_outbox_notify
Create Date: 2026-11-26 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import create_insert_notify_trigger, drop_insert_notify_trigger

revision: str = "survey_0009_intake"
down_revision: str | Sequence[str] | None = "survey_outbox_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As services.survey.models.EVENTS_RECEIVED_CHANNEL (migrations do not import the service).
CHANNEL = "survey_crm_events_received"
RECEIVED = sa.text("status = 'received'")
# The columns a received event has no value for until its decision.
DECISION_COLUMNS = (
    ("customer_id", sa.String(length=36)),
    ("decision", sa.String(length=16)),
    ("reason_code", sa.String(length=32)),
    ("reason", sa.String(length=200)),
    ("explanation", sa.String(length=400)),
    ("decided_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("survey_crm_events", schema=None) as batch_op:
        # Every event stored before this revision was decided when it came.
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="decided")
        )
        batch_op.add_column(sa.Column("customer_fields", sa.JSON(), nullable=True))
        # The intake request's id, so the decision's events carry it as if made in that request.
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        for name, type_ in DECISION_COLUMNS:
            batch_op.alter_column(name, existing_type=type_, nullable=True)
    op.create_index(
        "ix_survey_crm_events_received",
        "survey_crm_events",
        ["received_at"],
        unique=False,
        postgresql_where=RECEIVED,
        sqlite_where=RECEIVED,
    )
    create_insert_notify_trigger(
        op, "survey_crm_events_received", "survey_crm_events", CHANNEL, "NEW.status = 'received'"
    )


def downgrade() -> None:
    # Events still waiting for their decision cannot be kept by the older schema: decide them first.
    drop_insert_notify_trigger(op, "survey_crm_events_received", "survey_crm_events")
    op.drop_index(
        "ix_survey_crm_events_received",
        table_name="survey_crm_events",
        postgresql_where=RECEIVED,
        sqlite_where=RECEIVED,
    )
    with op.batch_alter_table("survey_crm_events", schema=None) as batch_op:
        for name, type_ in DECISION_COLUMNS:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        batch_op.drop_column("request_id")
        batch_op.drop_column("customer_fields")
        batch_op.drop_column("status")
