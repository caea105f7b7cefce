"""The hub: which local connections get which bus topics, and the fan-out itself.

On an event the hub frames the payload once and pushes the same bytes to each recipient's
Outbox; per recipient there is one comparison and one list append. The events that follow
in the same tick for the same recipients (a group commit's messages arrive together) are
appended to that first event's `Chunk` instead, which costs nothing per recipient — in a
100-member room that loop was the largest item of the server's own code (outbox.py has the
rule that keeps each connection's order). Bus topics are subscribed while at least one
local connection needs them and unsubscribed after.

Change events (those with a `version`) pass a `VersionGate` per conversation first, so they
reach connections in version order even when instances' publishes cross on the bus
(delivery/ordering.py explains the rule). With a `ChangeSource` the hub also repairs what
the bus lost, from the store, in the same order (delivery/repair.py has the triggers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import msgspec

from hubbub.bus.base import Bus
from hubbub.bus.envelope import (
    ControlEvent,
    Envelope,
    UserDisconnected,
    control_decoder,
    envelope_decoder,
)
from hubbub.bus.topics import (
    CONTROL,
    CONVERSATION,
    USER,
    conversation_topic,
    parse_topic,
    user_topic,
)
from hubbub.delivery.connection import Connection
from hubbub.delivery.frames import text_frame
from hubbub.delivery.inbox import NEW_MESSAGE, SUMMARY_INTERVAL_S, USER_KINDS, Inbox
from hubbub.delivery.ordering import OrderStats, VersionGate
from hubbub.delivery.outbox import Chunk, Flusher
from hubbub.delivery.repair import CHECK_INTERVAL_S, ChangeSource, RepairStats
from hubbub.delivery.repairs import Repairs
from hubbub.domain.inbox import InboxEntry

DeliveryCounter = Callable[[str, int], None]
ControlListener = Callable[[ControlEvent], None]
DisconnectListener = Callable[[UserDisconnected], None]


class _OpenChunk:
    """The last broadcast: more events for the same recipients may join its chunk while
    the Flusher's epoch is still the one recorded here."""

    __slots__ = ("chunk", "delivered", "epoch", "excluded", "recipients")

    def __init__(self, chunk: Chunk, recipients: Collection[Connection], excluded: str | None,
                 delivered: int, epoch: int) -> None:
        self.chunk = chunk
        self.recipients = recipients
        self.excluded = excluded
        self.delivered = delivered
        self.epoch = epoch


# How long an early change event waits for the versions before it. Crossed publishes of two
# instances arrive a few milliseconds apart (docs/ARCHITECTURE.md has the measurement); a
# quarter second also covers a busy event loop, and is paid only when an event was really
# lost, which a repair from the store then fills (or, without one, the client's sync).
REORDER_HOLD_S = 0.25


