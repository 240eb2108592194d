"""the Delighted-compatible API: its survey requests, unsubscribes and bounces, imports; lookup indexes

Revision ID: survey_0008_delighted
Revises: survey_0007_nps_analytics
Create Date: 2026-11-26 15:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0008_delighted"
down_revision: str | Sequence[str] | None = "survey_0007_nps_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_survey_customers_email", "survey_customers", ["email"])
    op.create_index("ix_survey_customers_phone", "survey_customers", ["phone"])
    op.create_index("ix_survey_customers_created", "survey_customers", ["created_at", "id"])
    op.create_index("ix_survey_responses_submitted", "survey_responses", ["submitted_at"])
    op.create_index("ix_survey_responses_updated", "survey_responses", ["updated_at"])
    op.create_table(
        "survey_delighted_survey_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invitation_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["survey_customers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_survey_delighted_survey_requests_due",
        "survey_delighted_survey_requests",
        ["status", "scheduled_at"],
    )
    op.create_index(
        "ix_survey_delighted_survey_requests_customer", "survey_delighted_survey_requests", ["customer_id"]
    )
    op.create_table(
        "survey_delighted_suppressions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "email", name="uq_survey_delighted_suppressions_email"),
    )
    op.create_index(
        "ix_survey_delighted_suppressions_customer_id", "survey_delighted_suppressions", ["customer_id"]
    )
    op.create_table(
        "survey_delighted_imports",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "source_id"),
    )
    op.create_index("ix_survey_delighted_imports_customer_id", "survey_delighted_imports", ["customer_id"])


def downgrade() -> None:
    op.drop_table("survey_delighted_imports")
    op.drop_table("survey_delighted_suppressions")
    op.drop_table("survey_delighted_survey_requests")
    op.drop_index("ix_survey_responses_updated", "survey_responses")
    op.drop_index("ix_survey_responses_submitted", "survey_responses")
    op.drop_index("ix_survey_customers_created", "survey_customers")
    op.drop_index("ix_survey_customers_phone", "survey_customers")
    op.drop_index("ix_survey_customers_email", "survey_customers")
