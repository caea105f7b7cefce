"""Real frames match hubbub.schema.json: what a real server sends over a real WebSocket,
and what it accepts and refuses, validated with a JSON Schema 2020-12 validator
(jsonschema-rs) against the committed document."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from tests.contract_docs.conftest import COMMITTED
from tests.support.process import ServerProcess

SCHEMA = json.loads((COMMITTED / "hubbub.schema.json").read_text())


def _validator(side: str) -> Any:
    """A validator of one direction's union, its refs resolved in the whole document."""
    return jsonschema_rs.Draft202012Validator(
        {**SCHEMA, "anyOf": [{"$ref": f"#/$defs/{side}"}]})


SERVER_FRAMES = _validator("ServerMessage")
CLIENT_FRAMES = _validator("ClientMessage")


async def _exchange(process: ServerProcess) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alice and Bob in a group; Alice sends, edits, reacts, types, reads, fetches, syncs,
    searches and pings; both record every frame. Returns (sent by Alice, received)."""
    alice, bob = process.user("alice"), process.user("bob")
    async with process.http(alice) as http:
        created = await http.post("/api/v1/conversations", json={
            "kind": "group", "name": "contract", "member_ids": [bob.id]})
    assert created.status_code == 201, created.text
    conversation_id = created.json()["id"]
    a, b = await process.connect(alice), await process.connect(bob)
    sent: list[dict[str, Any]] = []
    await b.request("JoinConversation", conversation_id=conversation_id)  # accept the invite

    async def request(type_: str, **fields: Any) -> dict[str, Any]:
        sent.append({"type": type_, "request_id": f"c{len(sent)}", **fields})
        return await a.request(type_, request_id=f"c{len(sent) - 1}", **fields)

    await request("SendMessage", conversation_id=conversation_id, content="hello",
                  client_message_id="m1")
    message = (await b.expect("NewMessage"))["message"]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("EditMessage", {"message_id": message["id"], "content": "hello again"}),
        ("AddReaction", {"message_id": message["id"], "emoji": "👍"}),
        ("Typing", {"conversation_id": conversation_id, "is_typing": True}),
        ("MarkAsRead", {"conversation_id": conversation_id, "message_id": message["id"]}),
        ("FetchHistory", {"conversation_id": conversation_id, "limit": 10}),
        ("SyncMessages", {"conversation_id": conversation_id, "since_version": 0}),
        ("SearchMessages", {"query": "hello"}),
        ("Ping", {"timestamp": "t1"}),
        ("DeleteMessage", {"message_id": message["id"]}),
    ]
    for type_, fields in steps:
        await request(type_, **fields)
    await b.expect("MessageDeleted")
    return sent, a.frames + b.frames + [a.connected]


@pytest.mark.timeout(60)
async def test_every_frame_of_a_real_exchange_matches_the_schema(
        process: ServerProcess) -> None:
    sent, received = await _exchange(process)
    for frame in sent:
        errors = [e.message for e in CLIENT_FRAMES.iter_errors(frame)]
        assert errors == [], (frame, errors)
    for frame in received:
        errors = [e.message for e in SERVER_FRAMES.iter_errors(frame)]
        assert errors == [], (frame, errors)
    kinds = {frame["type"] for frame in received}
    assert kinds >= {"Connected", "NewMessage", "MessageEdited", "ReactionAdded",
                     "UserTyping", "HistoryChunk", "SyncChunk", "SearchResults", "Pong",
                     "MessageDeleted"}, kinds


@pytest.mark.parametrize("frame", [
    {"type": "SendMessage", "conversation_id": "not-a-uuid", "content": "x"},
    {"type": "SendMessage", "conversation_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
     "content": "x" * 4001},
    {"type": "AddReaction", "message_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
     "emoji": ""},
    {"type": "FetchHistory", "conversation_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
     "limit": 101},
    {"type": "NoSuchMessage"},
])
async def test_a_frame_the_schema_refuses_the_server_refuses(
        process: ServerProcess, frame: dict[str, Any]) -> None:
    assert not CLIENT_FRAMES.is_valid(frame)
    client = await process.connect(process.user())
    answer = await client.request(frame.pop("type"), **frame)
    assert answer["type"] == "Error", answer
    assert answer["code"] == "BAD_REQUEST", answer
    assert SERVER_FRAMES.is_valid(answer)
