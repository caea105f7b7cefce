"""The hub: which local connections get which bus topics, and the fan-out itself.

On an event the hub frames the payload once and pushes the same bytes to each recipient's
Outbox; per recipient there is one comparison and one list append. Bus topics are
subscribed while at least one local connection needs them and unsubscribed after.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from hubbub.bus.base import Bus
from hubbub.bus.envelope import (
    CONTROL,
    ControlEvent,
    control_decoder,
    conversation_topic,
    envelope_decoder,
    user_topic,
)
from hubbub.transport.connection import Connection
from hubbub.transport.frames import text_frame

DeliveryCounter = Callable[[str, int], None]
ControlListener = Callable[[ControlEvent], None]


class Hub:
    """Local subscriptions of this instance and delivery of bus events to them."""

    def __init__(self, bus: Bus, count_deliveries: DeliveryCounter) -> None:
        self._bus = bus
        self._count = count_deliveries
        self._by_conversation: dict[str, set[Connection]] = {}
        self._by_user: dict[str, set[Connection]] = {}
        self._control_listeners: list[ControlListener] = []

    @property
    def connection_count(self) -> int:
        return sum(len(conns) for conns in self._by_user.values())

    def user_is_local(self, user_id: str) -> bool:
        return user_id in self._by_user

    def connections_of(self, user_id: str) -> set[Connection]:
        return self._by_user.get(user_id, set())

    def add_control_listener(self, listener: ControlListener) -> None:
        self._control_listeners.append(listener)

    def start(self) -> None:
        self._bus.subscribe(CONTROL)

    def add(self, connection: Connection) -> bool:
        """Register a new connection; True when it is the user's first on this instance."""
        conns = self._by_user.get(connection.user_id)
        if conns is None:
            conns = self._by_user[connection.user_id] = set()
            self._bus.subscribe(user_topic(connection.user_id))
        conns.add(connection)
        return len(conns) == 1

    def remove(self, connection: Connection) -> bool:
        """Forget a closed connection; True when it was the user's last on this instance."""
        for conversation_id in list(connection.conversations):
            self.leave(connection, conversation_id)
        conns = self._by_user.get(connection.user_id)
        if conns is None:
            return False
        conns.discard(connection)
        if conns:
            return False
        del self._by_user[connection.user_id]
        self._bus.unsubscribe(user_topic(connection.user_id))
        return True

    def join(self, connection: Connection, conversation_id: str) -> None:
        """Subscribe a connection to a conversation's events."""
        subscribers = self._by_conversation.get(conversation_id)
        if subscribers is None:
            subscribers = self._by_conversation[conversation_id] = set()
            self._bus.subscribe(conversation_topic(conversation_id))
        subscribers.add(connection)
        connection.conversations.add(conversation_id)

    def leave(self, connection: Connection, conversation_id: str) -> None:
        """Unsubscribe a connection from a conversation (idempotent)."""
        connection.conversations.discard(conversation_id)
        subscribers = self._by_conversation.get(conversation_id)
        if subscribers is None:
            return
        subscribers.discard(connection)
        if not subscribers:
            del self._by_conversation[conversation_id]
            self._bus.unsubscribe(conversation_topic(conversation_id))

    def drop_user(self, user_id: str, conversation_id: str) -> None:
        """Unsubscribe every local connection of a user who lost read access."""
        for connection in list(self._by_user.get(user_id, ())):
            self.leave(connection, conversation_id)

    def on_bus(self, topic: str, payload: bytes) -> None:
        """The bus handler: deliver one event to its local recipients."""
        if topic == CONTROL:
            self._on_control(payload)
            return
        if topic.startswith("conv."):
            recipients = self._by_conversation.get(topic[5:])
        else:
            recipients = self._by_user.get(topic[5:])
        if not recipients:
            return
        envelope = envelope_decoder.decode(payload)
        frame = text_frame(envelope.payload)
        excluded = envelope.exclude_user
        delivered = 0
        for connection in recipients:
            if connection.user_id != excluded:
                connection.outbox.push(frame)
                delivered += 1
        self._count(envelope.kind, delivered)

    def _on_control(self, payload: bytes) -> None:
        try:
            event = control_decoder.decode(payload)
        except msgspec.DecodeError:
            return
        if event.role is None or event.role == "banned":
            self.drop_user(event.user_id, event.conversation_id)
        for listener in self._control_listeners:
            listener(event)
