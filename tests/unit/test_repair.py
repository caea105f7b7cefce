"""The hub repairs what the bus lost from the store (delivery/repair.py): after a bus
outage, for a gap its gate gave up, and for a quiet conversation whose last event never
came; each change reaches each connection once, in version order."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from hubbub.adapters.memory.bus import MemoryBus
from hubbub.bus.base import ResumeListener
from hubbub.bus.envelope import Envelope, envelope_encoder
from hubbub.bus.topics import conversation_topic
from hubbub.delivery.connection import Connection
from hubbub.delivery.hub import Hub
from hubbub.delivery.outbox import Flusher, Outbox
from hubbub.delivery.repair import REPAIR_CONCURRENCY, REPAIR_PAGE
from tests.support.changes import MemoryChanges
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOM = "room"
HOLD = 0.05
# Long enough that the periodic check never runs in tests that do not want it.
NO_CHECK = 3600.0


class ResumableBus(MemoryBus):
    """The in-process bus, with an outage's end a test can announce."""

    def __init__(self) -> None:
        super().__init__()
        self._listeners: list[ResumeListener] = []

    def on_resumed(self, listener: ResumeListener) -> None:
        self._listeners.append(listener)

    def resume(self) -> None:
        for listener in self._listeners:
            listener()


class FakeTransport:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def frames(data: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of unmasked server text frames (RFC 6455 §5.2)."""
    found = []
    while data:
        length, start = data[1], 2
        if length == 126:
            (length,), start = struct.unpack("!H", data[2:4]), 4
        elif length == 127:
            (length,), start = struct.unpack("!Q", data[2:10]), 10
        found.append(json.loads(data[start:start + length]))
        data = data[start + length:]
    return found


def change(frame: dict[str, Any]) -> tuple[str, str, int]:
    """(type, message id, version) of a change event."""
    if "message" in frame:
        return frame["type"], frame["message"]["id"], frame["message"]["version"]
    return frame["type"], frame["message_id"], frame["version"]


class Room:
    """A hub with a change source, connections on fake transports, and one conversation."""

    def __init__(self, check_interval: float) -> None:
        self.bus = ResumableBus()
        self.store = MemoryChanges()
        self.store.create_conversation(ROOM)
        self.hub = Hub(self.bus, lambda kind, n: None, reorder_hold=HOLD,
                       changes=self.store, check_interval=check_interval)
        self.flusher = Flusher(asyncio.get_running_loop())
        self.transports: dict[str, FakeTransport] = {}
        self.connections: dict[str, Connection] = {}

    def connect(self, name: str, answer: bool = True, conversation_id: str = ROOM
                ) -> Connection:
        """A connection that joins a conversation as JoinConversation does: subscribe, then
        (`answer`) tell the hub the version the join answered with."""
        transport = FakeTransport()
        outbox = Outbox(transport, self.flusher, 1 << 30)  # type: ignore[arg-type]
        connection = Connection(name, "user-" + name, name, outbox)
        self.transports[name] = transport
        self.connections[name] = connection
        self.hub.add(connection)
        self.hub.join(connection, conversation_id)
        if answer:
            self.hub.joined_at(conversation_id, self.store.version(conversation_id))
        return connection

    def publish(self, *events: Envelope, conversation_id: str = ROOM) -> None:
        """The bus brings these events."""
        for event in events:
            self.hub.on_bus(conversation_topic(conversation_id), envelope_encoder.encode(event))

    def frames(self, name: str) -> list[dict[str, Any]]:
        return frames(self.transports[name].data)

    def received(self, name: str) -> list[tuple[str, str, int]]:
        return [change(f) for f in self.frames(name)]


async def started(room: Room) -> Room:
    await room.bus.start(room.hub.on_bus)
    room.hub.start()
    return room


@pytest_asyncio.fixture(loop_scope="session")
async def room() -> AsyncIterator[Room]:
    """A room whose hub never runs its periodic check."""
    room = await started(Room(NO_CHECK))
    yield room
    await room.hub.close()


@pytest_asyncio.fixture(loop_scope="session")
async def checked_room() -> AsyncIterator[Room]:
    """A room whose hub checks the stored versions every 20 ms."""
    room = await started(Room(0.02))
    yield room
    await room.hub.close()


def keys(*events: Envelope) -> list[tuple[str, str, int]]:
    return [change(json.loads(event.payload)) for event in events]


async def settle(seconds: float = 0.0) -> None:
    """Let timers due within `seconds`, the repairs they start and the flush run."""
    await asyncio.sleep(seconds)
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_resumed_bus_brings_what_was_sent_during_the_outage(room: Room) -> None:
    """Messages stored while the bus was down reach every connection when it resumes, in
    order, with no further traffic."""
    room.connect("a")
    room.connect("b")
    before = room.store.send(ROOM, "before")
    room.publish(before)
    lost = [room.store.send(ROOM, f"during {n}") for n in range(3)]
    room.bus.resume()
    await until(lambda: len(room.received("b")) == 4, "b has all four")
    await settle()
    for name in ("a", "b"):
        assert room.received(name) == keys(before, *lost)
    assert room.hub.repair_stats.runs["resumed"] == 1
    assert room.hub.repair_stats.events == 3


async def test_a_quiet_conversation_is_repaired_without_any_event(room: Room) -> None:
    """The baseline comes from the join's answer: a conversation that never saw an event
    still learns, when the bus resumes, what was sent meanwhile."""
    room.store.send(ROOM, "history")
    room.connect("a")
    lost = room.store.send(ROOM, "during")
    room.bus.resume()
    await until(lambda: room.received("a") == keys(lost), "a has the lost message")


async def test_a_gap_is_repaired_instead_of_given_up(room: Room) -> None:
    """A version the bus lost while later ones arrive is read from the store after the
    hold and delivered before them; no version is skipped."""
    room.connect("a")
    first, lost, third = (room.store.send(ROOM, f"m{n}") for n in range(3))
    room.publish(first, third)
    await settle()
    assert room.received("a") == keys(first)
    await until(lambda: len(room.received("a")) == 3, "the gap is filled")
    await settle()
    assert room.received("a") == keys(first, lost, third)
    assert room.hub.repair_stats.runs["gap"] == 1
    assert room.hub.order_stats.skipped_versions == 0


async def test_the_check_repairs_a_conversation_whose_last_event_was_lost(
        checked_room: Room) -> None:
    """No outage, no later event (its instance crashed between commit and publish): the
    periodic check finds the stored version ahead and repairs it."""
    room = checked_room
    room.connect("a")
    delivered = room.store.send(ROOM, "delivered")
    room.publish(delivered)
    lost = room.store.send(ROOM, "never published")
    await until(lambda: len(room.received("a")) == 2, "the check repaired it", within=5)
    assert room.received("a") == keys(delivered, lost)
    assert room.hub.repair_stats.runs["check"] == 1


async def test_the_check_leaves_a_conversation_whose_events_arrive(checked_room: Room) -> None:
    """Events on their way are not repaired: the store is ahead only until they arrive."""
    room = checked_room
    room.connect("a")
    for n in range(5):
        room.publish(room.store.send(ROOM, f"m{n}"))
        await settle(0.03)
    await settle(0.1)
    assert len(room.received("a")) == 5
    assert room.hub.repair_stats.runs["check"] == 0
    assert room.store.version_reads > 0  # the check did run


async def test_events_during_a_repair_arrive_once_and_in_order(room: Room) -> None:
    """The bus keeps delivering while the repair reads: a late copy of a repaired version
    is dropped, a newer event waits for the repair and follows it."""
    room.connect("a")
    first = room.store.send(ROOM, "m1")
    room.publish(first)
    lost = [room.store.send(ROOM, f"lost {n}") for n in range(2)]
    room.store.hold_reads()
    room.bus.resume()
    await settle()
    newer = room.store.send(ROOM, "after the read")
    room.publish(lost[1], newer)  # a late copy of a lost one, then a new one
    await settle()
    assert room.received("a") == keys(first), "nothing may pass while the repair reads"
    room.store.release_reads()
    await until(lambda: len(room.received("a")) == 4, "the repair and the new event")
    await settle()
    assert room.received("a") == keys(first, *lost, newer)


async def test_one_repair_at_a_time_and_a_resume_during_it_repairs_again(room: Room) -> None:
    """A second outage ending while a repair reads does not start a second repair beside
    it, but one after it, which brings what the first one read too early to see."""
    room.connect("a")
    early = room.store.send(ROOM, "early")
    room.store.hold_reads()
    room.bus.resume()
    await settle()
    late = room.store.send(ROOM, "after the first read")
    room.bus.resume()
    await settle()
    room.store.release_reads()
    await until(lambda: len(room.received("a")) == 2, "both repairs delivered")
    await settle()
    assert room.received("a") == keys(early, late)
    assert room.store.change_reads_at_once == 1
    assert room.store.change_reads == 2
    assert room.hub.repair_stats.runs["resumed"] == 2


async def test_a_resume_repairs_only_conversations_behind(room: Room) -> None:
    """One batched read of the stored versions first: a conversation that missed nothing
    costs no repair."""
    room.store.create_conversation("other")
    room.connect("a")
    room.connect("b", conversation_id="other")
    lost = room.store.send(ROOM, "lost")
    room.publish(room.store.send("other", "delivered"), conversation_id="other")
    room.bus.resume()
    await until(lambda: room.received("a") == keys(lost), "a has the lost one")
    await settle()
    assert room.hub.repair_stats.runs["resumed"] == 1
    assert room.store.change_reads == 1
    assert room.store.version_reads == 1


async def test_repairs_of_many_conversations_share_a_few_reads_at_once(room: Room) -> None:
    """After an outage that touched many conversations, only REPAIR_CONCURRENCY repairs
    read the store at once; every one completes."""
    names = [f"c{n}" for n in range(REPAIR_CONCURRENCY * 3)]
    for name in names:
        room.store.create_conversation(name)
        room.connect(name, conversation_id=name)
        room.store.send(name, "lost")
    room.store.hold_reads()
    room.bus.resume()
    await settle(0.01)
    assert room.store.change_reads_at_once == REPAIR_CONCURRENCY
    room.store.release_reads()
    await until(lambda: all(len(room.received(n)) == 1 for n in names), "all repaired")
    assert room.store.change_reads_at_once == REPAIR_CONCURRENCY


async def test_a_long_outage_is_repaired_page_by_page(room: Room) -> None:
    """More changes than one read returns arrive in order, each once, over several reads."""
    room.connect("a")
    lost = [room.store.send(ROOM, f"m{n}") for n in range(REPAIR_PAGE * 5 // 2)]
    room.bus.resume()
    await until(lambda: len(room.received("a")) == len(lost), "every page delivered")
    await settle()
    assert room.received("a") == keys(*lost)
    assert room.store.change_reads == 3


async def test_repaired_events_carry_the_stored_state(room: Room) -> None:
    """Edits and reactions become `MessageEdited` with the whole message, a deletion of a
    known message `MessageDeleted`, a message created and changed meanwhile one
    `NewMessage` in its latest state (a tombstone if deleted); its superseded versions
    are skipped."""
    room.connect("a")
    known = [room.store.send(ROOM, f"known {n}") for n in range(3)]
    room.publish(*known)
    m1, m2, m3 = (json.loads(e.payload)["message"]["id"] for e in known)
    room.store.edit(m1, "edited")                               # v4
    room.store.react(m2, "user-b", "👍")                        # v5
    room.store.delete(m3, "user-c")                             # v6
    fresh = json.loads(room.store.send(ROOM, "fresh").payload)["message"]["id"]    # v7
    gone = json.loads(room.store.send(ROOM, "gone").payload)["message"]["id"]      # v8
    room.store.delete(gone, "sender")                           # v9
    room.store.edit(fresh, "fresh, edited")                     # v10
    room.bus.resume()
    await until(lambda: len(room.received("a")) == 8, "the repair delivered")
    await settle()
    assert room.received("a")[3:] == [
        ("MessageEdited", m1, 4), ("MessageEdited", m2, 5), ("MessageDeleted", m3, 6),
        ("NewMessage", gone, 9), ("NewMessage", fresh, 10)]
    edited, reacted, deleted, tombstone, new = room.frames("a")[3:]
    assert edited["message"]["content"] == "edited"
    assert reacted["message"]["reactions"] == [
        {"emoji": "👍", "count": 1, "user_ids": ["user-b"]}]
    assert deleted["deleted_by"] == "user-c"
    assert tombstone["message"]["content"] == ""
    assert tombstone["message"]["deleted_at"] is not None
    assert new["message"]["content"] == "fresh, edited"


async def test_a_failed_repair_gives_the_gap_up(room: Room) -> None:
    """When the store cannot be read the gap is given up as without a repair (clients
    sync), once: no retry loop."""
    room.connect("a")
    first, _, third = (room.store.send(ROOM, f"m{n}") for n in range(3))
    room.store.fail_reads = True
    room.publish(first, third)
    await until(lambda: len(room.received("a")) == 2, "the gap was given up")
    await settle(HOLD * 4)
    assert room.received("a") == keys(first, third)
    assert room.hub.repair_stats.failed == 1
    assert room.store.change_reads == 1


async def test_events_before_the_join_s_answer_wait_for_it(room: Room) -> None:
    """The join's version is the baseline: events at or below it (the client reads them
    from history) are dropped, the next ones delivered as soon as it is known."""
    room.connect("a", answer=False)
    old, new = (room.store.send(ROOM, f"m{n}") for n in range(2))
    room.publish(new, old)
    await settle()
    assert room.received("a") == []
    room.hub.joined_at(ROOM, 1)
    await settle()
    assert room.received("a") == keys(new)


async def test_leaving_during_a_repair_ends_it_quietly(room: Room) -> None:
    """A repair whose conversation lost its last local subscriber delivers nothing."""
    a = room.connect("a")
    room.store.send(ROOM, "lost")
    room.store.hold_reads()
    room.bus.resume()
    await settle()
    room.hub.leave(a, ROOM)
    room.store.release_reads()
    await settle(0.05)
    assert room.received("a") == []
    assert room.hub.repair_stats.failed == 0
