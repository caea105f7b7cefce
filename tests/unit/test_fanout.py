"""The hub's fan-out through outboxes (delivery/hub.py, outbox.py): one write per connection
per tick, and each connection's frames in the order they were queued."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hubbub.adapters.memory.bus import MemoryBus
from hubbub.bus.envelope import Envelope, envelope_encoder
from hubbub.bus.topics import conversation_topic, user_topic
from hubbub.delivery.connection import Connection
from hubbub.delivery.frames import text_frame
from hubbub.delivery.hub import Hub
from hubbub.delivery.outbox import Flusher, Outbox

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOM = "room"


class FakeTransport:
    """Records every write; never closing, never buffering."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def frames(self) -> list[bytes]:
        return split_frames(b"".join(self.writes))


def split_frames(data: bytes) -> list[bytes]:
    """The payloads of unmasked text frames shorter than 126 bytes."""
    payloads = []
    while data:
        length = data[1]
        payloads.append(data[2:2 + length])
        data = data[2 + length:]
    return payloads


class Room:
    """A hub with connections on fake transports, and helpers to act on it in one tick."""

    def __init__(self) -> None:
        self.flusher = Flusher(asyncio.get_running_loop())
        self.hub = Hub(MemoryBus(), lambda kind, n: None)
        self.transports: dict[str, FakeTransport] = {}
        self.connections: dict[str, Connection] = {}

    def connect(self, name: str, join: bool = True, user: str | None = None) -> Connection:
        transport = FakeTransport()
        outbox = Outbox(transport, self.flusher, 1 << 20, lambda: None)  # type: ignore[arg-type]
        connection = Connection(name, "user-" + (user or name), name, outbox)
        self.transports[name] = transport
        self.connections[name] = connection
        self.hub.add(connection)
        if join:
            self.hub.join(connection, ROOM)
        return connection

    def event(self, text: str, exclude_user: str | None = None, user: str | None = None, *,
              exclude_connection: str | None = None,
              only_connection: str | None = None) -> None:
        topic = user_topic("user-" + user) if user else conversation_topic(ROOM)
        self.hub.on_bus(topic, envelope_encoder.encode(
            Envelope("NewMessage", text.encode(), exclude_user,
                     exclude_connection=exclude_connection, only_connection=only_connection)))

    def frames(self, name: str) -> list[str]:
        return [f.decode() for f in self.transports[name].frames()]

    def writes(self, name: str) -> int:
        return len(self.transports[name].writes)


async def next_ticks() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_events_of_one_tick_share_one_write_per_connection() -> None:
    """Three events in a tick reach each member in order, in a single write."""
    room = Room()
    for name in ("a", "b"):
        room.connect(name)
    for text in ("e1", "e2", "e3"):
        room.event(text)
    await next_ticks()
    for name in ("a", "b"):
        assert room.frames(name) == ["e1", "e2", "e3"]
        assert room.writes(name) == 1


async def test_a_frame_queued_between_events_stays_between_them() -> None:
    """A direct frame (a response) queued between two broadcasts is written between them."""
    room = Room()
    a = room.connect("a")
    room.connect("b")
    room.event("e1")
    a.outbox.push(text_frame(b"ack"))
    room.event("e2")
    await next_ticks()
    assert room.frames("a") == ["e1", "ack", "e2"]
    assert room.frames("b") == ["e1", "e2"]


async def test_a_member_joining_mid_tick_gets_only_later_events() -> None:
    """Joining closes the open broadcast: the newcomer gets what follows, nothing before."""
    room = Room()
    room.connect("a")
    room.event("e1")
    room.connect("late")
    room.event("e2")
    await next_ticks()
    assert room.frames("a") == ["e1", "e2"]
    assert room.frames("late") == ["e2"]


async def test_a_member_leaving_mid_tick_gets_nothing_after() -> None:
    """Leaving closes the open broadcast, so later events of the tick skip the leaver."""
    room = Room()
    room.connect("a")
    gone = room.connect("gone")
    room.event("e1")
    room.hub.leave(gone, ROOM)
    room.event("e2")
    await next_ticks()
    assert room.frames("gone") == ["e1"]
    assert room.frames("a") == ["e1", "e2"]


async def test_an_event_for_other_recipients_is_not_appended() -> None:
    """An excluded user, or another topic, starts a new broadcast with its own recipients."""
    room = Room()
    room.connect("a")
    room.connect("b")
    room.event("e1")
    room.event("typing", exclude_user="user-a")
    room.event("to-b", user="b")
    room.event("e2")
    await next_ticks()
    assert room.frames("a") == ["e1", "e2"]
    assert room.frames("b") == ["e1", "typing", "to-b", "e2"]


async def test_events_for_one_connection_of_a_user_never_share_a_chunk() -> None:
    """An event aimed at one of a user's connections (or past one) reaches only those, also
    right after an event for all of them in the same tick, and is not extended itself."""
    room = Room()
    room.connect("phone", join=False, user="bob")
    room.connect("laptop", join=False, user="bob")
    room.event("all", user="bob")
    room.event("phone-only", user="bob", only_connection="phone")
    room.event("all-again", user="bob")
    room.event("not-phone", user="bob", exclude_connection="phone")
    await next_ticks()
    assert room.frames("phone") == ["all", "phone-only", "all-again"]
    assert room.frames("laptop") == ["all", "all-again", "not-phone"]


async def test_events_after_a_flush_start_afresh() -> None:
    """An event in a later tick is not added to bytes already written."""
    room = Room()
    room.connect("a")
    room.event("e1")
    await next_ticks()
    room.event("e2")
    await next_ticks()
    assert room.frames("a") == ["e1", "e2"]
    assert room.writes("a") == 2


async def test_split_frames_reads_what_text_frame_writes() -> None:
    """The helper above reads back frames as `text_frame` builds them."""
    payloads: list[Any] = [b"x", b"hello"]
    assert split_frames(b"".join(text_frame(p) for p in payloads)) == payloads
