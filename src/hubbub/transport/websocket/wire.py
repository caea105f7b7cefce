"""Client frames (RFC 6455 §5) read off a socket's bytes, with PROTOCOL.md §1's size bound.

Server frames are built in delivery/frames.py. A client's frames are always masked, never
compressed (no extension is negotiated), and a message may come in fragments; control
frames may come between them. What breaks the RFC is a `Violation` carrying the close code
to answer with: 1002 for the framing, 1007 for text that is not UTF-8, 1009 for a message
over `max_bytes`, refused from its header before its payload is buffered.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
_DATA = (TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)
_LENGTH_16 = struct.Struct("!H")
_LENGTH_64 = struct.Struct("!Q")
# Close codes a peer may send (RFC 6455 §7.4): the defined ones, and 3000–4999.
_PEER_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                               1013, 1014))


class Violation(Exception):
    """A peer broke the framing rules: close with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR `payload` with the repeated 4-byte `mask`, as one big-integer operation (a few
    microseconds for a 64 KiB frame, against milliseconds byte by byte)."""
    length = len(payload)
    if not length:
        return payload
    key = (mask * ((length >> 2) + 1))[:length]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(length, "little")


class FrameReader:
    """Reassembles one connection's messages from the bytes as they arrive.

    `feed` yields `(opcode, payload)` for each complete message (TEXT payloads are `str`)
    and control frame; bytes of an incomplete frame wait for the next call.
    """

    __slots__ = ("_fragments", "_kept", "_max_bytes", "_opcode", "_size")

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._kept = b""  # the start of a frame whose rest has not arrived
        self._opcode = CONTINUATION  # of the fragmented message under way, if any
        self._fragments: list[bytes] | None = None
        self._size = 0  # bytes of those fragments

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes | str]]:
        if self._kept:
            data = self._kept + data
            self._kept = b""
        end = len(data)
        at = 0
        while True:
            if end - at < 2:
                break
            first, second = data[at], data[at + 1]
            if first & 0x70:
                raise Violation(1002, "reserved bits set: no extension was negotiated")
            if not second & 0x80:
                raise Violation(1002, "client frames must be masked")
            opcode = first & 0x0F
            length = second & 0x7F
            start = at + 2
            if length == 126:
                if end - start < 2:
                    break
                length = _LENGTH_16.unpack_from(data, start)[0]
                start += 2
            elif length == 127:
                if end - start < 8:
                    break
                length = _LENGTH_64.unpack_from(data, start)[0]
                start += 8
            fin = first & 0x80
            self._check(opcode, fin, length)
            if end - start < 4 + length:
                break
            mask = data[start:start + 4]
            start += 4
            payload = unmask(data[start:start + length], mask)
            at = start + length
            message = self._message(opcode, fin, payload)
            if message is not None:
                yield message
        if at < end:
            self._kept = data[at:]

    def _check(self, opcode: int, fin: int, length: int) -> None:
        """Refuse a frame from its header, before any of its payload is kept."""
        if opcode in _CONTROL:
            if not fin or length > 125:
                raise Violation(1002, "control frames are unfragmented and at most 125 bytes")
            return
        if opcode in _DATA:
            if self._fragments is not None:
                raise Violation(1002, "a new message began inside a fragmented one")
        elif opcode != CONTINUATION:
            raise Violation(1002, f"unknown opcode {opcode}")
        elif self._fragments is None:
            raise Violation(1002, "a continuation frame outside a fragmented message")
        if self._size + length > self._max_bytes:
            raise Violation(1009, f"message larger than {self._max_bytes} bytes")

    def _message(self, opcode: int, fin: int, payload: bytes
                 ) -> tuple[int, bytes | str] | None:
        if opcode in _CONTROL:
            return opcode, payload
        if not fin:
            if self._fragments is None:
                self._fragments, self._opcode = [], opcode
            self._fragments.append(payload)
            self._size += len(payload)
            return None
        if self._fragments is not None:
            self._fragments.append(payload)
            payload, opcode = b"".join(self._fragments), self._opcode
            self._fragments, self._size = None, 0
        if opcode == BINARY:
            return BINARY, payload
        try:
            return TEXT, payload.decode()
        except UnicodeDecodeError:
            raise Violation(1007, "text frames must be UTF-8") from None


def close_payload(payload: bytes) -> tuple[int | None, str]:
    """The code and reason of a peer's close frame (RFC 6455 §5.5.1, §7.4)."""
    if not payload:
        return None, ""
    if len(payload) < 2:
        raise Violation(1002, "a close frame's code takes two bytes")
    code = _LENGTH_16.unpack_from(payload)[0]
    if code not in _PEER_CLOSE_CODES and not 3000 <= code <= 4999:
        raise Violation(1002, f"close code {code} may not be sent")
    try:
        return code, payload[2:].decode()
    except UnicodeDecodeError:
        raise Violation(1007, "a close reason must be UTF-8") from None
