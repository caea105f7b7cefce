"""The handshake read without aiohttp (transport/websocket/handshake.py): the heads it takes,
the ones it leaves to aiohttp, the `101` and the refusals it writes."""

from __future__ import annotations

import pytest

from hubbub.domain.errors import RateLimited
from hubbub.transport.http.bodies import error_for
from hubbub.transport.websocket.handshake import Head, accepted, parse_head, refused, upgrade_key

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example
UPGRADE = (f"GET /ws?token=abc HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\n"
           f"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
           "Sec-WebSocket-Version: 13\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")


def head(text: str = UPGRADE) -> Head | None:
    return parse_head(text.encode("latin-1"), "127.0.0.1")


def test_an_upgrade_head_is_read_as_aiohttp_would() -> None:
    parsed = head()
    assert parsed is not None
    assert (parsed.raw_path, parsed.path, parsed.remote) == ("/ws?token=abc", "/ws",
                                                             "127.0.0.1")
    assert parsed.headers["x-forwarded-for"] == "10.1.2.3"  # names without case
    assert upgrade_key(parsed) == KEY


def test_the_accept_value_is_rfc_6455s() -> None:
    answer = accepted(KEY)
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer
    assert answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("odd", [
    UPGRADE.replace("GET", "POST"),
    UPGRADE.replace("HTTP/1.1", "HTTP/1.0"),
    UPGRADE.replace("GET /ws", "GET  /ws"),
    UPGRADE.replace("/ws?token=abc", "http://chat.example/ws"),  # absolute form
    UPGRADE.replace("Host: chat.example", "Host : chat.example"),
    UPGRADE.replace("Host: chat.example", "Host: chat.example\r\n folded"),
    UPGRADE.replace("Host: chat.example", "Host: chat\x00example"),
    UPGRADE.replace("Host: chat.example", "Host: chat.example\r\nContent-Length: 5"),
    UPGRADE.replace("Host: chat.example", "Host: chat.example\r\nTransfer-Encoding: chunked"),
])
def test_any_other_head_is_left_to_aiohttp(odd: str) -> None:
    assert head(odd) is None


@pytest.mark.parametrize("broken", [
    UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"),
    UPGRADE.replace("keep-alive, Upgrade", "keep-alive"),
    UPGRADE.replace("Version: 13", "Version: 8"),
    UPGRADE.replace(KEY, "not base64!"),
    UPGRADE.replace(KEY, "c2hvcnQ="),  # 5 bytes, not 16
    UPGRADE.replace(f"Sec-WebSocket-Key: {KEY}\r\n", ""),
])
def test_a_head_without_a_valid_upgrade_has_no_key(broken: str) -> None:
    parsed = head(broken)
    assert parsed is not None
    assert upgrade_key(parsed) is None


def test_a_refusal_is_the_json_error_with_its_headers_and_a_close() -> None:
    raw = refused(error_for(RateLimited("too many handshakes", 1500)))
    status, _, rest = raw.partition(b"\r\n")
    head_lines, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head_lines.decode().split("\r\n"))
    assert status == b"HTTP/1.1 429 Too Many Requests"
    assert headers["Content-Type"] == "application/json"  # as aiohttp sends it
    assert headers["Retry-After"] == "2"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    assert body == b'{"error":{"code":"RATE_LIMITED","message":"too many handshakes"}}'
