"""Three instances on one PostgreSQL and one Redis behave as one server (docs/ARCHITECTURE.md):
every event reaches every subscribed connection exactly once and in version order,
whichever instance committed it, and everything that must be global is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio
from redis import asyncio as aioredis

from hubbub.client import AuthenticationError, HandshakeFailed, Socket
from tests.support.across import assert_pings_limited, assert_presence_counted
from tests.support.client import ChatClient
from tests.support.cluster import Cluster, postgres_database, run_cluster
from tests.support.flows import TIMEOUT, assert_error, joined, send, set_role
from tests.support.process import ServerProcess
from tests.support.server import RunningServer, User
from tests.support.services import REDIS_URL, check_redis

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHANGE_EVENTS = ("NewMessage", "MessageEdited", "MessageDeleted", "ReactionAdded",
                 "ReactionRemoved")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database() -> AsyncIterator[str]:
    """One PostgreSQL database for this module's clusters."""
    async with postgres_database() as db:
        yield db.url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_cluster(database: str) -> AsyncIterator[Cluster]:
    async with run_cluster(database, 3, rate_limits=False) as cluster:
        yield cluster


@pytest_asyncio.fixture(loop_scope="session")
async def cluster(shared_cluster: Cluster) -> AsyncIterator[Cluster]:
    """Three instances without rate limits; each test's connections close after it."""
    yield shared_cluster
    await shared_cluster.close_clients()


# -- volume: exactly once, in order ---------------------------------------------------------


def change_version(frame: dict[str, Any]) -> int:
    if frame["type"] in ("NewMessage", "MessageEdited"):
        return int(frame["message"]["version"])
    return int(frame["version"])


def change_key(frame: dict[str, Any]) -> tuple[str, str, int]:
    """(type, message id, version): what identifies one change event."""
    message_id = frame["message"]["id"] if "message" in frame else frame["message_id"]
    return frame["type"], message_id, change_version(frame)


