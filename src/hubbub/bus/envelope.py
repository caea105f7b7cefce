"""What travels on the bus: a server message already encoded, plus who should not get it.

The payload stays raw JSON from publisher to socket, so each instance only frames it once.
The topics it travels on are named in bus/topics.py.
"""

from __future__ import annotations

import msgspec


class Envelope(msgspec.Struct, frozen=True, array_like=True):
    """`kind`: the server message type (for metrics); `exclude_user`: skip that user's
    connections (e.g. a typist does not hear its own typing); `version`: the conversation
    version of a change event (PROTOCOL.md §2), by which every instance's hub restores
    version order — None for events outside that order (typing, receipts, presence);
    `exclude_connection`: skip that one connection (a callee's device that answered does
    not hear `answered_elsewhere`); `only_connection`: deliver to that one connection alone
    (the caller's signalling on an answered call reaches the device that answered)."""

    kind: str
    payload: bytes
    exclude_user: str | None = None
    version: int | None = None
    exclude_connection: str | None = None
    only_connection: str | None = None


class MembershipChanged(msgspec.Struct, frozen=True, array_like=True, tag=True):
    """A role changed (None: the membership ended). Caches drop it; banned or removed users
    lose their subscription to the conversation."""

    conversation_id: str
    user_id: str
    role: str | None


class UserDisconnected(msgspec.Struct, frozen=True, array_like=True, tag=True):
    """Close every connection of the user on every instance with `code` (the server API's
    disconnect and erasure: PROTOCOL.md §1). An instance that does not know this event
    drops it (its decoder fails), so a rolling upgrade breaks nothing."""

    user_id: str
    code: int
    reason: str


# What membership listeners get; a control message is one of `AnyControl`.
ControlEvent = MembershipChanged
AnyControl = MembershipChanged | UserDisconnected

envelope_encoder = msgspec.msgpack.Encoder()
envelope_decoder = msgspec.msgpack.Decoder(Envelope)
control_decoder = msgspec.msgpack.Decoder(AnyControl)
