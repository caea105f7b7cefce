"""The envelope rules of PROTOCOL.md §2: bad input gets one `Error` naming the field, never
closes the connection and never changes stored data; every client message gets exactly one
direct response carrying its `request_id`."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from tests.support.client import ChatClient
from tests.support.flows import (
    MISSING,
    TIMEOUT,
    all_messages,
    assert_error,
    joined,
    rest_messages,
    send,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOM = "{room}"  # replaced by the test conversation's id


def frame(**fields: Any) -> str:
    return json.dumps(fields)


# name: (raw frame, JSONPath the error must name or None, request_id it must echo)
BAD_FRAMES: dict[str, tuple[str, str | None, str | None]] = {
    "malformed_json": ('{"type": "Ping", ', None, None),
    "trailing_garbage": ('{"type": "Ping"} {}', None, None),
    "empty_frame": ("", None, None),
    "array": ('[{"type": "Ping"}]', "$", None),
    "number": ("42", "$", None),
    "string": ('"SendMessage"', "$", None),
    "null": ("null", "$", None),
    "unknown_type": (frame(type="Shout", request_id="b-type"), "$.type", "b-type"),
    "lowercase_type": (frame(type="sendMessage", request_id="b-case"), "$.type", "b-case"),
    "missing_type": (frame(request_id="b-none", conversation_id=MISSING), "$.type", "b-none"),
    "type_not_a_string": (frame(type=5, request_id="b-int"), "$.type", "b-int"),
    "id_not_a_string": (frame(type="SendMessage", conversation_id=5, content="x",
                              request_id="b-cid"), "$.conversation_id", "b-cid"),
    "id_not_a_uuid": (frame(type="SendMessage", conversation_id="general", content="x",
                            request_id="b-uuid"), "$.conversation_id", "b-uuid"),
    "id_upper_case": (frame(type="SendMessage", conversation_id=MISSING.upper().replace(
        "0", "A"), content="x", request_id="b-upper"), "$.conversation_id", "b-upper"),
    "missing_field": (frame(type="SendMessage", content="x", request_id="b-miss"),
                      "$.conversation_id", "b-miss"),
    "content_not_a_string": (frame(type="SendMessage", conversation_id=ROOM, content=123,
                                   request_id="b-num"), "$.content", "b-num"),
    "content_null": (frame(type="SendMessage", conversation_id=ROOM, content=None,
                           request_id="b-null"), "$.content", "b-null"),
    "content_too_long": (frame(type="SendMessage", conversation_id=ROOM, content="x" * 4001,
                               request_id="b-long"), "$.content", "b-long"),
    "blank_content": (frame(type="SendMessage", conversation_id=ROOM, content=" ",
                            request_id="b-blank"), "$.content", "b-blank"),
    "attachment_missing_url": (frame(type="SendMessage", conversation_id=ROOM, content="x",
                                     attachments=[{"name": "a", "mime_type": "a/b",
                                                   "size": 1}], request_id="b-att"),
                               "$.attachments[0].url", "b-att"),
    "limit_too_big": (frame(type="FetchHistory", conversation_id=ROOM, limit=1000,
                            request_id="b-lim"), "$.limit", "b-lim"),
    "limit_overflows": ('{"type": "FetchHistory", "conversation_id": "{room}", '
                        '"limit": 1e400, "request_id": "b-inf"}', "$.limit", "b-inf"),
    "limit_huge_integer": ('{"type": "FetchHistory", "conversation_id": "{room}", '
                           '"limit": 123456789012345678901234567890, "request_id": "b-big"}',
                           "$.limit", "b-big"),
    "edit_missing_content": (frame(type="EditMessage", message_id=MISSING,
                                   request_id="b-edit"), "$.content", "b-edit"),
    "delete_null_id": (frame(type="DeleteMessage", message_id=None, request_id="b-del"),
                       "$.message_id", "b-del"),
    "join_id_is_a_list": (frame(type="JoinConversation", conversation_id=[ROOM],
                                request_id="b-list"), "$.conversation_id", "b-list"),
    "ping_timestamp_object": (frame(type="Ping", timestamp={"t": 1}, request_id="b-ts"),
                              "$.timestamp", "b-ts"),
    "request_id_too_long": (frame(type="Ping", request_id="r" * 65), "$.request_id",
                            "r" * 65),
    "request_id_not_a_string": (frame(type="Ping", request_id=7), "$.request_id", None),
    "nul_in_content": (frame(type="SendMessage", conversation_id=ROOM, content="a\u0000b",
                             request_id="b-nul"), "$.content", "b-nul"),
    "nul_in_client_message_id": (frame(type="SendMessage", conversation_id=ROOM, content="x",
                                       client_message_id="c\u0000", request_id="b-nul-c"),
                                 "$.client_message_id", "b-nul-c"),
    "nul_in_attachment": (frame(type="SendMessage", conversation_id=ROOM, content="x",
                                attachments=[{"url": "https://a.example/b", "name": "\u0000",
                                              "mime_type": "a/b", "size": 1}],
                                request_id="b-nul-a"), "$.attachments[0].name", "b-nul-a"),
    "nul_in_edit": (frame(type="EditMessage", message_id=MISSING, content="\u0000",
                          request_id="b-nul-e"), "$.content", "b-nul-e"),
    "too_deep": (frame(type="Ping", request_id="b-deep", timestamp=json.loads(
        "[" * 40 + "]" * 40)), None, "b-deep"),
}

# Well-formed messages naming ids that do not exist.
UNKNOWN_IDS: dict[str, tuple[str, str]] = {
    "send": (frame(type="SendMessage", conversation_id=MISSING, content="x",
                   request_id="n-send"), "$.conversation_id"),
    "edit": (frame(type="EditMessage", message_id=MISSING, content="x", request_id="n-edit"),
             "$.message_id"),
    "delete": (frame(type="DeleteMessage", message_id=MISSING, request_id="n-delete"),
               "$.message_id"),
    "join": (frame(type="JoinConversation", conversation_id=MISSING, request_id="n-join"),
             "$.conversation_id"),
    "leave": (frame(type="LeaveConversation", conversation_id=MISSING, request_id="n-leave"),
              "$.conversation_id"),
    "fetch": (frame(type="FetchHistory", conversation_id=MISSING, request_id="n-fetch"),
              "$.conversation_id"),
}


async def room_with_one_message(server: RunningServer) -> tuple[ChatClient, str,
                                                                list[dict[str, Any]]]:
    """A subscribed client in a conversation that holds one message, and that history."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    await send(client, room["id"], "the only message")
    await client.expect("NewMessage", timeout=TIMEOUT)
    return client, room["id"], await all_messages(client, room["id"])


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_bad_frames_get_bad_request_naming_the_field(server: RunningServer,
                                                            case: str) -> None:
    """Each kind of bad frame gets one `BAD_REQUEST` that names the field and echoes the
    frame's string `request_id`; nothing is stored."""
    raw, field, request_id = BAD_FRAMES[case]
    client, room, before = await room_with_one_message(server)
    await client.send_raw(raw.replace(ROOM, room))
    error = await client.expect("Error", timeout=TIMEOUT)
    assert_error(error, "BAD_REQUEST", field=field, request_id=request_id)
    await client.expect_none("NewMessage", within=0.2)
    assert await all_messages(client, room) == before


