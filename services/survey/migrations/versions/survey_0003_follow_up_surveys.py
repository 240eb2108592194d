"""follow-up surveys: scheduled after a resolved followup task, and invitations that say what they follow up

Revision ID: survey_0003
Revises: survey_0002
Create Date: 2026-11-26 15:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0003"
down_revision: str | Sequence[str] | None = "survey_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        # A follow-up survey comes from a resolved task, not from a CRM event.
        batch_op.alter_column("crm_event_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column("follows_up_response_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            "ix_survey_invitations_follows_up_response_id", ["follows_up_response_id"], unique=False
        )
    op.create_table(
        "survey_follow_up_surveys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invitation_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["survey_customers.id"]),
        sa.ForeignKeyConstraint(["invitation_id"], ["survey_invitations.id"]),
        sa.ForeignKeyConstraint(["response_id"], ["survey_responses.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("response_id"),
    )
    op.create_index("ix_survey_follow_up_surveys_due", "survey_follow_up_surveys", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_follow_up_surveys_due", table_name="survey_follow_up_surveys")
    op.drop_table("survey_follow_up_surveys")
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_invitations_follows_up_response_id")
        batch_op.drop_column("follows_up_response_id")
        # Fails while follow-up invitations exist: they have no CRM event to point at.
        batch_op.alter_column("crm_event_id", existing_type=sa.String(length=36), nullable=False)
