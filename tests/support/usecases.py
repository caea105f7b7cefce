"""The services wired as the composition root wires them, over a real SQL store and the
memory bus, for use-case tests: no socket, no transport, one event loop.

This is the one place a use-case test builds a service: it mirrors `hubbub.app.build_server`
(and the listeners `_lifespan` adds), so a changed constructor is fixed here alone. What the
services publish is heard on the bus itself (`Heard`), never waited for with a sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubbub.adapters.memory.bus import MemoryBus
from hubbub.adapters.memory.presence import MemoryPresenceCounter
from hubbub.adapters.memory.ratelimit import Unlimited
from hubbub.adapters.memory.typing import MemoryTypingStates
from hubbub.adapters.sql import SqlDatabase
from hubbub.bus.envelope import ControlEvent, Envelope, control_decoder, envelope_decoder
from hubbub.bus.topics import CONTROL, conversation_topic, parse_topic, user_topic
from hubbub.config import Settings
from hubbub.domain.models import Message
from hubbub.domain.tokens import Identity
from hubbub.protocol.objects import Kind
from hubbub.services.access import Access
from hubbub.services.calls import CallService
from hubbub.services.consent import Consent
from hubbub.services.context import Actor
from hubbub.services.conversations import ConversationService
from hubbub.services.events import Events
from hubbub.services.member_settings import MemberSettings
from hubbub.services.membership import MembershipCache
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.reactions import ReactionService
from hubbub.services.receipts import ReceiptService
from hubbub.services.sync import SyncService
from hubbub.services.typing import TypingService
from hubbub.services.users import UserService
from hubbub.storage import Stores

# The topic of `Heard.settle`'s marker: no service publishes on it.
_BARRIER = user_topic("barrier")
_markers = itertools.count(1)
# Generous: a marker arrives on the next loop iteration of an idle loop.
SETTLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Event:
    """One event a service published: the decoded server message and its envelope."""

    topic: str
    message: dict[str, Any]
    envelope: Envelope

    @property
    def type(self) -> str:
        return str(self.message["type"])


class Heard:
    """The bus handler of the use-case tests: records every event by topic and hands the
    control events to their listeners, as the hub does (delivery/hub.py)."""

    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._events: list[Event] = []
        self._markers: set[str] = set()
        self._arrived = asyncio.Event()
        self.control_listeners: list[Callable[[ControlEvent], None]] = []
        bus.subscribe(CONTROL)
        bus.subscribe(_BARRIER)

    def listen(self, topic: str) -> None:
        """Hear `topic` from now on (the memory bus drops what nobody subscribed to)."""
        self._bus.subscribe(topic)

    def on_bus(self, topic: str, payload: bytes) -> None:
        kind, _ = parse_topic(topic)
        if kind == CONTROL:
            event = control_decoder.decode(payload)
            for listener in self.control_listeners:
                listener(event)
        elif topic == _BARRIER:
            self._markers.add(payload.decode())
        else:
            envelope = envelope_decoder.decode(payload)
            self._events.append(Event(topic, json.loads(envelope.payload), envelope))
        self._arrived.set()

    async def settle(self) -> None:
        """Return once everything published before now has been heard: the memory bus
        delivers in publish order, so a marker published now arrives after all of it."""
        marker = f"m{next(_markers)}"
        self._bus.publish(_BARRIER, marker.encode())
        async with asyncio.timeout(SETTLE_TIMEOUT):
            while marker not in self._markers:
                self._arrived.clear()
                await self._arrived.wait()
        self._markers.discard(marker)

    async def take(self, topic: str | None = None) -> list[Event]:
        """Every event heard since the last `take` (on `topic`, or on any), once settled."""
        await self.settle()
        taken = [e for e in self._events if topic is None or e.topic == topic]
        self._events = [e for e in self._events if e not in taken]
        return taken

    async def next(self, topic: str, type_: str) -> Event:
        """The first event of `type_` on `topic` not taken yet, waiting for it (a timer's
        or a listener's event comes later than the call that set it off)."""
        async with asyncio.timeout(SETTLE_TIMEOUT):
            while True:
                for event in self._events:
                    if event.topic == topic and event.type == type_:
                        self._events.remove(event)
                        return event
                self._arrived.clear()
                await self._arrived.wait()

    async def types(self, topic: str | None = None) -> list[str]:
        """The types of `take(topic)`, in publish order."""
        return [event.type for event in await self.take(topic)]


@dataclass(frozen=True)
class Sent:
    """What a send answered, in the tests' terms (`UseCases.send` adapts the service's)."""

    message: Message
    created: bool


@dataclass
class UseCases:
    """Every service of one instance, the bus they publish on, and what was heard."""

    stores: Stores
    bus: MemoryBus
    heard: Heard
    users: UserService
    messages: MessageService
    conversations: ConversationService
    presence: PresenceService
    consent: Consent
    sync: SyncService
    receipts: ReceiptService
    reactions: ReactionService
    calls: CallService
    typing: TypingService
    memberships: MembershipCache
    access: Access
    member_settings: MemberSettings
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    async def user(self, name: str | None = None) -> Actor:
        """A new user, known to the server (as its first valid token makes it), whose
        user topic is heard."""
        user_id = str(uuid.uuid4())
        name = name or f"user-{user_id[:6]}"
        await self.users.seen(Identity(user_id, name, time.time() + 3600))
        self.heard.listen(user_topic(user_id))
        return Actor(user_id, name)

    async def conversation(self, owner: Actor, kind: Kind = "group",
                           members: list[Actor] | None = None) -> str:
        """A new conversation of `owner` with `members`, whose topic is heard; its id."""
        name = None if kind == "direct" else "room"
        conversation, _ = await self.conversations.create(
            owner, kind, name, [m.user_id for m in members or []])
        self.heard.listen(conversation_topic(conversation.id))
        return conversation.id

    async def send(self, actor: Actor, conversation_id: str, content: str = "hello", *,
                   key: str | None = None, parent_id: str | None = None,
                   mentions: tuple[str, ...] = ()) -> Sent:
        """`MessageService.send`, called in one place (its signature may move)."""
        outcome = await self.messages.send(actor, conversation_id, content, parent_id, [], key,
                                           mentions)
        return Sent(outcome.message, outcome.created)

    async def version(self, conversation_id: str) -> int:
        """The conversation's version as stored."""
        conversation = await self.stores.conversations.get_conversation(conversation_id)
        assert conversation is not None
        return conversation.version

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        await self.bus.close()


def settings(**overrides: Any) -> Settings:
    """The settings the services read, defaulted as a server's are."""
    base: dict[str, Any] = {"database_url": "sqlite:///unused.db", "jwt_secret": "x" * 32}
    base.update(overrides)
    return Settings(**base)


async def open_usecases(database: SqlDatabase, config: Settings | None = None) -> UseCases:
    """The services over `database`, wired as `hubbub.app.build_server` wires them (no
    rate limits; coordination in this process), with the bus started and calls watching."""
    config = config or settings()
    stores = database.stores
    bus = MemoryBus()
    heard = Heard(bus)
    events = Events(bus)
    memberships = MembershipCache(stores.members)
    heard.control_listeners.append(memberships.on_control)
    bus.on_resumed(memberships.clear)
    access = Access(memberships, stores.conversations)
    limiter = Unlimited()
    presence = PresenceService(stores.users, stores.members, events, MemoryPresenceCounter())
    consent = Consent(stores.members, memberships, events, presence)
    calls = CallService(stores.calls, stores.conversations, stores.members, memberships,
                        access, events, config.call_ring_timeout)
    typing = TypingService(access, events, MemoryTypingStates(), config.typing_timeout)
    built = UseCases(
        stores=stores, bus=bus, heard=heard, memberships=memberships, access=access,
        users=UserService(stores.users),
        messages=MessageService(stores.messages, stores.conversations, memberships, events,
                                consent),
        conversations=ConversationService(stores.conversations, stores.members, stores.users,
                                          memberships, events, consent, limiter,
                                          config.conversation_rule),
        presence=presence, consent=consent,
        sync=SyncService(stores.messages, access),
        receipts=ReceiptService(stores.receipts, access, events),
        reactions=ReactionService(stores.reactions, stores.messages, access, events),
        calls=calls, typing=typing,
        member_settings=MemberSettings(stores.members, stores.conversations, memberships,
                                       events),
    )
    # The listeners `hubbub.app._lifespan` adds.
    presence.on_offline(calls.user_offline)
    heard.control_listeners.append(calls.on_control)
    await bus.start(heard.on_bus)
    await calls.start(presence.online)
    built._closers += [calls.close, typing.close]
    return built
