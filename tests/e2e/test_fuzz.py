"""Property-based fuzzing of a live connection (PROTOCOL.md §2): thousands of random and
mutated frames on one WebSocket. Every frame gets exactly one direct response, none of them
an INTERNAL_ERROR (an unhandled exception), the connection stays open, and the store holds
exactly what was confirmed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubbub.domain.models import Message
from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")

DIRECT = {"ActionConfirmed", "Error", "HistoryChunk", "SearchResults", "SyncChunk", "Pong"}
FIELDS: dict[str, list[str]] = {
    "SendMessage": ["conversation_id", "content", "parent_id", "attachments",
                    "client_message_id"],
    "EditMessage": ["message_id", "content"],
    "DeleteMessage": ["message_id"],
    "JoinConversation": ["conversation_id"],
    "LeaveConversation": ["conversation_id"],
    "FetchHistory": ["conversation_id", "before", "limit"],
    "SearchMessages": ["query", "conversation_id", "limit"],
    "SyncMessages": ["conversation_id", "since_version", "since", "limit"],
    "Typing": ["conversation_id", "is_typing"],
    "MarkAsRead": ["conversation_id", "message_id"],
    "MarkAsDelivered": ["conversation_id", "message_id"],
    "AddReaction": ["message_id", "emoji"],
    "RemoveReaction": ["message_id", "emoji"],
    "CallOffer": ["conversation_id", "call_id", "sdp", "call_type", "target_user_id"],
    "CallAnswer": ["call_id", "sdp"],
    "ICECandidate": ["call_id", "candidate"],
    "CallHangup": ["call_id", "reason"],
    "CallReject": ["call_id", "reason"],
    "Ping": ["timestamp"],
}


@dataclass
class Target:
    """The fuzzed connection, the room it writes in and a message to aim edits at."""

    server: RunningServer
    user: User
    client: ChatClient
    room: str
    seed: dict[str, Any]
    confirmed_sends: set[str] = field(default_factory=set)
    touched_seed: bool = False


@pytest_asyncio.fixture(loop_scope="session")
async def target(server: RunningServer) -> AsyncIterator[Target]:
    user = server.user("fuzzer")
    room = (await server.create_conversation(user, name="fuzz"))["id"]
    client = await joined(server, user, room)
    seed = await send(client, room, "the seed")
    yield Target(server, user, client, room, seed)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=6)
texts = st.text(min_size=1, max_size=60)
hostile_texts = st.sampled_from(
    ["", " ", "\x00", "a\x00b", "%_\\", "' OR 1=1 --", "💬" * 40, "x" * 4000, "x" * 4001,
     "\u202e\ufeff", "<script>", "x" * 70, "x" * 201, "x" * 2049])


def _valid(name: str, target: Target) -> st.SearchStrategy[Any]:
    attachment = st.fixed_dictionaries(
        {"url": st.just("https://f.example/a.png"), "name": texts,
         "mime_type": st.just("image/png"), "size": st.integers(0, 10**9)},
        optional={"width": st.integers(0, 4000), "thumbnail_url": st.just("http://f.example/t")})
    return {
        "conversation_id": st.just(target.room), "message_id": st.just(target.seed["id"]),
        "parent_id": st.one_of(st.none(), st.just(target.seed["id"])),
        "call_id": st.uuids().map(str), "target_user_id": st.just(target.user.id),
        "content": texts, "query": texts, "sdp": texts, "reason": texts,
        "emoji": st.text(min_size=1, max_size=32), "client_message_id": texts,
        "attachments": st.lists(attachment, max_size=3),
        "before": st.integers(0, 2**40), "since_version": st.integers(0, 2**40),
        "limit": st.integers(1, 100), "since": st.just("2026-01-01T00:00:00Z"),
        "is_typing": st.booleans(), "call_type": st.sampled_from(["audio", "video"]),
        "candidate": st.one_of(texts, st.fixed_dictionaries({"candidate": texts})),
        "timestamp": st.one_of(st.integers(0, 2**40), texts),
    }[name]


def _hostile(name: str, target: Target) -> st.SearchStrategy[Any]:
    ids = st.sampled_from([target.user.id, str(uuid.uuid4()), target.room.upper(), "not-a-uuid",
                           target.room + " ", ""])
    if name.endswith("_id") and name != "client_message_id":
        return st.one_of(ids, json_values)
    return st.one_of(hostile_texts, st.integers(-(2**70), 2**70), json_values, st.lists(
        st.fixed_dictionaries({"url": st.sampled_from(["javascript:alert(1)", "x", ""]),
                               "name": hostile_texts, "mime_type": st.just("bad"),
                               "size": st.integers(-1, 2**64)}), max_size=12))


@st.composite
def frames(draw: st.DrawFn, target: Target) -> str | bytes:
    """One frame. Hypothesis favours small choices, so the common case comes first: a valid
    message aimed at the fuzz room (0–4), one field hostile, dropped, or an unknown field
    added (5–7), a broken envelope (8), or not a message at all (9)."""
    mode = draw(st.integers(0, 9))
    if mode == 9:
        return draw(st.one_of(json_values.map(json.dumps), st.text(max_size=80),
                              st.binary(max_size=40)))
    kind = draw(st.sampled_from(sorted(FIELDS)))
    body: dict[str, Any] = {"type": kind}
    for name in FIELDS[kind]:
        body[name] = draw(_valid(name, target))
    body["request_id"] = draw(st.text(max_size=64))
    if 5 <= mode <= 7:
        name = draw(st.sampled_from([*FIELDS[kind], "request_id", "extra"]))
        action = draw(st.sampled_from(["hostile", "drop"]))
        if name == "extra":
            body[draw(st.text(max_size=10))] = draw(json_values)
        elif action == "drop":
            body.pop(name)
        else:
            body[name] = draw(_hostile(name, target))
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if mode == 8:
        how = draw(st.sampled_from(["type", "truncate"]))
        if how == "truncate":
            return text[: draw(st.integers(0, len(text) - 1))]
        body["type"] = draw(st.one_of(st.text(max_size=12), json_values))
        return json.dumps(body)
    return text


def direct_responses(client: ChatClient) -> list[dict[str, Any]]:
    return [f for f in client.frames if f["type"] in DIRECT]


FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=st.data())
async def test_fuzzed_frames_are_answered_once_and_store_only_what_was_confirmed(
        target: Target, data: st.DataObject) -> None:
    """After each batch of fuzzed frames: one direct response per frame, no INTERNAL_ERROR,
    the connection open, and the room holding exactly the seed and the confirmed sends."""
    client = target.client
    batch = data.draw(st.lists(frames(target), min_size=40, max_size=60), label="frames")
    before = len(direct_responses(client))
    for frame in batch:
        await client.send_raw(frame)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while len(direct_responses(client)) < before + len(batch):
        assert client.close_code is None, f"closed with {client.close_code}"
        assert loop.time() < deadline, "a frame went unanswered"
        await asyncio.sleep(0.005)
    answers = direct_responses(client)[before:]
    assert len(answers) == len(batch)
    assert not [a for a in answers if a.get("code") == "INTERNAL_ERROR"], answers
    for answer in answers:
        if answer["type"] != "ActionConfirmed":
            continue
        message = answer.get("message") or {}
        if answer["action"] == "SendMessage":
            target.confirmed_sends.add(message["id"])
        if target.seed["id"] in (message.get("id"), answer.get("message_id")) or \
                answer["action"] in ("AddReaction", "RemoveReaction"):
            target.touched_seed = True
    assert client.close_code is None
    stored = await stored_messages(target)
    assert set(stored) == target.confirmed_sends | {target.seed["id"]}
    if not target.touched_seed:
        seed = stored[target.seed["id"]]
        assert (seed.version, seed.content) == (target.seed["version"], target.seed["content"])


async def stored_messages(target: Target) -> dict[str, Message]:
    """Every message of the fuzz room, read from the server's store (no HTTP round trips)."""
    store = target.server.internals.store
    found: dict[str, Message] = {}
    before: int | None = None
    while True:
        page = await store.history(target.room, before, 100)
        found.update((m.id, m) for m in page.messages)
        if not page.has_more or not page.messages:
            return found
        before = page.messages[0].seq
