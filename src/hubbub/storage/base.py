"""Every noun's store at once (until each service takes only the nouns it uses)."""

from __future__ import annotations

from typing import Protocol

from hubbub.storage.conversations import ConversationStore
from hubbub.storage.database import Database
from hubbub.storage.errors import StoreUnavailable
from hubbub.storage.members import MemberStore
from hubbub.storage.messages import MessageStore
from hubbub.storage.reactions import ReactionStore
from hubbub.storage.receipts import ReceiptStore
from hubbub.storage.search import SearchStore
from hubbub.storage.users import UserStore

__all__ = ["Store", "StoreUnavailable"]


class Store(UserStore, ConversationStore, MemberStore, MessageStore, ReactionStore,
            ReceiptStore, SearchStore, Database, Protocol):
    """Persistent state of hubbub. All times are UTC microseconds."""
