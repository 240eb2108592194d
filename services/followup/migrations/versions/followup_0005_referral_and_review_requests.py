"""closing the loop outward: referral links and their clicks, review requests, mismatches, close-the-loop
messages, and the latest revision of every response

Revision ID: followup_0005
Revises: followup_0004
Create Date: 2026-11-30 10:00:00

"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "followup_0005"
down_revision: str | Sequence[str] | None = "followup_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followup_response_revisions",
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("response_id"),
    )
    with op.batch_alter_table("followup_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        # Every task opened so far is a detractor's.
        batch_op.add_column(sa.Column("mismatch", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("close_loop_message", sa.Text(), nullable=True))
    op.add_column("followup_timeline", sa.Column("close_loop_message", sa.Text(), nullable=True))

    with op.batch_alter_table("followup_referral_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("customer_email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("customer_phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("send_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clicks", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_clicked_at", sa.DateTime(timezone=True), nullable=True))
    # Requests recorded so far get a code too. None of them is ever sent: followup kept no email or phone
    # for them, so their send_at stays empty.
    requests = sa.table(
        "followup_referral_requests", sa.column("id", sa.String), sa.column("code", sa.String)
    )
    bind = op.get_bind()
    for request_id in bind.execute(sa.select(requests.c.id)).scalars().all():
        code = secrets.token_urlsafe(12)
        bind.execute(requests.update().where(requests.c.id == request_id).values(code=code))
    with op.batch_alter_table("followup_referral_requests", schema=None) as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint("uq_followup_referral_requests_code", ["code"])
        batch_op.create_index("ix_followup_referral_requests_due", ["status", "send_at"], unique=False)

    op.create_table(
        "followup_referral_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_request_id", sa.String(length=36), nullable=False),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["referral_request_id"], ["followup_referral_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_followup_referral_clicks_referral_request_id",
        "followup_referral_clicks",
        ["referral_request_id"],
        unique=False,
    )
    op.create_table(
        "followup_review_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("invitation_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=True),
        sa.Column("customer_email", sa.String(length=320), nullable=True),
        sa.Column("customer_phone", sa.String(length=32), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("response_id"),
    )
    op.create_index("ix_followup_review_requests_due", "followup_review_requests", ["send_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_followup_review_requests_due", table_name="followup_review_requests")
    op.drop_table("followup_review_requests")
    op.drop_index("ix_followup_referral_clicks_referral_request_id", table_name="followup_referral_clicks")
    op.drop_table("followup_referral_clicks")
    with op.batch_alter_table("followup_referral_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_followup_referral_requests_due")
        batch_op.drop_constraint("uq_followup_referral_requests_code", type_="unique")
        for column in (
            "last_clicked_at",
            "clicks",
            "converted_at",
            "withdrawn_at",
            "sent_at",
            "send_at",
            "channel",
            "locale",
            "customer_phone",
            "customer_email",
            "code",
        ):
            batch_op.drop_column(column)
    op.drop_column("followup_timeline", "close_loop_message")
    with op.batch_alter_table("followup_tasks", schema=None) as batch_op:
        for column in ("close_loop_message", "mismatch", "channel", "locale"):
            batch_op.drop_column(column)
    op.drop_table("followup_response_revisions")
