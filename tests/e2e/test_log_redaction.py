"""No log line, at any level and from any library, holds a token, a ticket or message content.

A real `hubbub serve` process logs at debug level, with access logs on, while it gets
hostile request lines that carry a real token (raw UTF-8, a space, a control character, a
bad version, an oversized header, a token as the method) and normal traffic with message
content. Then everything it printed, stdout and stderr, is searched for the secrets.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT
from tests.support.process import ServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def exchange(port: int, raw: bytes) -> bytes:
    """Send raw bytes as one HTTP request and read whatever comes back until the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
        await writer.wait_closed()


def hostile_requests(token: str, ticket: str) -> list[bytes]:
    """Request lines aiohttp's parser refuses, each with a credential in it."""
    tok, tic = token.encode(), ticket.encode()
    host = b"Host: 127.0.0.1\r\n"
    return [
        b"GET /ws?token=" + tok + "é".encode() + b" HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /ws?token=" + tok + b" two words HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /ws?token=" + tok + b"\x01\x7f HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /ws?token=" + tok + b" HTTP/9.9\r\n" + host + b"\r\n",
        b"GET /ws?ticket=" + tic + b"\x00 HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /api/v1/users/me HTTP/1.1\r\n" + host + b"Authorization: Bearer " + tok
        + b"\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /api/v1/users/me HTTP/1.1\r\n" + host + b"Authorization: Bearer " + tok
        + b"\x01\r\n\r\n",
        b"GET /api/v1/users/me HTTP/1.1\r\n" + host + b"X-Long: " + tok + b"b" * 9000
        + b"\r\n\r\n",
        tok + b" / HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /ws?token=" + tok + b" HTTP/1.1\r\nConnection: close\r\nHost: \xff" + tok
        + b"\r\n\r\n",
    ]


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_nothing_secret_reaches_any_log_line(backend: Backend, tmp_path: Path,
                                                   log_format: str) -> None:
    env = {"HUBBUB_LOG_LEVEL": "debug", "HUBBUB_LOG_FORMAT": log_format,
           "HUBBUB_ACCESS_LOG": "on"}
    if backend.redis_url:
        env |= {"HUBBUB_REDIS_URL": backend.redis_url, "HUBBUB_REDIS_PREFIX": backend.redis_prefix}
    server = ServerProcess(backend.database_url, tmp_path, extra_env=env)
    await server.start()
    alice = server.user("alice")
    contents = [f"canary-{uuid.uuid4().hex}" for _ in range(3)]
    try:
        async with server.http(alice) as http:
            created = await http.post("/api/v1/conversations",
                                      json={"kind": "channel", "name": "general"})
            assert created.status_code == 201, created.text
            channel = created.json()["id"]
            posted = await http.post(f"/api/v1/conversations/{channel}/messages",
                                     json={"content": contents[0]})
            assert posted.status_code == 201, posted.text
            ticket_reply = await http.post("/api/v1/ws-tickets")
            assert ticket_reply.status_code in (200, 201), ticket_reply.text
            ticket = ticket_reply.json()["ticket"]
            # The query string of a plain request, refused or not, is a credential too.
            await http.get(f"/api/v1/users/me?token={alice.token}")
            await http.get(f"/healthz?ticket={ticket}&token={alice.token}")
        client = await ChatClient.connect(server.ws_url, alice.token)
        try:
            joined = await client.request("JoinConversation", conversation_id=channel)
            assert joined["type"] == "ActionConfirmed", joined
            sent = await client.request("SendMessage", conversation_id=channel,
                                        content=contents[1])
            assert sent["type"] == "ActionConfirmed", sent
            # A frame the server refuses: content in a field of the wrong type.
            refused = await client.request("SendMessage", conversation_id=channel,
                                           content=[contents[2]])
            assert refused["type"] == "Error", refused
        finally:
            await client.close()
        answers = [await exchange(server.port, raw)
                   for raw in hostile_requests(alice.token, ticket)]
        assert all(answer.split(b" ", 2)[1].startswith(b"4") for answer in answers), answers
    finally:
        await server.stop()
    printed = server.log_path.read_text(errors="replace")
    secret_texts = [alice.token, ticket, *contents, *alice.token.split(".")]
    leaks = [line for line in printed.splitlines() if any(s in line for s in secret_texts)]
    assert not leaks, "\n".join(leaks)
    # The hostile requests did reach the logs (aiohttp logs each refused request line).
    assert printed.count("Error handling request") >= 5, printed
    assert "ws.open" in printed, printed  # debug-level logging really was on
    assert "http.access" in printed, printed
    if log_format == "json":  # one JSON object per line, tracebacks and scrubbing included
        for line in printed.splitlines():
            assert isinstance(json.loads(line), dict), line
