"""answers as written (SMS replies, comments' history, one re-prompt), message templates and the brand

Revision ID: survey_0006
Revises: survey_0005_customers_sources
Create Date: 2026-11-26 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0006"
down_revision: str | Sequence[str] | None = "survey_0005_customers_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reprompted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "survey_answer_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("invitation_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reading", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invitation_id"], ["survey_invitations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("survey_answer_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_survey_answer_messages_invitation", ["invitation_id", "received_at"], unique=False
        )
    op.create_table(
        "survey_message_templates",
        sa.Column("touchpoint", sa.String(length=32), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("nps_question", sa.String(length=500), nullable=False),
        sa.Column("follow_up_question", sa.String(length=500), nullable=False),
        sa.Column("sms_text", sa.String(length=1000), nullable=False),
        sa.Column("email_subject", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("touchpoint", "locale"),
    )
    op.create_table(
        "survey_brand",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("survey_brand")
    op.drop_table("survey_message_templates")
    with op.batch_alter_table("survey_answer_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_answer_messages_invitation")
    op.drop_table("survey_answer_messages")
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.drop_column("reprompted_at")
