"""membership consent and direct peers

Revision ID: 0005
Revises: 0004

- `members.accepted_at`: when the user first took part in the conversation (created it,
  joined it, sent to it). A membership someone else made starts without it, and the
  user's presence is not shown through it until then (docs/DECISIONS.md, "Consent").
  Existing memberships count as accepted from their `joined_at`: their users have seen
  them under the old rules already, and hiding them now would only look like an outage.
- The two members of a `direct` conversation are peers: its creator, `owner` until now,
  becomes `member` like the other party.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_DIRECT = "SELECT id FROM conversations WHERE kind = 'direct'"


def upgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_at', sa.BigInteger(), nullable=True))
    op.execute('UPDATE members SET accepted_at = joined_at')
    op.execute(f"UPDATE members SET role = 'member' "
               f"WHERE role = 'owner' AND conversation_id IN ({_DIRECT})")


def downgrade() -> None:
    op.execute(f"UPDATE members SET role = 'owner' WHERE conversation_id IN ({_DIRECT}) "
               "AND user_id = (SELECT created_by FROM conversations "
               "WHERE conversations.id = members.conversation_id)")
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')
