"""webhook outbox

Revision ID: 0008
Revises: 0007

`webhook_outbox`: the outgoing events of docs/WEBHOOKS.md, each inserted in the
transaction of the change it announces, so a committed change always has its events and a
rolled-back one never does. The dispatcher claims each conversation's oldest pending event
(`ix_webhook_outbox_conversation` says whether an older one is pending; the claim reads the
primary key in order), deletes it once delivered, and keeps it as `dead` when its retries
ran out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("retry_from", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_webhook_outbox_conversation", "webhook_outbox",
                    ["conversation_id", "state", "seq"])


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_conversation", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
