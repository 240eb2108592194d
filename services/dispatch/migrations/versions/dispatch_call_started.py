"""deliveries note when an attempt's provider call may have left, so a worker that died before it is retried

Revision ID: dispatch_call_started
Revises: dispatch_outbox_notify
Create Date: 2026-11-26 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_call_started"
down_revision: str | Sequence[str] | None = "dispatch_outbox_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dispatch_deliveries", schema=None) as batch_op:
        batch_op.drop_column("call_started_at")
