"""The server API's presence, disconnect and erasure (PROTOCOL.md §8) over real sockets, on
both backends, and across three instances on PostgreSQL and Redis: connections closed
everywhere with 4003, erased content gone from history, sync, search and the rows, the
token refused until the backend re-creates the user; and the API key in no log line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Table, select

from hubbub.adapters.sql.schema import reactions, receipts
from tests.conftest import Backend
from tests.support.client import refused_status
from tests.support.cluster import Cluster, postgres_database, run_cluster
from tests.support.flows import TIMEOUT, all_messages, joined, send
from tests.support.process import for_backend
from tests.support.redis_server import RedisProcess
from tests.support.server import RunningServer
from tests.support.server_api import (
    API_KEY,
    OLD_API_KEY,
    ServerApi,
    assert_api_error,
    made_user,
    new_id,
)
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

Api = ServerApi[RunningServer]


# -- presence and disconnect -----------------------------------------------------------------


async def test_presence_lists_who_of_the_members_is_online(api: Api) -> None:
    online, offline = await made_user(api, "on"), await made_user(api, "off")
    conversation = await api.group(None, [online.id, offline.id])
    await api.instance.connect(online)
    response = await api.presence(conversation["id"])
    assert response.status_code == 200, response.text
    assert response.json()["online"] == [online.id]
    states = {m["user_id"]: m["online"] for m in response.json()["members"]}
    assert states == {online.id: True, offline.id: False}
    assert_api_error(await api.presence(new_id()), 404, "NOT_FOUND")


async def test_disconnect_closes_every_connection_of_the_user_with_4003(
        api: Api) -> None:
    user, other = await made_user(api, "gone"), await made_user(api, "stays")
    clients = [await api.instance.connect(user) for _ in range(2)]
    bystander = await api.instance.connect(other)
    assert (await api.disconnect(user.id)).status_code == 204
    assert [await c.wait_closed(TIMEOUT) for c in clients] == [4003, 4003]
    assert not bystander.closed
    again = await api.instance.connect(user)  # a disconnect is no ban
    assert not again.closed
    assert_api_error(await api.disconnect(new_id()), 404, "NOT_FOUND")


# -- erasure ---------------------------------------------------------------------------------


async def upgrade_status(instance: RunningServer, token: str) -> int:
    return await refused_status(f"{instance.ws_url}?token={token}")


async def test_erase_removes_content_memberships_connections_and_the_token(
        api: Api) -> None:
    instance = api.instance
    owner = await made_user(api, "owner")
    gone = await made_user(api, "gone")
    conversation = await api.group(owner.id, [gone.id])
    cid = conversation["id"]
    watcher = await joined(instance, owner, cid)
    leaving = await joined(instance, gone, cid)
    words = f"secret-{new_id()[:8]}"
    said = await send(leaving, cid, f"my {words}")
    await send(leaving, cid, "to be deleted first")
    kept = await send(watcher, cid, f"owner says {words}")
    before = await watcher.request("SyncMessages", conversation_id=cid, since_version=0)

    assert (await api.erase(gone.id)).status_code == 204
    assert await leaving.wait_closed(TIMEOUT) == 4003
    deleted = await watcher.expect("MessageDeleted", timeout=TIMEOUT, message_id=said["id"])
    assert deleted["version"] > before["last_version"]

    history = {m["id"]: m for m in await all_messages(watcher, cid)}
    assert history[said["id"]]["content"] == ""
    assert history[said["id"]]["deleted_at"]
    assert history[kept["id"]]["content"] == f"owner says {words}"
    sync = await watcher.request("SyncMessages", conversation_id=cid,
                                 since_version=before["last_version"])
    assert {m["id"] for m in sync["messages"]} >= {said["id"]}
    assert all(m["content"] == "" for m in sync["messages"] if m["sender_id"] == gone.id)
    found = await watcher.request("SearchMessages", query=words, conversation_id=cid)
    assert [m["id"] for m in found["messages"]] == [kept["id"]]
    stored = await instance.internals.store.get_message(said["id"])
    assert stored is not None
    assert stored.content == ""

    async with instance.http(owner) as http:
        members = (await http.get(f"/api/v1/conversations/{cid}/members")).json()["members"]
    assert [m["user_id"] for m in members] == [owner.id]
    assert await upgrade_status(instance, gone.token) == 401
    async with instance.http(gone) as http:
        assert (await http.get("/api/v1/users/me")).status_code == 401
    assert_api_error(await api.get_user(gone.id), 404, "NOT_FOUND")
    assert_api_error(await api.put_member(cid, gone.id, role="member"), 404, "NOT_FOUND")
    assert_api_error(await api.create(kind="group", name="g", member_ids=[gone.id]), 404,
                     "NOT_FOUND", "$.member_ids")
    async with instance.http(owner) as http:
        refused = await http.put(f"/api/v1/conversations/{cid}/members/{gone.id}",
                                 json={"role": "member"})
    assert refused.status_code == 404, refused.text

    recreated = await api.put_user(gone.id, name="back")
    assert recreated.status_code == 201, recreated.text
    assert (await instance.connect(gone)).user_id == gone.id


async def stored_rows(instance: RunningServer, table: Table, user_id: str) -> int:
    """How many rows of `table` the database holds for the user (its `user_id` column)."""
    async with instance.internals.database.engine.connect() as conn:
        return len((await conn.execute(select(table).where(
            table.c.user_id == user_id))).all())


async def test_erase_takes_back_reactions_and_receipts(api: Api) -> None:
    instance = api.instance
    owner, gone = await made_user(api, "owner"), await made_user(api, "gone")
    conversation = await api.group(owner.id, [gone.id])
    cid = conversation["id"]
    watcher = await joined(instance, owner, cid)
    leaving = await joined(instance, gone, cid)
    message = await send(watcher, cid, "react to me")
    for emoji in ("👍", "🎉"):
        reply = await leaving.request("AddReaction", message_id=message["id"], emoji=emoji)
        assert reply["type"] == "ActionConfirmed", reply
    assert (await leaving.request("MarkAsDelivered", conversation_id=cid,
                                  message_id=message["id"]))["type"] == "ActionConfirmed"
    assert await stored_rows(instance, receipts, gone.id) == 1

    assert (await api.erase(gone.id)).status_code == 204
    removed = [await watcher.expect("ReactionRemoved", timeout=TIMEOUT, emoji=emoji)
               for emoji in ("👍", "🎉")]
    assert {r["user_id"] for r in removed} == {gone.id}
    assert removed[0]["version"] + 1 == removed[1]["version"]
    history = await all_messages(watcher, cid)
    assert [(m["id"], m["reactions"]) for m in history] == [(message["id"], [])]
    assert await stored_rows(instance, reactions, gone.id) == 0
    assert await stored_rows(instance, receipts, gone.id) == 0


async def test_after_an_erasure_a_re_created_user_gets_a_new_direct_conversation(
        api: Api) -> None:
    """The erased user left the pair's conversation; the pair's next one is a new one."""
    peer, gone = new_id(), new_id()
    first = await api.create(kind="direct", member_ids=[peer, gone])
    assert first.status_code == 201, first.text
    assert (await api.erase(gone)).status_code == 204
    assert_api_error(await api.create(kind="direct", member_ids=[peer, gone]), 404,
                     "NOT_FOUND", "$.member_ids")
    assert (await api.put_user(gone, name="back")).status_code == 201
    second = await api.create(kind="direct", member_ids=[peer, gone])
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["member_count"] == 2


async def test_erase_of_an_unknown_user_is_404_and_erasing_twice_is_fine(
        api: Api) -> None:
    assert_api_error(await api.erase(new_id()), 404, "NOT_FOUND")
    user = await made_user(api)
    assert (await api.erase(user.id)).status_code == 204
    assert (await api.erase(user.id)).status_code == 204


# -- three instances on PostgreSQL and Redis ---------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster() -> AsyncIterator[Cluster]:
    async with postgres_database() as database, run_cluster(
            database.url, 3, rate_limits=False, api_keys=(API_KEY,)) as running:
        yield running


async def test_disconnect_closes_the_users_connections_on_every_instance(
        cluster: Cluster) -> None:
    """The backend asks one instance; the bus carries it to all three."""
    try:
        user, other = cluster.user("gone"), cluster.user("stays")
        clients = [await cluster.connect(index, user) for index in range(3)]
        bystanders = [await cluster.connect(index, other) for index in range(3)]
        assert (await ServerApi(cluster[1]).disconnect(user.id)).status_code == 204
        assert [await c.wait_closed(TIMEOUT) for c in clients] == [4003, 4003, 4003]
        assert not any(b.closed for b in bystanders)
    finally:
        await cluster.close_clients()


async def test_erase_closes_connections_on_every_instance_and_refuses_the_token_on_each(
        cluster: Cluster) -> None:
    try:
        user = cluster.user("gone")
        clients = [await cluster.connect(index, user) for index in range(3)]
        assert (await ServerApi(cluster[2]).erase(user.id)).status_code == 204
        assert [await c.wait_closed(TIMEOUT) for c in clients] == [4003, 4003, 4003]
        for index in range(3):
            assert await upgrade_status(cluster[index], user.token) == 401
    finally:
        await cluster.close_clients()


async def test_without_the_bus_disconnect_and_erase_are_503_and_change_nothing(
        tmp_path: Path) -> None:
    """Closing connections elsewhere needs Redis: while it is down the backend is told to
    retry, and the user keeps its connection, its token and its messages."""
    redis = RedisProcess(tmp_path)
    await redis.start()
    try:
        async with postgres_database() as database, run_cluster(
                database.url, 1, redis_url=redis.url, rate_limits=False,
                api_keys=(API_KEY,)) as cluster:
            api = ServerApi(cluster[0])
            user = await made_user(api, "kept")
            room = await api.group(user.id, [])
            client = await joined(cluster[0], user, room["id"])
            said = await send(client, room["id"], "still here")
            await redis.kill()
            await until(lambda: not cluster[0].internals.bus.healthy, "the bus is down")
            for response in (await api.disconnect(user.id), await api.erase(user.id)):
                assert_api_error(response, 503, "UNAVAILABLE", "retry")
            assert (await api.get_user(user.id)).status_code == 200
            assert not client.closed
            history = await all_messages(client, room["id"])
            assert [m["content"] for m in history] == [said["content"]]
            await cluster.close_clients()
    finally:
        await redis.stop()


# -- logs ------------------------------------------------------------------------------------


async def test_no_log_line_holds_an_api_key_or_what_the_backend_posted(
        backend: Backend, tmp_path: Path) -> None:
    """A real `hubbub serve` at debug level with access logs: keys right and wrong, a
    system message and an erasure leave neither key nor content in what it printed."""
    env = {"HUBBUB_LOG_LEVEL": "debug", "HUBBUB_ACCESS_LOG": "on",
           "HUBBUB_API_KEYS": f"{API_KEY},{OLD_API_KEY}"}
    process = for_backend(backend, tmp_path, env)
    await process.start()
    canary, wrong = f"canary-{new_id()}", f"wrong-{new_id()}"
    try:
        api = ServerApi(process)
        user = process.user("ann")
        assert (await api.put_user(user.id, metadata={"note": canary})).status_code == 201
        room = await api.group(user.id, [])
        assert (await api.post(room["id"], content=canary)).status_code == 201
        assert (await ServerApi(process, wrong).get_user(user.id)).status_code == 401
        assert (await ServerApi(process, OLD_API_KEY).erase(user.id)).status_code == 204
    finally:
        await process.stop()
    printed = process.log_path.read_text(errors="replace")
    assert "http.access" in printed, printed
    assert "/api/v1/server/users/" in printed, printed
    leaks = [line for line in printed.splitlines()
             if any(s in line for s in (API_KEY, OLD_API_KEY, canary, wrong))]
    assert not leaks, "\n".join(leaks)
