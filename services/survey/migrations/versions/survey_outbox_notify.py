"""the outbox's trigger wakes the service's clock on PostgreSQL (NOTIFY) when events are committed

Revision ID: survey_outbox_notify
Revises: survey_0008_delighted
Create Date: 2026-11-26 16:00:00

"""

from collections.abc import Sequence

from alembic import op

from shared.migrations import create_outbox_notify_trigger, drop_outbox_notify_trigger

revision: str = "survey_outbox_notify"
down_revision: str | Sequence[str] | None = "survey_0008_delighted"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_notify_trigger(op, "survey")


def downgrade() -> None:
    drop_outbox_notify_trigger(op, "survey")
