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


ControlEvent = MembershipChanged

envelope_encoder = msgspec.msgpack.Encoder()
envelope_decoder = msgspec.msgpack.Decoder(Envelope)
control_decoder = msgspec.msgpack.Decoder(ControlEvent)
