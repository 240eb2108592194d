"""the success team's queue: contact details and properties on tasks, owners, teams, resolutions, timelines

Revision ID: followup_0003
Revises: followup_0002
Create Date: 2026-11-26 13:21:30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "followup_0003"
down_revision: str | Sequence[str] | None = "followup_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followup_teams",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "followup_team_members",
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["followup_teams.id"]),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    op.create_table(
        "followup_team_touchpoints",
        sa.Column("touchpoint", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["followup_teams.id"]),
        sa.PrimaryKeyConstraint("touchpoint"),
    )
    op.create_index(
        "ix_followup_team_touchpoints_team_id", "followup_team_touchpoints", ["team_id"], unique=False
    )
    op.create_table(
        "followup_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("assignee_name", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["followup_tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_followup_timeline_task_id", "followup_timeline", ["task_id"], unique=False)
    # Batch mode, so SQLite (which cannot add a foreign key to a table) gets the table rebuilt.
    with op.batch_alter_table("followup_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("customer_phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("properties", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("owner_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("team_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("resolution_note", sa.Text(), nullable=True))
        batch_op.create_foreign_key("fk_followup_tasks_team_id", "followup_teams", ["team_id"], ["id"])
        batch_op.create_index("ix_followup_tasks_owner", ["owner_id", "status"], unique=False)
        batch_op.create_index("ix_followup_tasks_team", ["team_id", "status"], unique=False)
        # Nothing ever set the free-text owner: owner_id and owner_name replace it with nothing to carry over.
        batch_op.drop_column("owner")


def downgrade() -> None:
    with op.batch_alter_table("followup_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch_op.drop_index("ix_followup_tasks_team")
        batch_op.drop_index("ix_followup_tasks_owner")
        batch_op.drop_constraint("fk_followup_tasks_team_id", type_="foreignkey")
        for column in (
            "resolution_note",
            "resolution_code",
            "resolved_at",
            "claimed_at",
            "team_id",
            "owner_name",
            "owner_id",
            "properties",
            "customer_phone",
            "customer_email",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_followup_timeline_task_id", table_name="followup_timeline")
    op.drop_table("followup_timeline")
    op.drop_index("ix_followup_team_touchpoints_team_id", table_name="followup_team_touchpoints")
    op.drop_table("followup_team_touchpoints")
    op.drop_table("followup_team_members")
    op.drop_table("followup_teams")
