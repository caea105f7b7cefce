"""Publishing events: encode a server message once and hand it to the bus after commit."""

from __future__ import annotations

from hubbub.bus.base import Bus
from hubbub.bus.envelope import Envelope, MembershipChanged, UserDisconnected, envelope_encoder
from hubbub.bus.topics import CONTROL, conversation_topic, user_topic
from hubbub.protocol.codec import encode
from hubbub.protocol.server import (
    MessageDeleted,
    MessageEdited,
    NewMessage,
    ReactionAdded,
    ReactionRemoved,
    ServerMessage,
    ThreadUpdated,
)


class Events:
    """The one way services announce changes. Call only after the change has committed."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def to_conversation(self, conversation_id: str, message: ServerMessage,
                        exclude_user: str | None = None) -> None:
        """To every connection subscribed to the conversation, on every instance."""
        self._bus.publish(conversation_topic(conversation_id), _wrap(message, exclude_user))

    def to_user(self, user_id: str, message: ServerMessage,
                exclude_connection: str | None = None,
                only_connection: str | None = None) -> None:
        """To every connection of one user, on every instance (but `exclude_connection`;
        or to `only_connection` of them alone, wherever it is)."""
        self._bus.publish(user_topic(user_id),
                          _wrap(message, None, exclude_connection, only_connection))

    def membership_changed(self, conversation_id: str, user_id: str, role: str | None) -> None:
        """Tell every instance to forget cached roles (and drop subscriptions on loss)."""
        self._bus.publish(CONTROL, envelope_encoder.encode(
            MembershipChanged(conversation_id, user_id, role)
        ))

    def disconnect_user(self, user_id: str, code: int, reason: str) -> None:
        """Tell every instance to close the user's connections with `code` (§1)."""
        self._bus.publish(CONTROL, envelope_encoder.encode(
            UserDisconnected(user_id, code, reason)
        ))


def change_version(message: ServerMessage) -> int | None:
    """The conversation version a change event carries (PROTOCOL.md §2); None for events
    that are not changes of a message (typing, receipts, presence, joins)."""
    match message:
        case NewMessage() | MessageEdited():
            return message.message.version
        case MessageDeleted() | ReactionAdded() | ReactionRemoved() | ThreadUpdated():
            return message.version
        case _:
            return None


def envelope_of(message: ServerMessage, exclude_user: str | None = None,
                exclude_connection: str | None = None,
                only_connection: str | None = None) -> Envelope:
    """The bus form of a server message: encoded once, with its type and version."""
    kind = type(message).__struct_config__.tag
    return Envelope(str(kind), encode(message), exclude_user, change_version(message),
                    exclude_connection, only_connection)


def _wrap(message: ServerMessage, exclude_user: str | None,
          exclude_connection: str | None = None, only_connection: str | None = None) -> bytes:
    return envelope_encoder.encode(envelope_of(message, exclude_user, exclude_connection,
                                               only_connection))
