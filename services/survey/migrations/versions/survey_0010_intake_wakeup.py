"""received CRM events wake the decider from the intake's process after the commit, not by a trigger's NOTIFY
inside the intake's transaction (issue 19: PostgreSQL queues notifying commits behind one server-wide lock
held until each is on disk)

Revision ID: survey_0010_intake_wakeup
Revises: survey_0009_intake
Create Date: 2026-11-27 00:30:00

"""

from collections.abc import Sequence

from alembic import op

from shared.migrations import create_insert_notify_trigger, drop_insert_notify_trigger

revision: str = "survey_0010_intake_wakeup"
down_revision: str | Sequence[str] | None = "survey_0009_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As survey_0009_intake made it.
TRIGGER, TABLE = "survey_crm_events_received", "survey_crm_events"
CHANNEL = "survey_crm_events_received"


def upgrade() -> None:
    drop_insert_notify_trigger(op, TRIGGER, TABLE)


def downgrade() -> None:
    create_insert_notify_trigger(op, TRIGGER, TABLE, CHANNEL, "NEW.status = 'received'")
