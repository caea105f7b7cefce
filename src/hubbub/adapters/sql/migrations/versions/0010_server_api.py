"""server API: user profile, erasure, idempotency keys

Revision ID: 0010
Revises: 0009

- `users.avatar_url`, `users.metadata` (a JSON object as text): what the backend sets with
  `PUT /api/v1/server/users/{user_id}` (PROTOCOL.md §8).
- `users.erased_at`: when the backend erased the user; its tokens are refused and it cannot
  be added until re-created.
- `idempotency_keys`: the `Idempotency-Key` of a `POST /api/v1/server/conversations`, with
  a fingerprint of its body and the conversation it created.

System messages need no column: their sender id is the empty string, which no user id is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('avatar_url', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('metadata', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.BigInteger(), nullable=True))
    op.create_table(
        'idempotency_keys',
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('resource_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('metadata')
        batch_op.drop_column('avatar_url')