class Peer:
    """A connection that answers requests by id and files change events per conversation,
    cheaply enough for thousands of frames (the general test client rescans its frames)."""

    _ids = itertools.count()

    def __init__(self, socket: Socket, session: aiohttp.ClientSession) -> None:
        self._socket, self._session = socket, session
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.events: dict[str, list[tuple[str, str, int]]] = {}
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, instance: RunningServer | ServerProcess, user: User) -> Peer:
        session = aiohttp.ClientSession()
        try:
            socket = await Socket.open(session, f"{instance.ws_url}?token={user.token}", None)
            first = await asyncio.wait_for(socket.receive_text(), TIMEOUT)
            assert first is not None, socket.close_code
            assert json.loads(first)["type"] == "Connected", first
        except BaseException:
            await session.close()
            raise
        return cls(socket, session)

    async def _read(self) -> None:
        while (raw := await self._socket.receive_text()) is not None:
            frame = json.loads(raw)
            future = self._pending.pop(frame.get("request_id") or "", None)
            if future is not None:
                future.set_result(frame)
            elif frame["type"] in CHANGE_EVENTS:
                conversation_id = (frame["message"]["conversation_id"]
                                   if "message" in frame else frame["conversation_id"])
                self.events.setdefault(conversation_id, []).append(change_key(frame))
                self._changed.set()

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        request_id = f"p{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        assert await self._socket.send_text(
            json.dumps({"type": type_, "request_id": request_id, **fields}))
        return await asyncio.wait_for(future, TIMEOUT)

    async def wait_for_events(self, counts: dict[str, int], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while any(len(self.events.get(c, [])) < n for c, n in counts.items()):
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def close(self) -> None:
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._session.close()


ROOMS = 2
SENDERS_PER_INSTANCE = 3
ACTIONS_PER_SENDER = 340  # 3 × 3 × 340 ≈ 3000 changes; every fifth one an edit
IN_FLIGHT_PER_SENDER = 8
VOLUME_DEADLINE_S = 30.0


async def test_every_change_reaches_every_connection_once_in_version_order(
        cluster: Cluster) -> None:
    """Thousands of sends and edits committed on three instances at once reach each
    subscribed connection, on every instance, exactly once and in version order."""
    owner = cluster.user("owner")
    rooms = [(await cluster[0].create_conversation(owner, name=f"volume-{n}"))["id"]
             for n in range(ROOMS)]
    senders: list[Peer] = []
    watchers: list[Peer] = []
    watcher = cluster.user("watcher")  # one user, a connection on each instance
    for index in range(len(cluster)):
        for _ in range(SENDERS_PER_INSTANCE):
            senders.append(await Peer.open(cluster[index], cluster.user()))
        watchers.append(await Peer.open(cluster[index], watcher))
    peers = senders + watchers
    try:
        for peer in peers:
            for room in rooms:
                reply = await peer.request("JoinConversation", conversation_id=room)
                assert reply["type"] == "ActionConfirmed", reply

        acked: dict[str, set[tuple[str, str, int]]] = {room: set() for room in rooms}
        started = time.perf_counter()

        async def work(peer: Peer, lane: int) -> None:
            own: list[tuple[str, str]] = []
            for n in range(lane, ACTIONS_PER_SENDER, IN_FLIGHT_PER_SENDER):
                room = rooms[n % ROOMS]
                if n % 5 == 4 and own:
                    room, message_id = own[n % len(own)]
                    reply = await peer.request("EditMessage", message_id=message_id,
                                               content=f"edit {n}")
                else:
                    reply = await peer.request("SendMessage", conversation_id=room,
                                               content=f"message {n}")
                assert reply["type"] == "ActionConfirmed", reply
                message = reply["message"]
                own.append((room, message["id"]))
                kind = "NewMessage" if reply["action"] == "SendMessage" else "MessageEdited"
                acked[room].add((kind, message["id"], message["version"]))

        await asyncio.gather(*(work(peer, lane) for peer in senders
                               for lane in range(IN_FLIGHT_PER_SENDER)))
        committed_in = time.perf_counter() - started
        deadline = asyncio.get_running_loop().time() + VOLUME_DEADLINE_S
        expected = {room: len(changes) for room, changes in acked.items()}
        await asyncio.gather(*(peer.wait_for_events(expected, deadline) for peer in peers))
        delivered_in = time.perf_counter() - started

        stats = [instance.internals.hub.order_stats for instance in cluster.instances]
        report = (f"{sum(expected.values())} changes committed in {committed_in:.1f} s, "
                  f"delivered to {len(peers)} connections in {delivered_in:.1f} s; "
                  f"order: held {sum(s.held for s in stats)}, "
                  f"skipped {sum(s.skipped_versions for s in stats)}, "
                  f"late {sum(s.late_dropped for s in stats)}, "
                  f"longest hold {max(s.max_wait for s in stats) * 1000:.1f} ms")
        print(report)
        assert sum(expected.values()) >= 3000
        for peer in peers:
            for room in rooms:
                received = peer.events.get(room, [])
                duplicates = [k for k, n in Counter(received).items() if n > 1]
                assert not duplicates, (duplicates[:5], report)
                assert set(received) == acked[room], (
                    f"missing {len(acked[room] - set(received))}, "
                    f"unexpected {len(set(received) - acked[room])}; {report}")
                versions = [version for _, _, version in received]
                assert versions == sorted(versions), report
                assert versions == list(range(versions[0], versions[0] + len(versions)))
    finally:
        for peer in peers:
            await peer.close()


PROCESS_SENDERS_PER_INSTANCE = 2
PROCESS_MESSAGES_PER_SENDER = 300


async def test_version_order_holds_across_separate_processes(database: str,
                                                            tmp_path: Path) -> None:
    """With three `hubbub serve` processes committing into one conversation in parallel
    (where publishes really cross on Redis), every connection still gets every change once,
    in consecutive version order."""
    secret = "multi-process-test-secret-long-enough-for-hs256"
    prefix = await check_redis()
    processes: list[ServerProcess] = []
    peers: list[Peer] = []
    try:
        for index in range(3):
            workdir = tmp_path / f"instance-{index}"
            workdir.mkdir()
            process = ServerProcess(database_url=database, workdir=workdir, jwt_secret=secret,
                                    extra_env={"HUBBUB_REDIS_URL": REDIS_URL,
                                               "HUBBUB_REDIS_PREFIX": prefix})
            await process.start()
            processes.append(process)
        owner = processes[0].user("owner")
        async with processes[0].http(owner) as http:
            response = await http.post("/api/v1/conversations",
                                       json={"kind": "channel", "name": "processes"})
        room = response.json()["id"]
        senders = [await Peer.open(process, process.user())
                   for process in processes for _ in range(PROCESS_SENDERS_PER_INSTANCE)]
        watchers = [await Peer.open(process, process.user()) for process in processes]
        peers = senders + watchers
        for peer in peers:
            assert (await peer.request("JoinConversation", conversation_id=room))[
                "type"] == "ActionConfirmed"
        acked: set[tuple[str, str, int]] = set()

        async def lane(peer: Peer, offset: int) -> None:
            for n in range(offset, PROCESS_MESSAGES_PER_SENDER, 4):
                reply = await peer.request("SendMessage", conversation_id=room,
                                           content=f"m{n}")
                assert reply["type"] == "ActionConfirmed", reply
                message = reply["message"]
                acked.add(("NewMessage", message["id"], message["version"]))

        await asyncio.gather(*(lane(peer, offset) for peer in senders for offset in range(4)))
        deadline = asyncio.get_running_loop().time() + VOLUME_DEADLINE_S
        await asyncio.gather(*(p.wait_for_events({room: len(acked)}, deadline) for p in peers))
        for peer in peers:
            received = peer.events.get(room, [])
            assert len(received) == len(set(received)), "a change arrived twice"
            assert set(received) == acked
            versions = [version for _, _, version in received]
            assert versions == list(range(versions[0], versions[0] + len(versions)))
        held = []
        for process in processes:
            async with process.http() as http:
                text = (await http.get("/metrics")).text
            held += [line.rsplit(" ", 1)[1] for line in text.splitlines()
                     if line.startswith('hubbub_order_events_total{outcome="held"}')]
        print(f"{len(acked)} messages from three processes; held early per instance: {held}")
    finally:
        for peer in peers:
            await peer.close()
        for process in processes:
            await process.stop()


# -- the features, across instances ---------------------------------------------------------


async def room_across(cluster: Cluster, *names: str) -> tuple[str, list[User],
                                                             list[ChatClient]]:
    """A channel and one member per name, member n connected to instance n % 3 and
    subscribed."""
    users = [cluster.user(name) for name in names]
    room = (await cluster[0].create_conversation(users[0], name="across"))["id"]
    clients = [await joined(cluster[n % len(cluster)], user, room)
               for n, user in enumerate(users)]
    return room, users, clients


async def test_reactions_reach_other_instances(cluster: Cluster) -> None:
    """A reaction added on one instance reaches subscribers on the others with its
    version."""
    room, _, (alice, bob, carol) = await room_across(cluster, "alice", "bob", "carol")
    message = await send(alice, room, "react to me")
    reply = await bob.request("AddReaction", message_id=message["id"], emoji="👍",
                              timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    added = await carol.expect("ReactionAdded", timeout=TIMEOUT, message_id=message["id"])
    assert added["emoji"] == "👍"
    assert added["version"] == message["version"] + 1
    assert (await alice.expect("ReactionAdded", timeout=TIMEOUT))["version"] == added["version"]


async def test_read_receipts_reach_other_instances(cluster: Cluster) -> None:
    """MarkAsRead on one instance is broadcast to subscribers on the others."""
    room, users, (alice, bob, carol) = await room_across(cluster, "alice", "bob", "carol")
    message = await send(alice, room, "read me")
    reply = await bob.request("MarkAsRead", conversation_id=room, message_id=message["id"],
                              timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    for client in (alice, carol):
        read = await client.expect("MessageRead", timeout=TIMEOUT, message_id=message["id"])
        assert read["user_id"] == users[1].id


async def test_delivery_receipts_reach_other_instances(cluster: Cluster) -> None:
    """MarkAsDelivered on one instance is broadcast to subscribers on the others."""
    room, users, (alice, bob, _) = await room_across(cluster, "alice", "bob", "carol")
    message = await send(alice, room, "deliver me")
    reply = await bob.request("MarkAsDelivered", conversation_id=room,
                              message_id=message["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    delivered = await alice.expect("MessageDelivered", timeout=TIMEOUT,
                                   message_id=message["id"])
    assert delivered["user_id"] == users[1].id


async def test_typing_reaches_other_instances_but_not_the_typist(cluster: Cluster) -> None:
    """UserTyping goes to the other subscribers, wherever they are, and not back."""
    room, users, (alice, bob, carol) = await room_across(cluster, "alice", "bob", "carol")
    reply = await alice.request("Typing", conversation_id=room, is_typing=True,
                                timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    for client in (bob, carol):
        typing = await client.expect("UserTyping", timeout=TIMEOUT, user_id=users[0].id)
        assert typing["is_typing"] is True
    await alice.expect_none("UserTyping", within=0.3)


async def typing_across(cluster: Cluster) -> tuple[str, list[ChatClient], list[ChatClient]]:
    """A room where alice is connected through instances 0 and 1, and bob and carol watch
    from instances 2 and 0."""
    alice, bob, carol = cluster.user("alice"), cluster.user("bob"), cluster.user("carol")
    room = (await cluster[0].create_conversation(alice, name="typing"))["id"]
    tabs = [await joined(cluster[0], alice, room), await joined(cluster[1], alice, room)]
    watchers = [await joined(cluster[2 % len(cluster)], bob, room),
                await joined(cluster[0], carol, room)]
    return room, tabs, watchers


async def set_typing(client: ChatClient, room: str, is_typing: bool) -> None:
    reply = await client.request("Typing", conversation_id=room, is_typing=is_typing,
                                 timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply


async def test_a_user_typing_through_two_instances_has_one_state(cluster: Cluster) -> None:
    """Typing through a second instance only refreshes the state (no second start), and a
    stop sent through either instance ends it for everyone, once."""
    room, tabs, watchers = await typing_across(cluster)
    await set_typing(tabs[0], room, True)
    await set_typing(tabs[1], room, True)
    for watcher in watchers:
        await watcher.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    await set_typing(tabs[1], room, False)
    for watcher in watchers:
        await watcher.expect("UserTyping", timeout=TIMEOUT, is_typing=False)
    await set_typing(tabs[0], room, False)  # already ended: confirmed, silent
    await asyncio.sleep(0.3)
    for watcher in watchers:
        assert [f["is_typing"] for f in watcher.all("UserTyping")] == [True, False]


async def test_typing_ends_when_its_last_holder_anywhere_closes(cluster: Cluster) -> None:
    """A state refreshed through two instances survives one connection closing and ends
    when the other closes."""
    room, tabs, watchers = await typing_across(cluster)
    await set_typing(tabs[0], room, True)
    await set_typing(tabs[1], room, True)
    await watchers[0].expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    await tabs[0].close()
    await watchers[0].expect_none("UserTyping", within=0.4, is_typing=False)
    await tabs[1].close()
    for watcher in watchers:
        await watcher.expect("UserTyping", timeout=TIMEOUT, is_typing=False)
    await asyncio.sleep(0.3)
    for watcher in watchers:
        assert [f["is_typing"] for f in watcher.all("UserTyping")] == [True, False]


async def test_typing_expires_once_after_the_last_refresh_anywhere(database: str) -> None:
    """The expiry follows the latest refresh, whichever instance it came through, and is
    announced once although both instances keep a timer for the state."""
    timeout = 1.0
    async with run_cluster(database, 3, rate_limits=False, typing_timeout=timeout) as quick:
        room, tabs, watchers = await typing_across(quick)
        loop = asyncio.get_running_loop()
        await set_typing(tabs[0], room, True)
        await watchers[0].expect("UserTyping", timeout=TIMEOUT, is_typing=True)
        await asyncio.sleep(timeout * 0.6)
        refreshed = loop.time()
        await set_typing(tabs[1], room, True)
        for watcher in watchers:
            await watcher.expect("UserTyping", timeout=TIMEOUT + timeout, is_typing=False)
        assert loop.time() - refreshed >= timeout * 0.95
        await asyncio.sleep(timeout)  # both instances' timers have fired by now
        for watcher in watchers:
            assert [f["is_typing"] for f in watcher.all("UserTyping")] == [True, False]
        assert [instance.internals.typing.active for instance in quick.instances] == [0, 0, 0]


async def test_typing_lost_with_redis_still_ends(database: str) -> None:
    """A typing state Redis lost (restarted empty) is still ended at its timeout: the
    watchers are not left with an indicator nobody will turn off."""
    timeout = 1.0
    async with run_cluster(database, 3, rate_limits=False, typing_timeout=timeout) as quick:
        room, tabs, watchers = await typing_across(quick)
        await set_typing(tabs[0], room, True)
        typist = (await watchers[0].expect("UserTyping", timeout=TIMEOUT,
                                           is_typing=True))["user_id"]
        redis = aioredis.from_url(quick.redis_url)
        try:
            assert await redis.delete(f"{quick.redis_prefix}:typing:{room}:{typist}") == 1
        finally:
            await redis.aclose()
        for watcher in watchers:
            await watcher.expect("UserTyping", timeout=TIMEOUT + timeout, is_typing=False)
        assert [instance.internals.typing.active for instance in quick.instances] == [0, 0, 0]


async def test_presence_is_counted_across_instances(cluster: Cluster) -> None:
    """A user online on two instances goes offline only when the last connection closes."""
    watcher, dave = cluster.user("watcher"), cluster.user("dave")
    # Made by dave, who thereby accepts it: presence goes through accepted conversations.
    room = (await cluster[0].create_conversation(dave, name="presence",
                                                 members=[watcher]))["id"]
    watching = await joined(cluster[0], watcher, room)
    await assert_presence_counted(watching, dave.id, lambda index: cluster.connect(index, dave))


async def test_a_ban_on_one_instance_applies_on_the_others(cluster: Cluster) -> None:
    """Every instance's role cache forgets a banned member: once instance 1 has heard the
    ban made through instance 0, bob's next send there is refused and its broadcasts stop."""
    owner, bob, dave = cluster.user("owner"), cluster.user("bob"), cluster.user("dave")
    room = (await cluster[0].create_conversation(owner, name="ban",
                                                 members=[bob, dave]))["id"]
    owner_client = await joined(cluster[0], owner, room)
    bob_client = await joined(cluster[1], bob, room)
    dave_client = await joined(cluster[1], dave, room)
    await send(bob_client, room, "role cached on instance 1")
    await bob_client.expect("NewMessage", timeout=TIMEOUT)
    await dave_client.expect("NewMessage", timeout=TIMEOUT)
    assert await set_role(cluster[0], owner, room, bob, "banned") == 200
    # Instance 0 publishes the ban, then this message, on one connection: Redis hands them
    # to instance 1 in that order, so when dave sees the message, instance 1 knows the ban.
    marker = await send(owner_client, room, "after the ban")
    assert (await dave_client.expect("NewMessage", timeout=TIMEOUT))["message"]["id"] == (
        marker["id"])
    reply = await bob_client.request("SendMessage", conversation_id=room, content="refused",
                                     timeout=TIMEOUT)
    assert_error(reply, "FORBIDDEN", request_id=reply["request_id"])
    await bob_client.expect_none("NewMessage", within=0.3)


async def test_a_ticket_from_one_instance_opens_a_socket_on_another(cluster: Cluster) -> None:
    """A ws-ticket issued by one instance is redeemed by another, once."""
    alice = cluster.user("alice")
    async with cluster[0].http(alice) as http:
        response = await http.post("/api/v1/ws-tickets")
    assert response.status_code == 201, response.text
    ticket = response.json()["ticket"]
    redeemed = await ChatClient.open(f"{cluster[1].ws_url}?ticket={ticket}")
    await redeemed.close()
    assert redeemed.connected["user_id"] == alice.id
    with pytest.raises(AuthenticationError) as refused:
        await ChatClient.open(f"{cluster[2].ws_url}?ticket={ticket}")
    assert refused.value.status == 401


OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
ANSWER_SDP = OFFER_SDP.replace("o=- 1 1", "o=- 2 1")


async def test_a_call_rings_and_is_answered_across_instances(cluster: Cluster) -> None:
    """A call offered on one instance rings the callee on another, and the answer and
    hangup come back across."""
    alice, bob = cluster.user("alice"), cluster.user("bob")
    direct = await cluster[0].create_conversation(alice, kind="direct", members=[bob])
    a, b = await cluster.connect(0, alice), await cluster.connect(2, bob)
    call_id = "5b1f0c9e-2a34-4e8b-9c1d-7f6a5e4d3c2b"
    reply = await a.request("CallOffer", conversation_id=direct["id"], call_id=call_id,
                            sdp=OFFER_SDP, call_type="audio", timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    offer = await b.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    assert offer["from_user_id"] == alice.id
    reply = await b.request("CallAnswer", call_id=call_id, sdp=ANSWER_SDP, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    answer = await a.expect("CallAnswer", timeout=TIMEOUT, call_id=call_id)
    assert answer["from_user_id"] == bob.id
    reply = await a.request("CallHangup", call_id=call_id, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await b.expect("CallHangup", timeout=TIMEOUT, call_id=call_id)


async def test_the_callers_signalling_reaches_the_answering_device_across_instances(
        cluster: Cluster) -> None:
    """The callee's phone and laptop are on two instances: once the phone answered, the
    caller's candidates and renegotiation (from a third) reach the phone only."""
    alice, bob = cluster.user("alice"), cluster.user("bob")
    direct = await cluster[0].create_conversation(alice, kind="direct", members=[bob])
    a = await cluster.connect(0, alice)
    phone, laptop = await cluster.connect(1, bob), await cluster.connect(2, bob)
    call_id = "0c7e2b9a-41d3-4f6e-8a5b-3d2c1b0a9f8e"
    offer = {"conversation_id": direct["id"], "call_id": call_id, "sdp": OFFER_SDP,
             "call_type": "audio"}
    assert (await a.request("CallOffer", timeout=TIMEOUT, **offer))["type"] == "ActionConfirmed"
    for device in (phone, laptop):
        await device.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    reply = await phone.request("CallAnswer", call_id=call_id, sdp=ANSWER_SDP, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await laptop.expect("CallHangup", timeout=TIMEOUT, reason="answered_elsewhere")
    await a.expect("CallAnswer", timeout=TIMEOUT, call_id=call_id)
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    for type_, fields in (("ICECandidate", {"call_id": call_id, "candidate": candidate}),
                          ("CallOffer", offer)):
        reply = await a.request(type_, timeout=TIMEOUT, **fields)
        assert reply["type"] == "ActionConfirmed", reply
        await phone.expect(type_, timeout=TIMEOUT, call_id=call_id)
    await laptop.expect_none("ICECandidate")
    await laptop.expect_none("CallOffer", within=0.0)


async def test_a_ban_ends_the_call_once_across_instances(cluster: Cluster) -> None:
    """Every instance hears the ban; exactly one `CallHangup{reason:"removed"}` reaches
    each party."""
    alice, bob, carol = cluster.user("alice"), cluster.user("bob"), cluster.user("carol")
    group = await cluster[0].create_conversation(alice, kind="group", name="g",
                                                 members=[bob, carol])
    b, c = await cluster.connect(1, bob), await cluster.connect(2, carol)
    call_id = "7d9a3c1e-5b2f-4a8d-9e6c-1f0b2a3c4d5e"
    reply = await b.request("CallOffer", conversation_id=group["id"], call_id=call_id,
                            sdp=OFFER_SDP, call_type="audio", target_user_id=carol.id,
                            timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await c.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    reply = await c.request("CallAnswer", call_id=call_id, sdp=ANSWER_SDP, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await b.expect("CallAnswer", timeout=TIMEOUT, call_id=call_id)
    assert await set_role(cluster[0], alice, group["id"], carol, "banned") == 200
    for party in (b, c):
        hangup = await party.expect("CallHangup", timeout=TIMEOUT, call_id=call_id)
        assert (hangup["reason"], hangup["from_user_id"]) == ("removed", carol.id)
    await b.expect_none("CallHangup", within=0.5)
    await c.expect_none("CallHangup", within=0.0)


# -- limits counted by all instances together -----------------------------------------------


RATE = 10  # per second, burst RATE: what the whole cluster allows one user
CAP = 3  # open connections per user, for the whole cluster


@pytest_asyncio.fixture(loop_scope="session")
async def limited_cluster(database: str) -> AsyncIterator[Cluster]:
    """Three instances with a small 'other actions' bucket and a small connection cap."""
    async with run_cluster(database, 3, other_rate=float(RATE), other_burst=RATE,
                           max_connections_per_user=CAP, handshake_rate=1000.0,
                           handshake_burst=1000) as cluster:
        yield cluster
        await cluster.close_clients()


async def test_a_rate_limit_of_n_allows_n_across_all_instances(
        limited_cluster: Cluster) -> None:
    """One user pinging through three instances at once gets RATE through in total (plus
    what refills meanwhile), not three times as many."""
    cluster = limited_cluster
    user = cluster.user("pinger")
    clients = [await cluster.connect(index, user) for index in range(len(cluster))]
    await assert_pings_limited(clients, RATE)


async def test_the_connection_cap_counts_every_instance(limited_cluster: Cluster) -> None:
    """With one connection on each of three instances and a cap of three, the next one is
    refused, though no instance holds more than one."""
    cluster = limited_cluster
    alice = cluster.user("alice")
    for index in range(CAP):
        await cluster.connect(index % len(cluster), alice)
    with pytest.raises(HandshakeFailed) as refused:
        await ChatClient.connect(cluster[1].ws_url, alice.token)
    assert refused.value.status == 429


# -- a crashed instance ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def beside_a_process(database: str, tmp_path: Path, size: int
                           ) -> AsyncIterator[tuple[Cluster, ServerProcess]]:
    """`size` in-process instances and one `hubbub serve` process on one database and Redis
    prefix, all with a presence TTL of 1.5 s."""
    async with run_cluster(database, size, rate_limits=False, presence_ttl=1.5) as cluster:
        process = ServerProcess(database_url=database, workdir=tmp_path,
                                jwt_secret=cluster.jwt_secret, extra_env={
                                    "HUBBUB_REDIS_URL": cluster.redis_url,
                                    "HUBBUB_REDIS_PREFIX": cluster.redis_prefix,
                                    "HUBBUB_PRESENCE_TTL": "1.5",
                                })
        await process.start()
        try:
            yield cluster, process
        finally:
            await process.close_clients()
            await process.stop()
            await cluster.close_clients()


async def watch_dave(cluster: Cluster, process: ServerProcess
                     ) -> tuple[ChatClient, User, User, str]:
    """A watcher on instance 0 in a room with dave, once it has seen dave, connected to the
    process, come online. Returns (the watcher's connection, the watcher, dave, the room)."""
    watcher, dave = cluster.user("watcher"), cluster.user("dave")
    # Made by dave, who thereby accepts it: presence goes through accepted conversations.
    room = (await cluster[0].create_conversation(dave, name="presence",
                                                 members=[watcher]))["id"]
    watching = await joined(cluster[0], watcher, room)
    await process.connect(dave)
    online = await watching.expect("PresenceChanged", timeout=TIMEOUT, user_id=dave.id)
    assert online["status"] == "online"
    return watching, watcher, dave, room


async def listed_online(instance: RunningServer, watcher: User, user: User,
                        room: str) -> bool:
    """Whether the room's members listing, as `watcher` reads it, says `user` is online."""
    async with httpx.AsyncClient(base_url=instance.base_url, headers={
            "Authorization": f"Bearer {watcher.token}"}, timeout=TIMEOUT) as http:
        members = (await http.get(f"/api/v1/conversations/{room}/members")).json()
    return bool({m["user_id"]: m["online"] for m in members["members"]}[user.id])


async def test_a_crashed_instance_s_users_go_offline(database: str, tmp_path: Path) -> None:
    """When an instance dies without a goodbye, the survivors announce its users offline
    once its heartbeat expires."""
    async with beside_a_process(database, tmp_path, 2) as (cluster, process):
        watching, watcher, dave, room = await watch_dave(cluster, process)
        await process.kill()
        offline = await watching.expect("PresenceChanged", timeout=TIMEOUT, user_id=dave.id)
        assert offline["status"] == "offline"
        assert await listed_online(cluster[1], watcher, dave, room) is False


async def test_a_stalled_instance_s_users_come_back_online(database: str,
                                                          tmp_path: Path) -> None:
    """An instance frozen past its heartbeat TTL has its users announced offline by the
    others; when it runs again, they are announced online again (their connections never
    closed)."""
    async with beside_a_process(database, tmp_path, 1) as (cluster, process):
        assert process.process is not None
        watching, watcher, dave, room = await watch_dave(cluster, process)
        process.process.send_signal(signal.SIGSTOP)
        try:
            offline = await watching.expect("PresenceChanged", timeout=TIMEOUT,
                                            user_id=dave.id)
            assert offline["status"] == "offline"
        finally:
            process.process.send_signal(signal.SIGCONT)
        back = await watching.expect("PresenceChanged", timeout=TIMEOUT, user_id=dave.id)
        assert back["status"] == "online"
        assert await listed_online(cluster[0], watcher, dave, room) is True
