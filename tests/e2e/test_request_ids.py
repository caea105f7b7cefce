"""Following one request or connection through the logs: an id per HTTP request (in its
lines and its `X-Request-Id`), the `connection_id` on every line of a WebSocket, and access
logs that hold the path but never the query string."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import ChatClient
from tests.support.process import ServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

GENERATED_ID = re.compile(r"[0-9a-f]{16}")


async def test_requests_and_connections_can_be_followed(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'hubbub.db'}", tmp_path, extra_env={
        "HUBBUB_LOG_LEVEL": "info", "HUBBUB_LOG_FORMAT": "json", "HUBBUB_ACCESS_LOG": "on"})
    await server.start()
    alice = server.user("alice")
    try:
        async with server.http(alice) as http:
            kept = await http.get("/api/v1/users/me?page=2", headers={"X-Request-Id": "trace-42"})
            generated = await http.get("/api/v1/users/me")
            unsafe = await http.get("/api/v1/users/me", headers={"X-Request-Id": "a b\tc"})
            too_long = await http.get("/api/v1/users/me", headers={"X-Request-Id": "x" * 65})
            missing = await http.get("/api/v1/conversations/00000000-0000-0000-0000-000000000000")
        client = await ChatClient.connect(server.ws_url, alice.token)
        connection_id = client.connected["connection_id"]
        await client.close()
    finally:
        await server.stop()
    assert kept.headers["X-Request-Id"] == "trace-42"
    for response in (generated, unsafe, too_long, missing):
        assert GENERATED_ID.fullmatch(response.headers["X-Request-Id"]), response.headers
    assert missing.status_code == 404
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]

    def access(request_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [e for e in lines if e["event"] == "http.access"
                 and e.get("request_id") == request_id]
        assert len(found) == 1, lines
        return found[0]

    entry = access("trace-42")
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/api/v1/users/me", 200)
    assert entry["duration_ms"] >= 0
    assert access(missing.headers["X-Request-Id"])["status"] == 404
    assert not [e for e in lines if "?" in e.get("path", "")]
    ws_lines = [e for e in lines if e["event"].startswith("ws.")]
    # One line per connection at info, when it ends, saying how long it lasted; `ws.open`
    # is a debug line (DECISIONS "The connect path, round 4").
    [closed] = [e for e in ws_lines if e["event"] in ("ws.open", "ws.closed")]
    expected = ("ws.closed", client.connected["user_id"], 1000)
    assert (closed["event"], closed["user_id"], closed["code"]) == expected
    assert closed["duration_ms"] >= 0, closed
    assert all(e["connection_id"] == connection_id for e in ws_lines), ws_lines
    upgrade = [e for e in lines if e["event"] == "http.access" and e["path"] == "/ws"]
    assert [e["connection_id"] for e in upgrade] == [connection_id]
