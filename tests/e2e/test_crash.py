"""Durability: a server killed with SIGKILL mid-traffic loses no acknowledged message, and
retries after the restart never duplicate one (ARCHITECTURE.md, send path step 4)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import Backend
from tests.support.client import ChatClient
from tests.support.flows import all_messages, rest_messages
from tests.support.process import ServerProcess, database_url, serving
from tests.support.server import User

pytestmark = pytest.mark.asyncio(loop_scope="session")

SENDERS = 4
WORKERS_PER_SENDER = 4
# Kill once this many sends were acknowledged: enough that the kill lands mid-traffic.
ACKS_BEFORE_KILL = 150
TIMEOUT = 30.0


@pytest_asyncio.fixture(loop_scope="session")
async def process(backend: Backend, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """A `hubbub serve` child process on its own SQLite file (or the test PostgreSQL)."""
    url = database_url(backend, tmp_path, "crash.db")
    async with serving(ServerProcess(database_url=url, workdir=tmp_path)) as server:
        yield server


class Sender:
    """One user sending from one connection with several requests in flight, recording
    every acknowledged message and every request that never got an answer."""

    def __init__(self, client: ChatClient, conversation_id: str, tag: str) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.tag = tag
        self.acked: dict[str, dict[str, Any]] = {}  # client_message_id → message
        self.unanswered: set[str] = set()
        self._next = 0

    def content(self, key: str) -> str:
        return f"content of {key}"

    async def worker(self, acked_total: list[int], stop: asyncio.Event) -> None:
        while not stop.is_set():
            key = f"{self.tag}-{self._next}"
            self._next += 1
            self.unanswered.add(key)
            try:
                reply = await self.client.request(
                    "SendMessage", conversation_id=self.conversation_id,
                    content=self.content(key), client_message_id=key, timeout=TIMEOUT,
                )
            except AssertionError:
                return  # the server is gone: this request may or may not have committed
            assert reply["type"] == "ActionConfirmed", reply
            self.unanswered.discard(key)
            self.acked[key] = reply["message"]
            acked_total[0] += 1


async def test_sigkill_loses_no_acknowledged_message(process: ServerProcess) -> None:
    """Every message confirmed before a SIGKILL is in history after the restart, exactly
    once; retrying every key afterwards adds each unconfirmed one at most once."""
    owner = process.user("owner")
    await process.connect(owner)  # the server learns the user
    async with process.http(owner) as http:
        created = await http.post("/api/v1/conversations",
                                  json={"kind": "channel", "name": "durable"})
    assert created.status_code == 201, created.text
    room = created.json()["id"]

    users: list[User] = [process.user(f"sender-{i}") for i in range(SENDERS)]
    senders: list[Sender] = []
    for i, user in enumerate(users):
        client = await process.connect(user)
        joined = await client.request("JoinConversation", conversation_id=room, timeout=TIMEOUT)
        assert joined["type"] == "ActionConfirmed", joined
        senders.append(Sender(client, room, f"s{i}"))

    acked_total = [0]
    stop = asyncio.Event()
    workers = [asyncio.ensure_future(sender.worker(acked_total, stop))
               for sender in senders for _ in range(WORKERS_PER_SENDER)]
    deadline = asyncio.get_running_loop().time() + 120
    while acked_total[0] < ACKS_BEFORE_KILL:
        assert asyncio.get_running_loop().time() < deadline, process.log_tail()
        assert not any(w.done() for w in workers), [w.exception() for w in workers
                                                     if w.done()]
        await asyncio.sleep(0.01)

    await process.kill()
    stop.set()
    done, pending = await asyncio.wait(workers, timeout=TIMEOUT)
    assert not pending, "workers still waiting after the kill"
    for task in done:
        task.result()
    await process.close_clients()

    await process.start()
    reader = await process.connect(owner)
    history = await all_messages(reader, room)
    ids = [m["id"] for m in history]
    assert len(ids) == len(set(ids)), "a message is stored twice"
    keys = [(m["sender_id"], m["client_message_id"]) for m in history]
    assert len(keys) == len(set(keys)), "a client_message_id is stored twice"
    stored = {m["id"]: m for m in history}
    acked = [message for sender in senders for message in sender.acked.values()]
    assert len(acked) >= ACKS_BEFORE_KILL
    assert any(sender.unanswered for sender in senders), "the kill did not land mid-traffic"
    missing = [m for m in acked if m["id"] not in stored]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[0]}"
    for message in acked:
        assert stored[message["id"]] == message
    assert await rest_messages(process, owner, room) == history

    # Retry every key, as clients reconnecting after lost acks would: acknowledged ones
    # return the stored message, unanswered ones are stored at most once.
    for sender, user in zip(senders, users, strict=True):
        client = await process.connect(user)
        await client.request("JoinConversation", conversation_id=room, timeout=TIMEOUT)
        for key in sorted(sender.acked) + sorted(sender.unanswered):
            reply = await client.request("SendMessage", conversation_id=room,
                                         content=sender.content(key), client_message_id=key,
                                         timeout=TIMEOUT)
            assert reply["type"] == "ActionConfirmed", reply
            if key in sender.acked:
                assert reply["message"] == sender.acked[key]
    after = await all_messages(reader, room)
    keys_after = [(m["sender_id"], m["client_message_id"]) for m in after]
    assert len(keys_after) == len(set(keys_after))
    expected = sum(len(s.acked) + len(s.unanswered) for s in senders)
    assert len(after) == expected
    with contextlib.suppress(Exception):
        await reader.close()
