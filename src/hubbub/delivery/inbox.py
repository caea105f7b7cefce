"""The inbox of this instance's users: summaries derived from the conversations' streams.

A message is published once, on its conversation's topic; it is never published per
member. Each instance subscribes the topics of every conversation its connected users are
in, and counts for each such (user, conversation) the unread messages and the last one.
A new message costs one decode and a few operations whatever the number of members: the
conversation counts its messages, and each member's unread count is derived from that
count when its summary is built. A timer then sends each local member one
`ConversationSummary` with the state at that moment, however many messages came
meanwhile. So a conversation costs each instance at most one summary per local member per
interval, whatever its message rate: `SUMMARY_INTERVAL_S`, or `LARGE_INTERVAL_S` for
conversations of more than `LARGE_MEMBERS` members, where one message would otherwise
fan out to thousands of summaries
(docs/DECISIONS.md, "The inbox", has the measured cost).

Mentions are counted the same way: a message naming users by id bumps those local
members' counts (at most `limits.max_mentions` of them), and one to `@all`/`@here` bumps
one counter of the conversation that every member's count is derived from. A muted
conversation is counted all the same; its summaries say `muted: true`, so that clients
keep the badge and do not notify (PROTOCOL.md §4.1).

The user events (added, removed, read, settings) come on the user's topic; the hub hands
them here before delivering them, so the counting follows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from hubbub.domain.inbox import UNREAD_CAP, InboxEntry, preview
from hubbub.protocol.codec import encode
from hubbub.protocol.server import ConversationSummaryChanged, MessagePreview

SUMMARY_INTERVAL_S = 0.1
LARGE_INTERVAL_S = 1.0
LARGE_MEMBERS = 1000

# Topic events of these kinds change what the inbox counts (services/inbox.py).
ADDED, REMOVED, READ = "ConversationAdded", "ConversationRemoved", "ReadStateChanged"
SETTINGS = "MembershipUpdated"
USER_KINDS = frozenset((ADDED, REMOVED, READ, SETTINGS))
# The mentions that name every member of the conversation (PROTOCOL.md §3).
EVERYONE = frozenset(("@all", "@here"))
NEW_MESSAGE = "NewMessage"

SummarySink = Callable[[str, bytes], None]
Topics = Callable[[str], None]


class _Message(msgspec.Struct):
    id: str
    sender_id: str
    sender_name: str
    version: int
    content: str
    created_at: str
    kind: str = "user"
    mentions: tuple[str, ...] = ()


class _NewMessage(msgspec.Struct):
    message: _Message


class _Conversation(msgspec.Struct):
    id: str
    version: int
    member_count: int
    unread_count: int = 0
    mention_count: int = 0
    muted: bool = False


class _Added(msgspec.Struct):
    conversation: _Conversation


class _Removed(msgspec.Struct):
    conversation_id: str


class _Read(msgspec.Struct):
    conversation_id: str
    unread_count: int
    mention_count: int = 0


class _Settings(msgspec.Struct):
    conversation_id: str
    muted: bool


_new_message = msgspec.json.Decoder(_NewMessage)
_added = msgspec.json.Decoder(_Added)
_removed = msgspec.json.Decoder(_Removed)
_read = msgspec.json.Decoder(_Read)
_settings = msgspec.json.Decoder(_Settings)


class _Watch:
    """One user's count of one conversation: `unread` when the conversation had seen
    `seen` messages; each message since, but the user's own, is one more. `mentions`
    likewise, when it had seen `everyone` messages to `@all`/`@here`; a mention by id
    adds to `mentions` itself."""

    __slots__ = ("everyone", "mentions", "muted", "seen", "unread")

    def __init__(self, unread: int, mentions: int, conv: _Conv, muted: bool) -> None:
        self.unread = unread
        self.mentions = mentions
        self.seen = conv.seen
        self.everyone = conv.everyone
        self.muted = muted


class _Conv:
    """One conversation's state on this instance: its local members and its last message."""

    __slots__ = ("everyone", "large", "last", "seen", "version", "watches")

    def __init__(self, version: int, member_count: int) -> None:
        self.version = version
        # New messages counted here: a message costs one increment, not one per member.
        self.seen = 0
        # Messages to `@all`/`@here` counted here: likewise one increment each.
        self.everyone = 0
        self.large = member_count > LARGE_MEMBERS
        self.last: MessagePreview | None = None
        self.watches: dict[str, _Watch] = {}


