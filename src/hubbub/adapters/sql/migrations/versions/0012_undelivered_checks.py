"""undelivered checks

Revision ID: 0012
Revises: 0011

`undelivered_checks`: one row per conversation with messages whose `message.undelivered`
check (docs/WEBHOOKS.md) is still owed, written with the messages in their transaction
(`from_seq`: the first of them; `due_at`: a grace after them). An instance
that stops within the grace leaves the row, and whichever instance sweeps next runs the
check. `lease_owner` / `lease_until`: the sweeper running it now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "undelivered_checks",
        sa.Column("conversation_id", sa.String(length=36), primary_key=True),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_undelivered_checks_due", "undelivered_checks", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_undelivered_checks_due", table_name="undelivered_checks")
    op.drop_table("undelivered_checks")
