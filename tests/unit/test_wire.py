"""Client frames read off the bytes (transport/websocket/wire.py): reassembly, the size
bound refused from a frame's header, and every framing rule a peer can break."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest

from hubbub.transport.websocket.wire import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FrameReader,
    Violation,
    close_payload,
    unmask,
)
from tests.support.rawws import client_frame

MAX = 1024


def frame(opcode: int, payload: bytes, **options: Any) -> bytes:
    return client_frame(opcode, payload, **options)


def read(data: bytes, reader: FrameReader | None = None) -> list[tuple[int, bytes | str]]:
    return list((reader or FrameReader(MAX)).feed(data))


def violation(data: bytes, reader: FrameReader | None = None) -> Violation:
    with pytest.raises(Violation) as caught:
        read(data, reader)
    return caught.value


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 1000, 70_000])
def test_unmask_is_the_bytewise_xor(size: int) -> None:
    payload, key = os.urandom(size), os.urandom(4)
    assert unmask(payload, key) == bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_text_and_binary_messages_come_whole() -> None:
    data = frame(TEXT, "héllo".encode()) + frame(BINARY, b"\x00\x01")
    assert read(data) == [(TEXT, "héllo"), (BINARY, b"\x00\x01")]


@pytest.mark.parametrize("size", [125, 126, 65535, 65536])
def test_each_length_encoding_is_read(size: int) -> None:
    """7-bit, 16-bit and 64-bit lengths, at their edges."""
    payload = b"x" * size
    assert read(frame(TEXT, payload), FrameReader(size)) == [(TEXT, payload.decode())]


def test_bytes_split_anywhere_give_the_same_messages() -> None:
    """A frame arriving a byte at a time waits for its rest, then comes once."""
    data = frame(TEXT, b"a" * 300) + frame(PING, b"hb") + frame(TEXT, b"b")
    reader = FrameReader(MAX)
    got = [message for byte in range(len(data)) for message in reader.feed(data[byte:byte + 1])]
    assert got == [(TEXT, "a" * 300), (PING, b"hb"), (TEXT, "b")]


def test_fragments_join_into_one_message_with_control_frames_between() -> None:
    data = (frame(TEXT, b"he", fin=False) + frame(PING, b"p")
            + frame(CONTINUATION, b"ll", fin=False) + frame(CONTINUATION, b"o"))
    assert read(data) == [(PING, b"p"), (TEXT, "hello")]


def test_a_multibyte_character_split_between_fragments_is_whole() -> None:
    encoded = "é".encode()
    data = frame(TEXT, encoded[:1], fin=False) + frame(CONTINUATION, encoded[1:])
    assert read(data) == [(TEXT, "é")]


def test_control_frames_pass_through() -> None:
    data = frame(PING, b"1") + frame(PONG, b"2") + frame(CLOSE, struct.pack("!H", 1000))
    assert read(data) == [(PING, b"1"), (PONG, b"2"), (CLOSE, b"\x03\xe8")]


def test_a_frame_at_the_bound_is_read() -> None:
    assert read(frame(TEXT, b"x" * MAX)) == [(TEXT, "x" * MAX)]


def test_a_frame_over_the_bound_is_refused_from_its_header() -> None:
    """1009 before any payload arrives: the declared length is enough."""
    header_only = struct.pack("!BBH", 0x81, 0x80 | 126, MAX + 1)
    assert violation(header_only).code == 1009


def test_a_declared_length_of_exabytes_is_refused_cheaply() -> None:
    assert violation(struct.pack("!BBQ", 0x81, 0x80 | 127, 2**63)).code == 1009


def test_fragments_over_the_bound_together_are_refused() -> None:
    reader = FrameReader(MAX)
    assert read(frame(TEXT, b"x" * 600, fin=False), reader) == []
    assert violation(frame(CONTINUATION, b"x" * 600), reader).code == 1009


@pytest.mark.parametrize(("data", "code"), [
    (frame(TEXT, b"hi", masked=False), 1002),
    (frame(TEXT, b"hi", rsv=0x40), 1002),  # a compressed frame: no extension was agreed
    (frame(0x3, b"hi"), 1002),  # a reserved data opcode
    (frame(0xB, b"hi"), 1002),  # a reserved control opcode
    (frame(CONTINUATION, b"hi"), 1002),  # nothing to continue
    (frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002),  # a new message inside one
    (frame(PING, b"p", fin=False), 1002),  # a fragmented control frame
    (frame(PING, b"p" * 126), 1002),  # a control frame over 125 bytes
    (frame(TEXT, b"\xff\xfe"), 1007),
    (frame(TEXT, b"\xc3", fin=False) + frame(CONTINUATION, b"("), 1007),
])
def test_broken_framing_is_a_violation_with_its_close_code(data: bytes, code: int) -> None:
    assert violation(data).code == code


def test_messages_before_a_violation_are_read() -> None:
    messages = FrameReader(MAX).feed(frame(TEXT, b"ok") + frame(TEXT, b"no", masked=False))
    assert next(messages) == (TEXT, "ok")
    with pytest.raises(Violation):
        next(messages)


def test_a_close_frame_gives_its_code_and_reason() -> None:
    assert close_payload(b"") == (None, "")
    assert close_payload(struct.pack("!H", 1000) + b"bye") == (1000, "bye")
    assert close_payload(struct.pack("!H", 4321)) == (4321, "")


@pytest.mark.parametrize(("payload", "code"), [
    (b"\x03", 1002),  # half a code
    (struct.pack("!H", 1005), 1002),  # a code that is never sent
    (struct.pack("!H", 999), 1002),
    (struct.pack("!H", 5000), 1002),
    (struct.pack("!H", 1000) + b"\xff", 1007),
])
def test_a_broken_close_frame_is_a_violation(payload: bytes, code: int) -> None:
    with pytest.raises(Violation) as caught:
        close_payload(payload)
    assert caught.value.code == code
