"""Rate limits (PROTOCOL.md §6) and input bounds (§1, §2, §7): what the client sees, and that
nothing is stored by what was refused."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from hubbub.client import HandshakeFailed
from tests.conftest import StartServer
from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT, assert_error, attachment, joined, rest_messages, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Refusal:
    """The HTTP response to a refused upgrade."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


async def refused_upgrade(server: RunningServer, token: str | None = None,
                          headers: dict[str, str] | None = None) -> Refusal:
    """Attempt a WebSocket upgrade that must be refused; the HTTP response it got, whole.

    A refused upgrade is a plain HTTP response, so it is read as one (httpx): the SDK's
    `HandshakeFailed` has its status and `Retry-After`, not its body."""
    query = f"?token={token}" if token else ""
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.get(server.base_url + "/ws" + query,
                                  headers={**upgrade, **(headers or {})})
    assert response.status_code != 101, "the upgrade was not refused"
    return Refusal(response.status_code,
                   {k.decode(): v.decode() for k, v in response.headers.raw},
                   response.content)


def assert_rate_limited_http(response: httpx.Response | Refusal) -> None:
    """§7: 429, a whole number of seconds in `Retry-After`, the RATE_LIMITED JSON body."""
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "RATE_LIMITED"


def own_ip_buckets() -> dict[str, str]:
    """A Redis key prefix of its own: per-IP buckets are shared by every server on one Redis
    (all tests connect from 127.0.0.1), so each handshake test counts from zero."""
    return {"redis_prefix": f"limits-{uuid.uuid4().hex[:12]}"}


async def room_with(server: RunningServer, owner: User) -> tuple[str, ChatClient]:
    room = await server.create_conversation(owner, name="limits")
    return room["id"], await joined(server, owner, room["id"])


async def pipelined(client: ChatClient, count: int, type_: str,
                    **fields: Any) -> list[dict[str, Any]]:
    """Send `count` requests without waiting, then collect their direct responses in order."""
    ids = [await client.send(type_, **fields) for _ in range(count)]
    return [await client.response(rid, TIMEOUT) for rid in ids]


# -- Per user, per action class -------------------------------------------------------------


async def test_sends_over_the_burst_get_rate_limited(start_server: StartServer) -> None:
    """Sends past the burst get RATE_LIMITED with retry_after_ms and are not stored."""
    async with start_server(send_rate=0.5, send_burst=3) as server:
        alice = server.user("alice")
        room, client = await room_with(server, alice)
        replies = await pipelined(client, 6, "SendMessage", conversation_id=room, content="x")
        confirmed = [r for r in replies if r["type"] == "ActionConfirmed"]
        limited = [r for r in replies if r["type"] == "Error"]
        assert len(confirmed) == 3
        assert [r["code"] for r in limited] == ["RATE_LIMITED"] * 3
        assert all(0 < r["retry_after_ms"] <= 2000 for r in limited)
        stored = await rest_messages(server, alice, room)
        assert sorted(m["id"] for m in stored) == sorted(r["message"]["id"] for r in confirmed)


async def test_other_actions_have_their_own_bucket(start_server: StartServer) -> None:
    """An exhausted send bucket leaves other actions alone, and they have a bucket of their own."""
    async with start_server(send_rate=0.5, send_burst=1, other_rate=0.5, other_burst=3) as server:
        alice = server.user("alice")
        client = await server.connect(alice)
        room = str(uuid.uuid4())
        sends = await pipelined(client, 2, "SendMessage", conversation_id=room, content="x")
        assert sends[1]["code"] == "RATE_LIMITED"
        pings = await pipelined(client, 4, "Ping")
        assert [p["type"] for p in pings] == ["Pong", "Pong", "Pong", "Error"]
        assert_error(pings[3], "RATE_LIMITED", request_id=pings[3]["request_id"])


async def test_buckets_are_per_user(start_server: StartServer) -> None:
    """One user's exhausted bucket does not limit another user."""
    async with start_server(other_rate=0.5, other_burst=2) as server:
        alice, bob = await server.connect(server.user()), await server.connect(server.user())
        assert (await pipelined(alice, 3, "Ping"))[2]["code"] == "RATE_LIMITED"
        assert [p["type"] for p in await pipelined(bob, 2, "Ping")] == ["Pong", "Pong"]