@pytest.mark.parametrize("case", sorted(UNKNOWN_IDS))
async def test_unknown_ids_are_not_found(server: RunningServer, case: str) -> None:
    """A well-formed message naming an unknown conversation or message gets NOT_FOUND."""
    raw, field = UNKNOWN_IDS[case]
    client, room, before = await room_with_one_message(server)
    await client.send_raw(raw)
    error = await client.response(f"n-{case}", TIMEOUT)
    assert_error(error, "NOT_FOUND", field=field, request_id=f"n-{case}")
    assert await all_messages(client, room) == before


async def test_binary_frames_are_refused(server: RunningServer) -> None:
    """A binary frame gets `BAD_REQUEST`; the connection stays open."""
    client = await server.connect(server.user())
    await client.send_raw(b'{"type": "Ping", "request_id": "bin"}')
    error = await client.expect("Error", timeout=TIMEOUT)
    assert_error(error, "BAD_REQUEST", request_id=None)
    assert (await client.request("Ping"))["type"] == "Pong"


async def test_the_connection_survives_a_burst_of_bad_input(server: RunningServer) -> None:
    """Every bad frame of the catalogue, sent back to back, gets its own error; the
    connection still works afterwards and the stored data is unchanged."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    await send(client, room["id"], "before the burst")
    await client.expect("NewMessage", timeout=TIMEOUT)
    ws_before = await all_messages(client, room["id"])
    rest_before = await rest_messages(server, alice, room["id"])
    frames = [raw.replace(ROOM, room["id"]) for raw, _, _ in BAD_FRAMES.values()]
    frames += [raw for raw, _ in UNKNOWN_IDS.values()]
    for _ in range(3):
        for raw in frames:
            await client.send_raw(raw)
        await client.send_raw(b"\x00\x01binary")
    pong = await client.request("Ping", request_id="after-burst", timeout=TIMEOUT)
    assert pong["type"] == "Pong"
    expected_errors = 3 * (len(frames) + 1)
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while len(client.all("Error")) < expected_errors:
        assert asyncio.get_running_loop().time() < deadline, len(client.all("Error"))
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    errors = client.all("Error")
    assert len(errors) == expected_errors
    assert {e["code"] for e in errors} == {"BAD_REQUEST", "NOT_FOUND"}
    assert client.close_code is None
    assert await all_messages(client, room["id"]) == ws_before
    assert await rest_messages(server, alice, room["id"]) == rest_before
    assert (await send(client, room["id"], "after the burst"))["content"] == "after the burst"


async def test_every_message_gets_exactly_one_direct_response(server: RunningServer) -> None:
    """Forty pipelined messages of every foundation type get one response each, carrying
    their request_id; broadcasts carry none."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    client = await joined(server, alice, room["id"])
    target = await send(client, room["id"], "target")
    victim = await send(client, room["id"], "victim")
    requests: list[tuple[str, dict[str, Any]]] = []
    for i in range(5):
        requests += [
            ("SendMessage", {"conversation_id": room["id"], "content": f"m{i}"}),
            ("SendMessage", {"conversation_id": room["id"], "content": "same",
                             "client_message_id": "dup"}),
            ("EditMessage", {"message_id": target["id"], "content": f"edit {i}"}),
            ("DeleteMessage", {"message_id": victim["id"]}),
            ("JoinConversation", {"conversation_id": room["id"]}),
            ("FetchHistory", {"conversation_id": room["id"], "limit": 5}),
            ("Ping", {"timestamp": i}),
            ("EditMessage", {"message_id": MISSING, "content": "x"}),
        ]
    request_ids = await asyncio.gather(*(
        client.send(type_, request_id=f"one-{i}", **fields)
        for i, (type_, fields) in enumerate(requests)
    ))
    replies = [await client.response(rid, TIMEOUT) for rid in request_ids]
    await client.request("Ping", request_id="sentinel", timeout=TIMEOUT)
    await asyncio.sleep(0.3)
    counted = Counter(f.get("request_id") for f in client.frames if f.get("request_id"))
    assert all(counted[rid] == 1 for rid in request_ids), counted
    expected = {"SendMessage": "ActionConfirmed", "EditMessage": "ActionConfirmed",
                "DeleteMessage": "ActionConfirmed", "JoinConversation": "ActionConfirmed",
                "FetchHistory": "HistoryChunk", "Ping": "Pong"}
    for (type_, fields), reply in zip(requests, replies, strict=True):
        if fields.get("message_id") == MISSING:
            assert reply["type"] == "Error"
        else:
            assert reply["type"] == expected[type_], (type_, reply)
    for broadcast in ("NewMessage", "MessageEdited", "MessageDeleted"):
        assert client.all(broadcast), broadcast
        assert all("request_id" not in f for f in client.all(broadcast))