class Hub:
    """Local subscriptions of this instance and delivery of bus events to them."""

    def __init__(self, bus: Bus, count_deliveries: DeliveryCounter,
                 reorder_hold: float = REORDER_HOLD_S, changes: ChangeSource | None = None,
                 check_interval: float = CHECK_INTERVAL_S,
                 summary_interval: float = SUMMARY_INTERVAL_S) -> None:
        self._bus = bus
        self._count = count_deliveries
        self._by_conversation: dict[str, set[Connection]] = {}
        # A tuple per user, replaced on change: users have a few connections each, and a
        # 1-tuple costs 56 bytes where a set costs 216.
        self._by_user: dict[str, tuple[Connection, ...]] = {}
        self._control_listeners: list[ControlListener] = []
        self._disconnect_listeners: list[DisconnectListener] = []
        self._hold = reorder_hold
        self._gates: dict[str, VersionGate[Envelope]] = {}
        # Each gate's timer with the deadline it was armed for: uvloop's `call_at` returns
        # a plain Handle, without `when()`, for a deadline already passed.
        self._timers: dict[str, tuple[float, asyncio.Handle]] = {}
        self.order_stats = OrderStats()
        # Repairs from the store (delivery/repair.py), only with a ChangeSource.
        self.repair_stats = RepairStats()
        self._repairs = None if changes is None else Repairs(
            changes, self._gates, self._by_conversation, self._deliver, self._arm,
            self.repair_stats, reorder_hold, check_interval)
        # The outboxes' Flusher (one per loop, known from the first connection) and the
        # last broadcast, which any change of subscriptions closes.
        self._flusher: Flusher | None = None
        self._open: _OpenChunk | None = None
        # Every local user's conversations, joined or not (delivery/inbox.py).
        self.inbox = Inbox(self._send_summary, self._watch_topic, self._unwatch_topic,
                           summary_interval)

    def connections_of(self, user_id: str) -> tuple[Connection, ...]:
        return self._by_user.get(user_id, ())

    @property
    def users_online(self) -> int:
        """Distinct users with a connection on this instance (for /metrics)."""
        return len(self._by_user)

    def add_control_listener(self, listener: ControlListener) -> None:
        self._control_listeners.append(listener)

    def add_disconnect_listener(self, listener: DisconnectListener) -> None:
        """Called on every instance when a user's connections must close everywhere."""
        self._disconnect_listeners.append(listener)

    def start(self) -> None:
        self._bus.subscribe(CONTROL)
        self._bus.on_resumed(self._on_bus_resumed)
        if self._repairs is not None:
            self._repairs.start()

    async def close(self) -> None:
        """Stop the version check and the repairs running (before the store closes)."""
        if self._repairs is not None:
            await self._repairs.close()
        self.inbox.close_timers()

    async def conversation_ready(self, conversation_id: str) -> None:
        """Return once the bus carries the conversation's events to this instance, so that a
        JoinConversation confirmed is a subscription in effect on every instance."""
        await self._bus.ready(conversation_topic(conversation_id))

    async def user_ready(self, user_id: str) -> None:
        """Return once the bus carries events for the user's connections to this instance."""
        await self._bus.ready(user_topic(user_id))

    def add(self, connection: Connection) -> bool:
        """Register a new connection; True when it is the user's first on this instance."""
        self._open = None
        if self._flusher is None:
            self._flusher = connection.outbox.flusher
        conns = self._by_user.get(connection.user_id)
        if conns is None:
            self._by_user[connection.user_id] = (connection,)
            self._bus.subscribe(user_topic(connection.user_id))
            return True
        if connection not in conns:
            conns = self._by_user[connection.user_id] = (*conns, connection)
        return len(conns) == 1

    def remove(self, connection: Connection) -> bool:
        """Forget a closed connection; True when it was the user's last on this instance."""
        self._open = None
        for conversation_id in list(connection.conversations):
            self.leave(connection, conversation_id)
        conns = self._by_user.get(connection.user_id)
        if conns is None:
            return False
        conns = tuple(c for c in conns if c is not connection)
        if conns:
            self._by_user[connection.user_id] = conns
            return False
        del self._by_user[connection.user_id]
        self._bus.unsubscribe(user_topic(connection.user_id))
        self.inbox.close(connection.user_id)
        return True

    async def open_inbox(self, user_id: str, entries: list[InboxEntry]) -> None:
        """Count the user's conversations here from `entries` (read after its first
        connection was added, so no user event is missed), while it has connections;
        return once the bus carries their events here (as `conversation_ready`)."""
        if user_id in self._by_user:
            self.inbox.open(user_id, entries)
            await asyncio.gather(*(self._bus.ready(conversation_topic(e.conversation_id))
                                   for e in entries))

    def join(self, connection: Connection, conversation_id: str) -> None:
        """Subscribe a connection to a conversation's events."""
        if connection.outbox.closed:
            # A JoinConversation that finished after its connection closed: subscribing now
            # would keep the dead connection (and the bus topic) forever.
            return
        self._open = None
        subscribers = self._by_conversation.get(conversation_id)
        if subscribers is None:
            subscribers = self._by_conversation[conversation_id] = set()
            self._bus.subscribe(conversation_topic(conversation_id))
            if self._repairs is not None:
                # Events wait for `joined_at` (at most the hold): a repair needs to know
                # what the subscribers hold, even if no event ever comes.
                self._gates[conversation_id] = VersionGate(self._hold, self.order_stats,
                                                           wait_for_baseline=True)
        subscribers.add(connection)
        connection.subscribed(conversation_id)

    def joined_at(self, conversation_id: str, version: int) -> None:
        """A JoinConversation answered with the conversation at `version` (read once the
        subscription was in effect): the first such answer is the baseline of the
        conversation's gate, since the joining client reads everything up to it from
        history. Only with a repair wired; without one the first event sets the baseline."""
        gate = self._gates.get(conversation_id)
        if self._repairs is not None and gate is not None:
            self._start_gate(conversation_id, gate, version)

    def leave(self, connection: Connection, conversation_id: str) -> None:
        """Unsubscribe a connection from a conversation (idempotent)."""
        self._open = None
        connection.unsubscribed(conversation_id)
        subscribers = self._by_conversation.get(conversation_id)
        if subscribers is None:
            return
        subscribers.discard(connection)
        if not subscribers:
            del self._by_conversation[conversation_id]
            if not self.inbox.watches(conversation_id):
                self._bus.unsubscribe(conversation_topic(conversation_id))
            self._forget_order(conversation_id)
            if self._repairs is not None:
                self._repairs.forget(conversation_id)

    def drop_user(self, user_id: str, conversation_id: str) -> None:
        """Unsubscribe every local connection of a user who lost read access."""
        for connection in list(self._by_user.get(user_id, ())):
            self.leave(connection, conversation_id)

    def on_bus(self, topic: str, payload: bytes) -> None:
        """The bus handler: deliver one event to its local recipients."""
        kind, key = parse_topic(topic)
        if kind == CONVERSATION:
            recipients: Collection[Connection] | None = self._by_conversation.get(key)
            if not recipients and not self.inbox.watches(key):
                return
            envelope = envelope_decoder.decode(payload)
            if envelope.kind == NEW_MESSAGE:
                self.inbox.on_new_message(key, envelope.payload)
            if not recipients:
                return
            if envelope.version is not None:
                self._offer(key, envelope)
                return
        elif kind == USER:
            recipients = self._by_user.get(key)
            if not recipients:
                return
            envelope = envelope_decoder.decode(payload)
            if envelope.kind in USER_KINDS:
                self.inbox.on_user_event(key, envelope.kind, envelope.payload)
        else:
            if kind == CONTROL:
                self._on_control(payload)
            return
        self._deliver(recipients, envelope)

    def _send_summary(self, user_id: str, payload: bytes) -> None:
        recipients = self._by_user.get(user_id)
        if recipients:
            self._deliver(recipients, Envelope("ConversationSummary", payload))

    def _watch_topic(self, conversation_id: str) -> None:
        self._bus.subscribe(conversation_topic(conversation_id))  # idempotent

    def _unwatch_topic(self, conversation_id: str) -> None:
        if conversation_id not in self._by_conversation:
            self._bus.unsubscribe(conversation_topic(conversation_id))

    def _deliver(self, recipients: Collection[Connection], envelope: Envelope) -> None:
        frame = text_frame(envelope.payload)
        if envelope.exclude_connection is not None or envelope.only_connection is not None:
            # Rare (call signalling to one user's devices): kept off the fan-out loop below.
            # A new set each time, so such an event neither extends a chunk (of the same
            # user's connections: it would reach the ones it is not for) nor is extended.
            recipients = _targeted(recipients, envelope)
        excluded = envelope.exclude_user
        flusher, last = self._flusher, self._open
        if (last is not None and flusher is not None and last.epoch == flusher.epoch
                and last.recipients is recipients and last.excluded == excluded):
            last.chunk.frames.append(frame)
            self._count(envelope.kind, last.delivered)
            return
        delivered = 0
        chunk = Chunk(frame)
        for connection in recipients:
            if connection.user_id != excluded:
                connection.outbox.push(chunk)
                delivered += 1
        self._count(envelope.kind, delivered)
        if flusher is not None:
            self._open = _OpenChunk(chunk, recipients, excluded, delivered, flusher.epoch)

    def _offer(self, conversation_id: str, envelope: Envelope) -> None:
        """Pass a change event through its conversation's gate (ordering.py)."""
        assert envelope.version is not None
        gate = self._gates.get(conversation_id)
        if gate is None:
            gate = self._gates[conversation_id] = VersionGate(self._hold, self.order_stats)
        loop = asyncio.get_running_loop()
        ready = gate.offer(envelope.version, envelope, loop.time())
        if ready:
            recipients = self._by_conversation[conversation_id]
            for event in ready:
                self._deliver(recipients, event)
        self._arm(conversation_id, gate)

    def _arm(self, conversation_id: str, gate: VersionGate[Envelope]) -> None:
        """Keep one timer per gate that holds events, due at the gate's deadline."""
        deadline = gate.deadline
        armed = self._timers.get(conversation_id)
        if armed is not None and (deadline is None or armed[0] != deadline):
            armed[1].cancel()
            del self._timers[conversation_id]
            armed = None
        if deadline is not None and armed is None:
            self._timers[conversation_id] = (deadline, asyncio.get_running_loop().call_at(
                deadline, self._expire, conversation_id
            ))

    def _expire(self, conversation_id: str) -> None:
        self._timers.pop(conversation_id, None)
        gate = self._gates.get(conversation_id)
        recipients = self._by_conversation.get(conversation_id)
        if gate is None or not recipients:
            return
        if self._repairs is not None and gate.next_version is not None:
            # Repair the gap instead of giving it up (a running repair re-arms when done).
            if gate.holding:
                self._repairs.repair(conversation_id, "gap")
            return
        for event in gate.expire(asyncio.get_running_loop().time()):
            self._deliver(recipients, event)
        self._arm(conversation_id, gate)

    def _start_gate(self, conversation_id: str, gate: VersionGate[Envelope],
                    version: int) -> None:
        recipients = self._by_conversation.get(conversation_id)
        for event in gate.start_at(version, asyncio.get_running_loop().time()):
            if recipients:
                self._deliver(recipients, event)
        self._arm(conversation_id, gate)

    def _forget_order(self, conversation_id: str) -> None:
        self._gates.pop(conversation_id, None)
        armed = self._timers.pop(conversation_id, None)
        if armed is not None:
            armed[1].cancel()

    def _on_bus_resumed(self) -> None:
        """After a bus outage every gap is a lost event. With a repair wired, every
        conversation with local subscribers whose stored version is ahead is repaired from
        the last version delivered there. Without one: deliver what is held and start the
        order afresh, instead of holding the first events after the outage."""
        if self._repairs is not None:
            self._repairs.after_outage()
            return
        now = asyncio.get_running_loop().time()
        for conversation_id, gate in list(self._gates.items()):
            recipients = self._by_conversation.get(conversation_id)
            for event in gate.drain(now):
                if recipients:
                    self._deliver(recipients, event)
            self._forget_order(conversation_id)

    def _on_control(self, payload: bytes) -> None:
        try:
            event = control_decoder.decode(payload)
        except msgspec.DecodeError:
            return
        if isinstance(event, UserDisconnected):
            for on_disconnect in self._disconnect_listeners:
                on_disconnect(event)
            return
        if event.role is None or event.role == "banned":
            self.drop_user(event.user_id, event.conversation_id)
        for listener in self._control_listeners:
            listener(event)


def _targeted(recipients: Collection[Connection], envelope: Envelope) -> set[Connection]:
    """The recipients an envelope aimed at one connection (or past one) leaves."""
    only, excluded = envelope.only_connection, envelope.exclude_connection
    if only is not None:
        return {c for c in recipients if c.id == only}
    return {c for c in recipients if c.id != excluded}
