"""A WebSocket client on a bare socket, for peers that misbehave on purpose.

It reads only when asked, so a test can play a client that stops reading (slow consumer) or
never answers pings (a half-open peer). Frames follow RFC 6455 §5: masked from the client,
unmasked from the server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass

CLOSE = 0x8
PING = 0x9
PONG = 0xA
TEXT = 0x1
BINARY = 0x2


@dataclass
class Frame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        code: int = struct.unpack("!H", self.payload[:2])[0]
        return code


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True,
                 rsv: int = 0) -> bytes:
    """One frame as a client writes it: masked (RFC 6455 §5.3), unless told otherwise;
    `rsv` sets reserved bits (an extension's)."""
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def http_response(sock: socket.socket, within: float, received: bytes = b"", *,
                        body: bool = True) -> tuple[bytes, bytes, bytes]:
    """Read one HTTP response off `sock`: its status line, its body (by `Content-Length`;
    none when `body` is False) and whatever bytes came after it."""
    loop = asyncio.get_running_loop()
    while b"\r\n\r\n" not in received:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), within)
        assert chunk, "connection closed before a response"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    length = 0
    for line in lines if body else ():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), within)
        assert chunk, "connection closed inside a body"
        rest += chunk
    return status, rest[:length], rest[length:]


class RawClient:
    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self._buffer = bytearray(leftover)
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, port: int, target: str, *, receive_buffer: int | None = None,
                      within: float = 5.0, source: str | None = None,
                      before: bytes = b"", piece: int | None = None, after: bytes = b"",
                      extra_headers: str = "") -> RawClient:
        """Open `ws://127.0.0.1:{port}{target}` and complete the upgrade (101 or AssertionError).

        `receive_buffer` shrinks the kernel's receive buffer before connecting, so that a
        client that stops reading fills up after a few KiB rather than several MiB.
        `source` is the local address to connect from (any of 127.0.0.0/8 on Linux), for a
        client the server should tell apart from the others by IP.
        `before` is a whole HTTP request sent (and its response read) on the same connection
        first; `piece` sends the handshake in pieces of that many bytes; `after` is sent
        right behind the handshake, before its answer (frames a client pipelines).
        """
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if source is not None:
            sock.bind((source, 0))
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), within)
        except BaseException:
            sock.close()
            raise
        leftover = b""
        if before:
            await loop.sock_sendall(sock, before)
            status, _, leftover = await http_response(sock, within)
            assert b" 200 " in status, status
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"{extra_headers}\r\n").encode()
        if piece is None:
            await loop.sock_sendall(sock, request + after)
        else:
            for at in range(0, len(request), piece):
                await loop.sock_sendall(sock, request[at:at + piece])
                await asyncio.sleep(0.001)
            await loop.sock_sendall(sock, after)
        status, _, rest = await http_response(sock, within, leftover, body=False)
        assert b" 101 " in status, status
        return cls(sock, rest)

    async def send_frame(self, opcode: int, payload: bytes) -> None:
        """One final, masked frame (RFC 6455 §5.3: every client frame is masked)."""
        await self._loop.sock_sendall(self.sock, client_frame(opcode, payload))

    async def send_raw(self, data: bytes) -> None:
        await self._loop.sock_sendall(self.sock, data)

    async def send_text(self, text: str) -> None:
        await self.send_frame(TEXT, text.encode())

    async def recv_frame(self, within: float = 5.0) -> Frame | None:
        """The next server frame, or None when the connection ended."""
        header = await self._read(2, within)
        if header is None:
            return None
        opcode, length = header[0] & 0x0F, header[1] & 0x7F
        if length == 126:
            extended = await self._read(2, within)
            assert extended is not None
            length = struct.unpack("!H", extended)[0]
        elif length == 127:
            extended = await self._read(8, within)
            assert extended is not None
            length = struct.unpack("!Q", extended)[0]
        payload = await self._read(length, within) if length else b""
        assert payload is not None, "connection ended inside a frame"
        return Frame(opcode, payload)

    async def frames_until_close(self, within: float = 5.0) -> list[Frame]:
        """Read everything up to and including the close frame (or the end of the stream)."""
        frames: list[Frame] = []
        while True:
            frame = await self.recv_frame(within)
            if frame is None:
                return frames
            frames.append(frame)
            if frame.opcode == CLOSE:
                return frames

    async def at_eof(self, within: float = 5.0) -> bool:
        """Whether the server has closed the TCP connection (reading and dropping data)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536),
                                               deadline - loop.time())
            except TimeoutError:
                return False
            except ConnectionError:
                return True
            if not chunk:
                return True
        return False

    def close(self) -> None:
        self.sock.close()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def _read(self, n: int, within: float) -> bytes | None:
        while len(self._buffer) < n:
            try:
                chunk = await asyncio.wait_for(self._loop.sock_recv(self.sock, 65536), within)
            except ConnectionError:
                chunk = b""
            if not chunk:
                return None
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data