async def test_a_response_without_request_id_carries_null(server: RunningServer) -> None:
    """A message sent without `request_id` is answered with `request_id: null`."""
    client = await server.connect(server.user())
    await client.send_raw(frame(type="Ping", timestamp="x"))
    pong = await client.expect("Pong", timeout=TIMEOUT)
    assert "request_id" in pong
    assert pong["request_id"] is None


async def test_unknown_fields_are_ignored(server: RunningServer) -> None:
    """Fields the server does not know are ignored, not refused (forward compatibility)."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "hi", future_field={"x": 1}, priority="high")
    assert message["content"] == "hi"
    assert "future_field" not in message


async def test_text_that_merely_spells_an_escape_is_stored(server: RunningServer) -> None:
    """Only a real U+0000 is refused: the six characters `\\u0000` are ordinary text."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "C strings end with \\u0000")
    assert message["content"] == "C strings end with \\u0000"
    assert (await all_messages(client, room["id"]))[0]["content"] == message["content"]


async def test_request_ids_are_echoed_verbatim(server: RunningServer) -> None:
    """Any string up to 64 characters comes back unchanged, unicode included."""
    client = await server.connect(server.user())
    for request_id in ("", "x" * 64, "日本語-🙂", "with \"quotes\" and \\"):
        reply = await client.request("Ping", request_id=request_id)
        assert reply["type"] == "Pong"
        assert reply["request_id"] == request_id