async def test_rest_send_over_the_limit_gets_429(start_server: StartServer) -> None:
    """`POST …/messages` past the send burst gets 429 with Retry-After and stores nothing."""
    async with start_server(send_rate=0.2, send_burst=2) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, name="rest"))["id"]
        async with server.http(alice) as http:
            statuses = []
            for n in range(3):
                response = await http.post(f"/api/v1/conversations/{room}/messages",
                                           json={"content": f"m{n}"})
                statuses.append(response.status_code)
        assert statuses == [201, 201, 429]
        assert_rate_limited_http(response)
        assert [m["content"] for m in await rest_messages(server, alice, room)] == ["m0", "m1"]


def writer_jobs(server: RunningServer) -> float:
    """`hubbub_writer_jobs_total`: every database write goes through the writer."""
    text = server.internals.metrics.render().decode()
    [value] = [line.split()[-1] for line in text.splitlines()
               if line.startswith("hubbub_writer_jobs_total ")]
    return float(value)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/users/me"), ("GET", "/api/v1/conversations"),
    ("POST", "/api/v1/ws-tickets"),
])
async def test_a_rest_call_the_limiter_refuses_writes_nothing(
        start_server: StartServer, method: str, path: str) -> None:
    """Past the "other action" burst, a REST call is 429 before the user is registered or
    refreshed: a new name in its token is not stored, and no write was made."""
    async with start_server(other_rate=0.05, other_burst=1) as server:
        alice = server.user("alice")
        async with server.http(alice) as http:
            assert (await http.request(method, path)).status_code in (200, 201)
        renamed = replace(alice, token=server.token(alice.id, "alice-renamed"))
        before = writer_jobs(server)
        async with server.http(renamed) as http:
            assert_rate_limited_http(await http.request(method, path))
        assert writer_jobs(server) == before
        stored = await server.internals.store.get_user(alice.id)
        assert stored is not None
        assert stored.name == "alice"


async def test_flooding_connection_is_closed_with_1008(start_server: StartServer) -> None:
    """More than 100 RATE_LIMITED errors within 10 s close the connection with 1008."""
    async with start_server(send_rate=0.1, send_burst=1) as server:
        alice = server.user("alice")
        room, client = await room_with(server, alice)
        first = await send(client, room, "kept")
        for n in range(130):
            await client.send("SendMessage", conversation_id=room, content=f"flood {n}")
        assert await client.wait_closed(TIMEOUT) == 1008
        limited = [f for f in client.frames if f.get("code") == "RATE_LIMITED"]
        assert len(limited) > 100
        stored = await rest_messages(server, alice, room)
        assert [m["id"] for m in stored] == [first["id"]], [m["content"] for m in stored]


async def test_rate_limited_under_the_flood_bound_keeps_the_connection(
        start_server: StartServer) -> None:
    """A client that gets a hundred RATE_LIMITED errors but no more stays connected."""
    async with start_server(other_rate=0.1, other_burst=1) as server:
        client = await server.connect(server.user())
        replies = await pipelined(client, 101, "Ping")
        assert sum(r["type"] == "Error" for r in replies) == 100
        await asyncio.sleep(0.2)
        assert client.close_code is None
        assert len(server.internals.sockets) == 1


async def test_invalid_frames_take_tokens_from_the_other_actions_bucket(
        start_server: StartServer) -> None:
    """Each invalid frame (bad JSON, a wrong field, a binary frame) is answered BAD_REQUEST
    and takes a token like any other action: past the burst it is RATE_LIMITED, and so is
    the user's next valid request."""
    async with start_server(other_rate=0.5, other_burst=3) as server:
        client = await server.connect(server.user())
        await client.send_raw("{not json")
        await client.send_raw('{"type": "Ping", "request_id": "bad", "timestamp": [[]]}')
        await client.send_raw(b"\x00binary")
        errors = [await client.expect("Error", TIMEOUT) for _ in range(3)]
        assert [e["code"] for e in errors] == ["BAD_REQUEST"] * 3
        await client.send_raw('{"type": "Shout", "request_id": "over"}')
        assert_error(await client.response("over", TIMEOUT), "RATE_LIMITED", request_id="over")
        await client.send_raw('{"type": "Ping", "request_id": "valid"}')
        assert_error(await client.response("valid", TIMEOUT), "RATE_LIMITED", request_id="valid")
        assert client.close_code is None


