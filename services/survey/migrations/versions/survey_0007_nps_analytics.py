"""NPS analytics: responses' sentiment and key phrases, the daily NPS rollup and its state

Revision ID: survey_0007_nps_analytics
Revises: survey_0006
Create Date: 2026-11-26 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0007_nps_analytics"
down_revision: str | Sequence[str] | None = "survey_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "survey_response_sentiments",
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=True),
        sa.Column("polarity", sa.Float(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["response_id"], ["survey_responses.id"]),
        sa.PrimaryKeyConstraint("response_id"),
    )
    op.create_table(
        "survey_response_key_phrases",
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("phrase", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["response_id"], ["survey_responses.id"]),
        sa.PrimaryKeyConstraint("response_id", "phrase"),
    )
    op.create_table(
        "survey_nps_daily",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("touchpoint", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("attribute", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("invitations", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("promoters", sa.Integer(), nullable=False),
        sa.Column("passives", sa.Integer(), nullable=False),
        sa.Column("detractors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "touchpoint", "channel", "attribute", "value"),
    )
    op.create_index("ix_survey_nps_daily_attribute_day", "survey_nps_daily", ["attribute", "day"])
    state = op.create_table(
        "survey_nps_rollup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("refreshed_through", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Never refreshed: the first read builds the rollup from every response and invitation there is.
    op.bulk_insert(state, [{"id": 1, "refreshed_through": None, "attributes": ""}])
    op.create_index("ix_survey_responses_updated_at", "survey_responses", ["updated_at"])
    op.create_index("ix_survey_responses_submitted_at", "survey_responses", ["submitted_at"])
    op.create_index("ix_survey_invitations_created_at", "survey_invitations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_invitations_created_at", table_name="survey_invitations")
    op.drop_index("ix_survey_responses_submitted_at", table_name="survey_responses")
    op.drop_index("ix_survey_responses_updated_at", table_name="survey_responses")
    op.drop_table("survey_nps_rollup_state")
    op.drop_index("ix_survey_nps_daily_attribute_day", table_name="survey_nps_daily")
    op.drop_table("survey_nps_daily")
    op.drop_table("survey_response_key_phrases")
    op.drop_table("survey_response_sentiments")
