"""deliveries of every kind: unique by the id of what asked for them (source_id) and kind

Revision ID: dispatch_0003
Revises: dispatch_0002
Create Date: 2026-11-26 15:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_0003"
down_revision: str | Sequence[str] | None = "dispatch_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.String(length=64), nullable=True))
    # Every existing row is an invitation's: its source is its invitation.
    op.execute("UPDATE dispatch_deliveries SET source_id = invitation_id")
    with op.batch_alter_table("dispatch_deliveries", schema=None) as batch_op:
        batch_op.alter_column("source_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("invitation_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.drop_constraint("uq_dispatch_deliveries_invitation_kind", type_="unique")
        batch_op.create_unique_constraint("uq_dispatch_deliveries_source_kind", ["source_id", "kind"])
        # The unique key served the lookups by invitation until now.
        batch_op.create_index("ix_dispatch_deliveries_invitation", ["invitation_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("deliveries of other kinds than invitations have no place in the old table")