async def test_a_connection_sending_only_garbage_is_closed_with_1008(
        start_server: StartServer) -> None:
    """Garbage past the budget counts toward the flood rule: more than 100 RATE_LIMITED
    within 10 s close the connection with 1008, as for any flooder."""
    async with start_server(other_rate=0.1, other_burst=1) as server:
        client = await server.connect(server.user())
        for n in range(130):
            await client.send_raw("[" * 1000 if n % 2 else "garbage")
        assert await client.wait_closed(TIMEOUT) == 1008
        codes = [f["code"] for f in client.frames if f["type"] == "Error"]
        assert codes[0] == "BAD_REQUEST"
        assert codes.count("RATE_LIMITED") > 100


# -- Open connections per user --------------------------------------------------------------


async def test_connection_over_the_per_user_cap_gets_429(start_server: StartServer) -> None:
    """The connection past `max_connections_per_user` is refused with 429 before the upgrade."""
    async with start_server(max_connections_per_user=2) as server:
        alice = server.user("alice")
        await server.connect(alice)
        await server.connect(alice)
        response = await refused_upgrade(server, alice.token)
        assert_rate_limited_http(response)
        assert server.internals.metrics.connections_open._value.get() == 2


async def test_closing_a_connection_frees_its_slot(start_server: StartServer) -> None:
    """Once one of a capped user's connections closes, a new one is admitted."""
    async with start_server(max_connections_per_user=1) as server:
        alice = server.user("alice")
        first = await server.connect(alice)
        assert (await refused_upgrade(server, alice.token)).status_code == 429
        await first.close()
        for _ in range(100):  # the slot frees once the server has finished with the socket
            try:
                second = await server.connect(alice)
                break
            except HandshakeFailed:
                await asyncio.sleep(0.02)
        assert second.connected["user_id"] == alice.id


async def test_the_cap_counts_each_user_separately(start_server: StartServer) -> None:
    """One user at the cap does not keep another user out."""
    async with start_server(max_connections_per_user=1) as server:
        await server.connect(server.user("alice"))
        bob = server.user("bob")
        assert (await server.connect(bob)).connected["user_id"] == bob.id


# -- Handshakes per client IP ---------------------------------------------------------------


async def test_handshakes_over_the_ip_rate_get_429(start_server: StartServer) -> None:
    """Handshakes from one IP past the burst are refused with 429, whoever the user is."""
    async with start_server(**own_ip_buckets(), handshake_rate=0.2, handshake_burst=3) as server:
        for _ in range(3):
            await server.connect(server.user())
        refused = server.user()
        assert_rate_limited_http(await refused_upgrade(server, refused.token))
        assert await server.internals.store.get_user(refused.id) is None


async def test_refused_handshakes_count_against_the_ip(start_server: StartServer) -> None:
    """Attempts with bad tokens use up the IP's handshakes too (slowing token guessing)."""
    async with start_server(**own_ip_buckets(), handshake_rate=0.2, handshake_burst=2) as server:
        assert (await refused_upgrade(server, "bad.token.here")).status_code == 401
        assert (await refused_upgrade(server, "bad.token.here")).status_code == 401
        assert_rate_limited_http(await refused_upgrade(server, server.user().token))


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
        start_server: StartServer) -> None:
    """Without `trusted_proxies`, `X-Forwarded-For` cannot buy a client fresh handshakes."""
    async with start_server(**own_ip_buckets(), handshake_rate=0.2, handshake_burst=2) as server:
        for n in range(2):
            await server.connect(server.user(),
                                 headers={"X-Forwarded-For": f"10.0.0.{n}"})
        response = await refused_upgrade(server, server.user().token,
                                         {"X-Forwarded-For": "10.0.0.9"})
        assert_rate_limited_http(response)


