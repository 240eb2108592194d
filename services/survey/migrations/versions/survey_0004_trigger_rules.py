"""trigger rules, and every decision recorded with a reason code and an explanation

Revision ID: survey_0004
Revises: survey_0003
Create Date: 2026-11-26 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0004"
down_revision: str | Sequence[str] | None = "survey_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_crm_events", schema=None) as batch_op:
        # Events decided before reason codes existed keep their sentence; their code says it is older.
        batch_op.add_column(
            sa.Column(
                "reason_code", sa.String(length=32), nullable=False, server_default="recorded_before_codes"
            )
        )
        batch_op.add_column(
            sa.Column("explanation", sa.String(length=400), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_survey_crm_events_due", ["decision", "due_at"], unique=False)
        batch_op.create_index("ix_survey_crm_events_customer", ["customer_id", "received_at"], unique=False)
    op.execute("UPDATE survey_crm_events SET explanation = reason, decided_at = received_at")
    with op.batch_alter_table("survey_crm_events", schema=None) as batch_op:
        batch_op.alter_column("decided_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("reason_code", server_default=None, existing_type=sa.String(length=32))
        batch_op.alter_column("explanation", server_default=None, existing_type=sa.String(length=400))
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "survey_trigger_rules",
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("touchpoint", sa.String(length=32), nullable=False),
        sa.Column("delay_hours", sa.Integer(), nullable=False),
        sa.Column("quarantine_after_invitation_days", sa.Integer(), nullable=False),
        sa.Column("quarantine_after_answer_days", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("sampling_rate", sa.Float(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("max_event_age_days", sa.Integer(), nullable=False),
        sa.Column("invitation_expiry_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_type"),
    )


def downgrade() -> None:
    op.drop_table("survey_trigger_rules")
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("survey_crm_events", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_crm_events_customer")
        batch_op.drop_index("ix_survey_crm_events_due")
        batch_op.drop_column("decided_at")
        batch_op.drop_column("due_at")
        batch_op.drop_column("explanation")
        batch_op.drop_column("reason_code")
