"""Rules that concurrent requests must not break, decided by the store inside the write
transaction: a group with members keeps an owner, and a message's reactions stay within
their caps. On PostgreSQL the requests are spread over three instances, each with its own
writer, so that only the database's locks keep the rule; on SQLite one writer does."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from hubbub.domain.reactions import MAX_EMOJI_PER_MESSAGE
from tests.conftest import Backend
from tests.support.client import ChatClient
from tests.support.cluster import deployment
from tests.support.flows import TIMEOUT, all_messages, joined, roles, send, set_role
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")

OWNERS = 6
ROUNDS = 3


async def give_up(instance: RunningServer, owner: User, room: str, leave: bool) -> int:
    """The owner steps down to `member` or leaves; the HTTP status."""
    path = f"/api/v1/conversations/{room}/members/{owner.id}"
    async with instance.http(owner) as http:
        response = await (http.delete(path) if leave
                          else http.put(path, json={"role": "member"}))
    return response.status_code


async def test_concurrent_step_downs_and_leaves_leave_one_owner(backend: Backend) -> None:
    """Six owners of a group with a plain member all step down or leave at once: exactly one
    is refused with 409, and the group keeps exactly one owner."""
    async with deployment(backend.database_url, 3, rate_limits=False) as instances:
        first = instances[0]
        for _ in range(ROUNDS):
            owners = [first.user(f"owner{n}") for n in range(OWNERS)]
            member = first.user("member")
            room = (await first.create_conversation(owners[0], kind="group",
                                                    members=[*owners[1:], member]))["id"]
            for owner in owners[1:]:
                assert await set_role(first, owners[0], room, owner, "owner") == 200
            spread = itertools.cycle(instances)
            statuses = await asyncio.gather(*(
                give_up(next(spread), owner, room, leave=n % 2 == 1)
                for n, owner in enumerate(owners)))
            assert statuses.count(409) == 1, statuses
            assert all(status in (200, 204, 409) for status in statuses), statuses
            assert list((await roles(first, member, room)).values()).count("owner") == 1


async def react(client: ChatClient, message_id: str, emoji: str) -> str:
    """`AddReaction`; the type of the direct response, or the error code."""
    reply = await client.request("AddReaction", message_id=message_id, emoji=emoji,
                                 timeout=TIMEOUT)
    return str(reply.get("code", reply["type"]))


async def test_concurrent_reactions_never_pass_the_emoji_cap(backend: Backend) -> None:
    """Ten more users than the cap allows each add a different emoji to one message at once,
    through every instance: exactly the cap is stored, the rest are CONFLICT."""
    extra = 10
    async with deployment(backend.database_url, 3, rate_limits=False) as instances:
        first = instances[0]
        author = first.user("author")
        reactors = [first.user(f"r{n}") for n in range(MAX_EMOJI_PER_MESSAGE + extra)]
        room = (await first.create_conversation(author, kind="channel", name="busy"))["id"]
        message = await send(await joined(first, author, room), room, "react")
        spread = itertools.cycle(instances)
        clients = [await joined(next(spread), user, room) for user in reactors]
        outcomes = await asyncio.gather(*(
            react(client, message["id"], f"e{n}") for n, client in enumerate(clients)))
        assert outcomes.count("ActionConfirmed") == MAX_EMOJI_PER_MESSAGE, outcomes
        assert outcomes.count("CONFLICT") == extra, outcomes
        [stored] = await all_messages(clients[0], room)
        assert len(stored["reactions"]) == MAX_EMOJI_PER_MESSAGE
        async with first.http(author) as http:
            version = (await http.get(f"/api/v1/conversations/{room}")).json()["version"]
        assert version == message["version"] + MAX_EMOJI_PER_MESSAGE
