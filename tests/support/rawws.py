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


class RawClient:
    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self._buffer = bytearray(leftover)
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, port: int, target: str, *, receive_buffer: int | None = None,
                      within: float = 5.0, source: str | None = None) -> RawClient:
        """Open `ws://127.0.0.1:{port}{target}` and complete the upgrade (101 or AssertionError).

        `receive_buffer` shrinks the kernel's receive buffer before connecting, so that a
        client that stops reading fills up after a few KiB rather than several MiB.
        `source` is the local address to connect from (any of 127.0.0.0/8 on Linux), for a
        client the server should tell apart from the others by IP.
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
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await loop.sock_sendall(sock, request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), within)
            assert chunk, "connection closed during the handshake"
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status, status
        return cls(sock, rest)

    async def send_frame(self, opcode: int, payload: bytes) -> None:
        """One final, masked frame (RFC 6455 §5.3: every client frame is masked)."""
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self._loop.sock_sendall(self.sock, header + mask + masked)

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
