"""the decider keeps the trigger rules, templates and brand it read until they change: a version of them,
moved by triggers on their tables whatever writes them (issue 19)

Revision ID: survey_0011_settings_version
Revises: survey_0010_intake_wakeup
Create Date: 2026-11-27 20:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0011_settings_version"
down_revision: str | Sequence[str] | None = "survey_0010_intake_wakeup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On SQLite a later ``batch_alter_table`` of one of these recreates it without its triggers: such a migration
# creates them again, or the decider keeps settings that changed.
SETTINGS_TABLES = ("survey_trigger_rules", "survey_message_templates", "survey_brand")
MOVE = "UPDATE survey_settings_version SET version = version + 1 WHERE id = 1"
OPERATIONS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "survey_settings_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO survey_settings_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION survey_settings_changed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {MOVE}; RETURN NULL; END $$"
        )
        for table in SETTINGS_TABLES:
            # Per statement, in the changing transaction: committed with the change, or not at all.
            op.execute(
                f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION survey_settings_changed()"
            )
        return
    for table in SETTINGS_TABLES:
        for operation in OPERATIONS:
            op.execute(
                f"CREATE TRIGGER {table}_{operation}_changed AFTER {operation} ON {table} BEGIN {MOVE}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SETTINGS_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS survey_settings_changed()")
    else:
        for table in SETTINGS_TABLES:
            for operation in OPERATIONS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{operation}_changed")
    op.drop_table("survey_settings_version")
