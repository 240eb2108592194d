"""deliveries keep the customer's time zone, the invitation's touchpoint and expiry, a readable failure reason
and error code, the start of an attempt whose outcome is unknown, and their fallback channels; inbound
messages' senders may be WhatsApp addresses

Revision ID: dispatch_0004
Revises: dispatch_0003
Create Date: 2026-11-26 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_0004"
down_revision: str | Sequence[str] | None = "dispatch_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Alembic's version column holds 32 characters, and this revision's id is longer: widen it first (the
    # new id is written after upgrade() runs, in the same transaction). SQLite does not enforce the length.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "dispatch_alembic_version",
            "version_num",
            existing_type=sa.String(length=32),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table("dispatch_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("touchpoint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reconcile_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("fallbacks", sa.JSON(), nullable=True))
    with op.batch_alter_table("dispatch_inbound_sms", schema=None) as batch_op:
        batch_op.alter_column(
            "from_phone",
            existing_type=sa.String(length=20),
            type_=sa.String(length=40),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("dispatch_inbound_sms", schema=None) as batch_op:
        batch_op.alter_column(
            "from_phone",
            existing_type=sa.String(length=40),
            type_=sa.String(length=20),
            existing_nullable=False,
        )
    with op.batch_alter_table("dispatch_deliveries", schema=None) as batch_op:
        for column in (
            "fallbacks",
            "reconcile_since",
            "expires_at",
            "touchpoint",
            "timezone",
            "failure_reason",
            "error_code",
        ):
            batch_op.drop_column(column)
