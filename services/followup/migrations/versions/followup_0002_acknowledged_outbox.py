"""outbox rows per consumer, acknowledged by it; consumed events pruned by age

Revision ID: followup_0002
Revises: followup_0001
Create Date: 2026-11-26 13:00:00

"""

from collections.abc import Sequence

from shared.migrations import split_outbox_by_consumer

revision: str = "followup_0002"
down_revision: str | Sequence[str] | None = "followup_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    split_outbox_by_consumer("followup", {})


def downgrade() -> None:
    raise NotImplementedError("the acknowledged outbox cannot be folded back into one row per event")
