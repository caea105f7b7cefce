"""The storage seam: one small Protocol per noun, the error they share, and `Stores`, one of
each on one database.

Only interfaces live here (importing this package loads no driver); the SQL implementation
is hubbub/adapters/sql/, and app.py hands each service the nouns it uses.

Writes are serialised through one writer per database and batched into shared transactions
(group commit); reads run concurrently. Implementations raise `ChatError`s for the rules
they check inside a transaction (e.g. editing a message deleted a moment ago) and translate
driver errors into `StoreUnavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubbub.storage.calls import CallStore
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.database import Database
from hubbub.storage.errors import StoreUnavailable
from hubbub.storage.idempotency import IdempotencyStore
from hubbub.storage.members import MemberStore
from hubbub.storage.messages import MessageStore
from hubbub.storage.reactions import ReactionStore
from hubbub.storage.receipts import ReceiptStore
from hubbub.storage.search import SearchStore
from hubbub.storage.users import UserStore

__all__ = ["CallStore", "ConversationStore", "Database", "IdempotencyStore", "MemberStore",
           "MessageStore",
           "ReactionStore", "ReceiptStore", "SearchStore", "StoreUnavailable", "Stores",
           "UserStore"]


@dataclass(frozen=True, slots=True)
class Stores:
    """One store per noun, all on one database: what the composition root opens, and hands
    out noun by noun (never whole: each part gets the stores it uses)."""

    users: UserStore
    conversations: ConversationStore
    members: MemberStore
    messages: MessageStore
    reactions: ReactionStore
    receipts: ReceiptStore
    search: SearchStore
    calls: CallStore
    idempotency: IdempotencyStore
