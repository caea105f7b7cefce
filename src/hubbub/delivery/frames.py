"""Server-side WebSocket framing (RFC 6455 §5.2), done once per event, not per recipient.

Server frames are never masked and compression stays off, so a frame is context-free and
the same bytes can be written to every subscriber's socket.
"""

from __future__ import annotations

import struct

_TEXT = 0x81  # FIN + opcode 1 (text)
_PING = 0x89  # FIN + opcode 9 (ping)


def text_frame(payload: bytes) -> bytes:
    """One complete, unmasked text frame carrying `payload` (UTF-8 JSON)."""
    length = len(payload)
    if length < 126:
        return bytes((_TEXT, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", _TEXT, 126, length) + payload
    return struct.pack("!BBQ", _TEXT, 127, length) + payload


def ping_frame(payload: bytes = b"") -> bytes:
    """A ping control frame (payload at most 125 bytes, RFC 6455 §5.5)."""
    return bytes((_PING, len(payload))) + payload


def pong_frame(payload: bytes) -> bytes:
    """A pong answering a ping with the same application data."""
    return bytes((0x8A, len(payload))) + payload[:125]


def close_frame(code: int, reason: str = "") -> bytes:
    """A close control frame with a code of PROTOCOL.md §1 and a reason cut to fit 125 bytes."""
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return bytes((0x88, len(payload))) + payload
