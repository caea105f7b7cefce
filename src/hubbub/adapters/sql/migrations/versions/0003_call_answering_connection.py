"""call answering connection and indexes

Revision ID: 0003
Revises: 0002

- `calls.answered_connection_id`: the connection (device) that answered. The callee may
  have several devices ringing; once one answers, only that one may go on signalling
  (answers, candidates, renegotiation offers), so a second device's late answer is refused
  instead of reaching the caller. Every instance must see it, hence a column.
- Indexes for the lookups of the call relay (services/calls.py): a user's open calls when
  their last connection closes (`caller_id`/`callee_id` + `state`), and ringing calls left
  behind by a stopped instance (`state` + `created_at`). Without them each is a scan of
  every call ever made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_connection_id', sa.String(length=36),
                                      nullable=True))
        batch_op.create_index('ix_calls_caller_state', ['caller_id', 'state'], unique=False)
        batch_op.create_index('ix_calls_callee_state', ['callee_id', 'state'], unique=False)
        batch_op.create_index('ix_calls_state_created', ['state', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_state_created')
        batch_op.drop_index('ix_calls_callee_state')
        batch_op.drop_index('ix_calls_caller_state')
        batch_op.drop_column('answered_connection_id')