async def test_forwarded_for_from_a_trusted_proxy_is_the_client_ip(
        start_server: StartServer) -> None:
    """Behind a trusted proxy, each first `X-Forwarded-For` hop has its own handshake bucket."""
    async with start_server(**own_ip_buckets(), handshake_rate=0.2, handshake_burst=2,
                            trusted_proxies=("127.0.0.0/8",)) as server:
        one = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}
        for _ in range(2):
            await server.connect(server.user(), headers=one)
        assert_rate_limited_http(await refused_upgrade(server, server.user().token, one))
        other = await server.connect(server.user(),
                                     headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.connected["type"] == "Connected"


async def test_forwarded_for_hops_the_client_wrote_do_not_choose_the_bucket(
        start_server: StartServer) -> None:
    """A proxy appends to the `X-Forwarded-For` the client sent: whatever the client put
    first, the hop the trusted proxy appended is the one counted."""
    async with start_server(**own_ip_buckets(), handshake_rate=0.2, handshake_burst=2,
                            trusted_proxies=("127.0.0.0/8",)) as server:
        for n in range(2):
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"}
            await server.connect(server.user(), headers=spoofed)
        response = await refused_upgrade(server, server.user().token,
                                         {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"})
        assert_rate_limited_http(response)


# -- Input bounds on the WebSocket ----------------------------------------------------------

OVERSIZED: dict[str, tuple[dict[str, Any], str]] = {
    "content": ({"type": "SendMessage", "content": "x" * 4001}, "$.content"),
    "client_message_id": ({"type": "SendMessage", "content": "x",
                           "client_message_id": "c" * 65}, "$.client_message_id"),
    "attachments": ({"type": "SendMessage", "content": "x",
                     "attachments": [attachment()] * 11}, "$.attachments"),
    "attachment_url": ({"type": "SendMessage", "content": "x", "attachments": [
        attachment(url="https://f.example/" + "u" * 2040)]}, "$.attachments[0].url"),
    "attachment_name": ({"type": "SendMessage", "content": "x",
                         "attachments": [attachment(name="n" * 256)]}, "$.attachments[0].name"),
    "attachment_size": ({"type": "SendMessage", "content": "x",
                         "attachments": [attachment(size=2**64)]}, "$.attachments[0].size"),
    "history_limit": ({"type": "FetchHistory", "limit": 101}, "$.limit"),
    "history_before": ({"type": "FetchHistory", "before": 2**63}, "$.before"),
    "sync_limit": ({"type": "SyncMessages", "limit": 501}, "$.limit"),
    "sync_since_version": ({"type": "SyncMessages", "since_version": 2**64}, "$.since_version"),
    "search_query": ({"type": "SearchMessages", "query": "q" * 201}, "$.query"),
    "emoji": ({"type": "AddReaction", "message_id": str(uuid.uuid4()), "emoji": "e" * 33},
              "$.emoji"),
}


@pytest.mark.parametrize("case", sorted(OVERSIZED))
async def test_values_past_their_bound_are_bad_requests(server: RunningServer, case: str) -> None:
    """A value past its §2/§3 bound gets BAD_REQUEST naming the field; nothing is stored and
    the connection stays open."""
    alice = server.user("alice")
    room, client = await room_with(server, alice)
    body, field = OVERSIZED[case]
    body = {"conversation_id": room, **body, "request_id": f"big-{case}"}
    await client.send_raw(json.dumps(body))
    assert_error(await client.response(f"big-{case}", TIMEOUT), "BAD_REQUEST", field=field,
                 request_id=f"big-{case}")
    assert (await client.request("Ping"))["type"] == "Pong"
    assert await rest_messages(server, alice, room) == []


async def test_request_id_past_64_chars_is_a_bad_request(server: RunningServer) -> None:
    """A request_id longer than 64 characters is refused (and echoed, as §2 asks)."""
    client = await server.connect(server.user())
    long_id = "r" * 65
    await client.send_raw(json.dumps({"type": "Ping", "request_id": long_id}))
    assert_error(await client.response(long_id, TIMEOUT), "BAD_REQUEST", field="$.request_id",
                 request_id=long_id)


async def test_deep_json_is_a_bad_request(server: RunningServer) -> None:
    """JSON nested where a field is flat gets BAD_REQUEST naming the field; nested past the
    parser's limit anywhere, BAD_REQUEST too; nothing is stored, the connection stays."""
    alice = server.user("alice")
    room, client = await room_with(server, alice)
    deep = "[" * 5000 + "]" * 5000
    await client.send_raw('{"type":"SendMessage","request_id":"deep","conversation_id":"'
                          + room + '","content":"x","attachments":' + deep + "}")
    assert_error(await client.response("deep", TIMEOUT), "BAD_REQUEST",
                 field="$.attachments[0]", request_id="deep")
    await client.send_raw('{"type":"SendMessage","request_id":"deeper","conversation_id":"'
                          + room + '","content":"x","extra":' + deep + "}")
    reply = await client.response("deeper", TIMEOUT)
    assert_error(reply, "BAD_REQUEST", request_id="deeper")
    assert "nested" in reply["message"]
    assert (await client.request("Ping"))["type"] == "Pong"
    assert await rest_messages(server, alice, room) == []


async def test_frame_over_max_frame_bytes_closes_with_1009(start_server: StartServer) -> None:
    """A frame larger than `max_frame_bytes` closes the connection with 1009; nothing stored."""
    async with start_server(max_frame_bytes=2048) as server:
        alice = server.user("alice")
        room, client = await room_with(server, alice)
        await client.send("SendMessage", conversation_id=room, content="x" * 3000)
        assert await client.wait_closed(TIMEOUT) == 1009
        assert await rest_messages(server, alice, room) == []


async def test_frame_at_max_frame_bytes_is_accepted(start_server: StartServer) -> None:
    """A frame of exactly `max_frame_bytes` is still read."""
    async with start_server(max_frame_bytes=2048) as server:
        alice = server.user("alice")
        room, client = await room_with(server, alice)
        frame = {"type": "SendMessage", "conversation_id": room, "request_id": "edge",
                 "content": ""}
        frame["content"] = "x" * (2048 - len(json.dumps(frame)))
        await client.send_raw(json.dumps(frame))
        assert (await client.response("edge", TIMEOUT))["type"] == "ActionConfirmed"


# -- Input bounds over HTTP -----------------------------------------------------------------


async def test_http_body_over_max_body_bytes_gets_413(start_server: StartServer) -> None:
    """A body past `max_body_bytes` gets 413 PAYLOAD_TOO_LARGE and stores nothing."""
    async with start_server(max_body_bytes=1024) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, name="big"))["id"]
        async with server.http(alice) as http:
            response = await http.post(f"/api/v1/conversations/{room}/messages",
                                       json={"content": "x" * 2000})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert await rest_messages(server, alice, room) == []


async def test_chunked_body_over_max_body_bytes_gets_413(start_server: StartServer) -> None:
    """A chunked body (no Content-Length) is cut off at `max_body_bytes` too."""
    async with start_server(max_body_bytes=1024) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, name="big"))["id"]

        async def chunks() -> Any:
            yield b'{"content": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        async with server.http(alice) as http:
            response = await http.post(f"/api/v1/conversations/{room}/messages",
                                       content=chunks(),
                                       headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert await rest_messages(server, alice, room) == []


@pytest.mark.parametrize("query", ["limit=101", "limit=0", "before=-1",
                                   f"before={2**63}", "limit=" + "9" * 5000])
async def test_history_query_out_of_range_gets_400(server: RunningServer, query: str) -> None:
    """`GET …/messages` refuses a page size or cursor the database would not bound."""
    alice = server.user("alice")
    room = (await server.create_conversation(alice, name="q"))["id"]
    async with server.http(alice) as http:
        response = await http.get(f"/api/v1/conversations/{room}/messages?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BAD_REQUEST"


async def test_member_list_in_a_create_is_bounded(server: RunningServer) -> None:
    """`POST /conversations` refuses more than 1000 member ids in one body."""
    alice = server.user("alice")
    async with server.http(alice) as http:
        response = await http.post("/api/v1/conversations", json={
            "kind": "group", "name": "g", "member_ids": [str(uuid.uuid4())] * 1001})
    assert response.status_code == 400
    async with server.http(alice) as http:
        listed = (await http.get("/api/v1/conversations")).json()["conversations"]
    assert listed == []
