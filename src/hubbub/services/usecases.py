"""Every use case of the server, built once by the composition root (app.py
`build_use_cases`). Each door calls these and nothing else: the WebSocket actions, the
HTTP handlers and the server API, so a rule lives in one service whichever door a
request came through."""

from __future__ import annotations

from dataclasses import dataclass

from hubbub.services.accounts import AccountService
from hubbub.services.calls import CallService
from hubbub.services.conversations import ConversationService
from hubbub.services.dead_letters import DeadLetters
from hubbub.services.directory import ChannelDirectory
from hubbub.services.inbox import InboxService
from hubbub.services.joining import Joining
from hubbub.services.member_settings import MemberSettings
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.reactions import ReactionService
from hubbub.services.receipts import ReceiptService
from hubbub.services.search import SearchService
from hubbub.services.sync import SyncService
from hubbub.services.tickets import TicketService
from hubbub.services.typing import TypingService
from hubbub.services.undelivered import Undelivered
from hubbub.services.users import UserService


@dataclass(frozen=True, slots=True)
class UseCases:
    """The services, one per noun (a door takes the few it calls, never this record whole,
    but for the WebSocket's action table, which calls nearly all)."""

    users: UserService
    messages: MessageService
    conversations: ConversationService
    # What only the backend does (the server API): profiles, erasure, its conversations.
    accounts: AccountService
    joining: Joining
    presence: PresenceService
    search: SearchService
    sync: SyncService
    typing: TypingService
    receipts: ReceiptService
    reactions: ReactionService
    tickets: TicketService
    calls: CallService
    # A member's own settings of a conversation (muted, pinned).
    member_settings: MemberSettings
    # The webhook events that could not be delivered (the server API, the CLI).
    dead_letters: DeadLetters
    # The public channels a user may join (GET /api/v1/channels).
    directory: ChannelDirectory
    # The per-user stream of every conversation (PROTOCOL.md §4.1); None when it is off.
    inbox: InboxService | None = None
    # The sweeper of `message.undelivered`; None when webhooks are off.
    undelivered: Undelivered | None = None