class Inbox:
    """What this instance counts for its users; `send(user, payload)` delivers a summary
    to the user's connections, `need`/`release` (un)subscribe a conversation's topic."""

    def __init__(self, send: SummarySink, need: Topics, release: Topics,
                 interval: float = SUMMARY_INTERVAL_S,
                 large_interval: float = LARGE_INTERVAL_S) -> None:
        self._send = send
        self._need = need
        self._release = release
        self._conversations: dict[str, _Conv] = {}
        # Each counted user's conversations here; None until the first (an idle user in
        # none is the common case, and an empty set costs 216 bytes per user).
        self._of_user: dict[str, set[str] | None] = {}
        # Dirty (user, conversation) pairs and whole conversations, per interval.
        self._dirty: dict[bool, set[tuple[str | None, str]]] = {False: set(), True: set()}
        self._timers: dict[bool, asyncio.TimerHandle] = {}
        self._intervals = {False: interval, True: large_interval}
        self.summaries_sent = 0

    def watches(self, conversation_id: str) -> bool:
        return conversation_id in self._conversations

    def has_user(self, user_id: str) -> bool:
        return user_id in self._of_user

    def open(self, user_id: str, entries: list[InboxEntry]) -> None:
        """Start counting for a user's first connection here (idempotent)."""
        if user_id in self._of_user:
            return
        self._of_user[user_id] = None
        for entry in entries:
            self._watch(user_id, entry.conversation_id, entry.version, entry.member_count,
                        entry.unread_count, entry.mention_count, entry.muted)

    def close(self, user_id: str) -> None:
        """The user's last connection here closed: stop counting for it."""
        for conversation_id in list(self._of_user.pop(user_id, None) or ()):
            self._unwatch(user_id, conversation_id)

    def on_user_event(self, user_id: str, kind: str, payload: bytes) -> None:
        """An added/removed/read/settings event for a user counted here (before it is
        delivered)."""
        if user_id not in self._of_user:
            return
        if kind == ADDED:
            c = _added.decode(payload).conversation
            self._watch(user_id, c.id, c.version, c.member_count, c.unread_count,
                        c.mention_count, c.muted)
        elif kind == REMOVED:
            self._unwatch(user_id, _removed.decode(payload).conversation_id)
        elif kind == READ:
            read = _read.decode(payload)
            conv, watch = self._find(user_id, read.conversation_id)
            if conv is not None and watch is not None:
                watch.unread, watch.mentions = read.unread_count, read.mention_count
                watch.seen, watch.everyone = conv.seen, conv.everyone
                self._mark(conv.large, user_id, read.conversation_id)
        elif kind == SETTINGS:
            # Muted on one device: every connection's summary says so from now on.
            settings = _settings.decode(payload)
            conv, watch = self._find(user_id, settings.conversation_id)
            if conv is not None and watch is not None and watch.muted != settings.muted:
                watch.muted = settings.muted
                self._mark(conv.large, user_id, settings.conversation_id)

    def _find(self, user_id: str, conversation_id: str) -> tuple[_Conv | None, _Watch | None]:
        conv = self._conversations.get(conversation_id)
        return conv, None if conv is None else conv.watches.get(user_id)

    def on_new_message(self, conversation_id: str, payload: bytes) -> None:
        """A new message in a conversation counted here: one decode for every member."""
        conv = self._conversations.get(conversation_id)
        if conv is None:
            return
        message = _new_message.decode(payload).message
        if message.version > conv.version or conv.last is None:
            # (an older one is unread all the same, but two instances' publishes crossed
            # and the preview stays the newest)
            conv.version = message.version
            conv.last = MessagePreview(message.id, message.sender_id, message.sender_name,
                                       preview(message.content), message.created_at,
                                       "system" if message.kind == "system" else "user")
        conv.seen += 1
        own = conv.watches.get(message.sender_id)
        if own is not None:
            own.seen += 1  # one's own message is never unread
        if message.mentions:
            self._count_mentions(conv, own, message)
        self._mark(conv.large, None, conversation_id)

    @staticmethod
    def _count_mentions(conv: _Conv, own: _Watch | None, message: _Message) -> None:
        """Each mentioned member's count, the message once (`@all` and an id in one
        message are one mention), never the sender's own."""
        if EVERYONE.intersection(message.mentions):
            conv.everyone += 1
            if own is not None:
                own.everyone += 1
            return
        for user_id in set(message.mentions):
            watch = conv.watches.get(user_id)
            if watch is not None and watch is not own:
                watch.mentions += 1

    def _watch(self, user_id: str, conversation_id: str, version: int, member_count: int,
               unread: int, mentions: int, muted: bool) -> None:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            conv = self._conversations[conversation_id] = _Conv(version, member_count)
            self._need(conversation_id)
        conv.watches[user_id] = _Watch(unread, mentions, conv, muted)
        mine = self._of_user[user_id]
        if mine is None:
            self._of_user[user_id] = {conversation_id}
        else:
            mine.add(conversation_id)

    def _unwatch(self, user_id: str, conversation_id: str) -> None:
        mine = self._of_user.get(user_id)
        if mine is not None:
            mine.discard(conversation_id)
        conv = self._conversations.get(conversation_id)
        if conv is None or conv.watches.pop(user_id, None) is None:
            return
        if not conv.watches:
            del self._conversations[conversation_id]
            self._release(conversation_id)

    def _mark(self, large: bool, user_id: str | None, conversation_id: str) -> None:
        """Queue a summary (`user_id` None: for every local member) for the next tick."""
        self._dirty[large].add((user_id, conversation_id))
        if large not in self._timers:
            self._timers[large] = asyncio.get_running_loop().call_later(
                self._intervals[large], self._flush, large)

    def _flush(self, large: bool) -> None:
        del self._timers[large]
        dirty, self._dirty[large] = self._dirty[large], set()
        everyone = {c for u, c in dirty if u is None}
        for user_id, conversation_id in dirty:
            conv = self._conversations.get(conversation_id)
            if conv is None or (user_id is not None and conversation_id in everyone):
                continue
            users = conv.watches if user_id is None else (user_id,)
            for uid in users:
                watch = conv.watches.get(uid)
                if watch is not None:
                    self._summary(uid, conversation_id, conv, watch)

    def _summary(self, user_id: str, conversation_id: str, conv: _Conv, watch: _Watch) -> None:
        self.summaries_sent += 1
        self._send(user_id, encode(ConversationSummaryChanged(
            conversation_id=conversation_id, version=conv.version, last_message=conv.last,
            unread_count=min(UNREAD_CAP, watch.unread + conv.seen - watch.seen),
            mention_count=min(UNREAD_CAP, watch.mentions + conv.everyone - watch.everyone),
            muted=watch.muted)))

    def close_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
