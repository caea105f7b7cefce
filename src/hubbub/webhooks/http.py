"""POSTs to one webhook URL over kept-alive HTTP/1.1 connections, and nothing else.

aiohttp's client cost ~145 µs of CPU per request here, a third of a message's whole send
path, and the dispatcher makes one request per event; this exchange costs ~50 µs
(docs/DECISIONS.md, "Webhooks: a lean HTTP client"). It does only what a webhook sender
needs: `POST` with a body, the status of the answer, its body read and dropped (at most
`MAX_BODY` bytes, by `Content-Length`, chunks or the connection's end), connections kept
for reuse when both sides allow it, TLS for `https`. No redirects (a 3xx is a failure, as
Standard Webhooks senders do), no cookies, no proxies, no compression.

A kept connection the receiver closed meanwhile fails at once; such a request is sent
again once on a new connection (the receiver drops repeats by `webhook-id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

# The most of an answer's body read to keep its connection; a longer one closes it.
MAX_BODY = 64 * 1024
# Lines of a status line or header, and headers of an answer.
MAX_LINE = 8 * 1024
MAX_HEADERS = 100
_NO_BODY = frozenset({204, 304})
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x as this client reads it."""


class Poster:
    """Up to `keep` idle connections to the URL's origin."""

    def __init__(self, url: str, headers: Mapping[str, str], keep: int,
                 tls: ssl.SSLContext | None = None) -> None:
        """`tls`: what verifies an `https` receiver (default: the system's CAs)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        # Whatever the URL holds outside RFC 3986's characters is escaped, so the request
        # line stays one line (urlsplit has dropped line breaks already).
        target = quote(parts.path or "/", safe=_PATH_SAFE) + (
            f"?{quote(parts.query, safe=_PATH_SAFE + '?')}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]  # as written: a port, IPv6 brackets
        fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\n{fixed}".encode("latin-1")
        self._keep = keep
        self._idle: list[Connection] = []

    async def post(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Send `body` with `headers` (besides the fixed ones); the answer's status.

        Raises:
            OSError, asyncio.IncompleteReadError: the connection failed or closed early.
            ProtocolError: the answer is not readable HTTP/1.x.
        """
        request = self._request(body, headers)
        while self._idle:
            connection = self._idle.pop()
            try:
                return await self._exchange(connection, request)
            except (OSError, asyncio.IncompleteReadError):
                continue  # closed by the receiver while idle: a new connection next
        return await self._exchange(await self._open(), request)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _request(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return b"%s%sContent-Length: %d\r\n\r\n%s" % (
            self._head, extra.encode("latin-1"), len(body), body)

    async def _open(self) -> Connection:
        return await asyncio.open_connection(self._host, self._port, ssl=self._ssl,
                                             limit=MAX_LINE)

    async def _exchange(self, connection: Connection, request: bytes) -> int:
        reader, writer = connection
        kept = False
        try:
            writer.write(request)
            await writer.drain()
            status, kept = await _answer(reader)
        finally:
            if kept and len(self._idle) < self._keep:
                self._idle.append(connection)
            else:
                writer.close()
        return status


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer (after any 1xx): its status, and whether the connection may carry
    the next request."""
    while True:
        version, status = _status_line(await _line(reader))
        headers = await _headers(reader)
        if not 100 <= status < 200:
            break
    keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if status in _NO_BODY:
        return status, keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, keep and await _chunks(reader)
    length = headers.get("content-length")
    if length is None:  # the body runs to the connection's end
        return status, False
    if not length.strip().isdigit():
        raise ProtocolError("a Content-Length that is not a number")
    size = int(length)
    if size > MAX_BODY:
        return status, False
    await reader.readexactly(size)
    return status, keep


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError("a line longer than MAX_LINE") from None
    return line.rstrip(b"\r\n")


def _status_line(line: bytes) -> tuple[str, int]:
    version, _, rest = line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProtocolError("not an HTTP/1.x status line")
    return version, int(code)


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _line(reader)
        if not line:
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError("a header line without a colon")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    raise ProtocolError("more than MAX_HEADERS headers")


async def _chunks(reader: asyncio.StreamReader) -> bool:
    """Read and drop a chunked body; False when it was too long to keep reading."""
    total = 0
    while True:
        size_field = (await _line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise ProtocolError("a chunk size that is not hexadecimal") from None
        if size == 0:
            while await _line(reader):  # trailers
                pass
            return True
        total += size
        if total > MAX_BODY:
            return False
        await reader.readexactly(size + 2)
