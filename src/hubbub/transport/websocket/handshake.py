"""The WebSocket opening handshake (RFC 6455 §4) of a connection's first request, read and
answered without aiohttp's request machinery (docs/DECISIONS.md "The upgrade outside
aiohttp").

Only the plain shape is read here: `GET <target> HTTP/1.1`, `name: value` header lines, no
body. Anything else, however valid, is not ours to judge: `parse_head` returns None and the
connection goes to aiohttp as it arrived, which answers it as before (the `/ws` route there
serves the same upgrade, and refuses what HTTP refuses).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict, MultiMapping

# RFC 6455 §1.3: appended to the client's key before hashing it into the accept value.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# RFC 9110 §5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers that would give the request a body: never part of an upgrade we answer.
_BODY_HEADERS = ("Content-Length", "Transfer-Encoding")


@dataclass(frozen=True, slots=True)
class Head:
    """A request head as the checks before the upgrade read it (like aiohttp's Request)."""

    raw_path: str
    headers: MultiMapping[str]
    remote: str | None

    @property
    def path(self) -> str:
        return self.raw_path.partition("?")[0]


def parse_head(head: bytes, remote: str | None) -> Head | None:
    """The `GET` request in `head` (up to and including its blank line), or None for any
    other or unusual one."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    target = parts[1]
    if not target.startswith("/"):
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            return None  # also a folded line (a leading space): obsolete, aiohttp's to refuse
        value = value.strip(" \t")
        if _FORBIDDEN_IN_VALUE.search(value):
            return None
        headers.add(name, value)
    if any(name in headers for name in _BODY_HEADERS):
        return None
    return Head(target, headers, remote)


def upgrade_key(head: Head) -> str | None:
    """The client's `Sec-WebSocket-Key` when `head` asks for a version-13 upgrade."""
    headers = head.headers
    if "websocket" not in _tokens(headers.get("Upgrade", "")):
        return None
    if "upgrade" not in _tokens(headers.get("Connection", "")):
        return None
    if headers.get("Sec-WebSocket-Version") != "13":
        return None
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    return key


def accepted(key: str) -> bytes:
    """The `101 Switching Protocols` answering a handshake with `key`."""
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode()


def refused(response: web.Response) -> bytes:
    """`response` (a JSON error of PROTOCOL.md §7) as bytes to write before closing."""
    body = response.body
    assert isinstance(body, bytes)
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    content_type = response.content_type
    if response.charset:
        content_type += f"; charset={response.charset}"
    lines.append(f"Content-Type: {content_type}")
    lines.extend(f"{name}: {value}" for name, value in response.headers.items()
                 if name.lower() not in ("content-type", "content-length"))
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _tokens(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}
