"""The examples run as a reader runs them, against a real server: the echo bot on the SDK
and the support backend on the server API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from examples.backend_support import NOTICE
from hubbub.client import Client, Event
from hubbub.protocol.server import NewMessage
from tests.conftest import Backend
from tests.sdk.mirror import stored
from tests.sdk.processes import finished, line_with, python
from tests.sdk.support import FAST, next_of
from tests.support.server import RunningServer
from tests.support.server_api import API_KEY, api_instance

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def bot_says(events: AsyncIterator[Event], parent_id: str) -> str:
    """The bot's reply to `parent_id`, from alice's events."""
    while True:
        heard = await next_of(events, NewMessage)
        if heard.message.parent_id == parent_id:
            return heard.message.content


async def test_the_echo_bot_echoes_and_rolls(server: RunningServer) -> None:
    alice, bot = server.user("alice"), server.user("echo-bot")
    room = (await server.create_conversation(alice, "group", "bots", members=[bot]))["id"]
    async with python("examples/echo_bot.py", "--url", server.ws_url, "--conversation", room,
                      env={"HUBBUB_TOKEN": bot.token}) as process:
        await line_with(process, "echo bot ready")
        async with Client(server.ws_url, alice.token, backoff=FAST) as chat:
            events = chat.events()
            await chat.join(room)
            hello = await chat.send(room, "hello bot")
            assert await bot_says(events, hello.id) == "echo: hello bot"
            roll = await chat.send(room, "/roll 20")
            said = await bot_says(events, roll.id)
            assert said.startswith("🎲 ")
            assert 1 <= int(said.split()[1]) <= 20
            # Its own replies and system notices are not answered: four messages in all.
            assert len(await stored(chat, room)) == 4


async def test_the_support_backend_opens_one_conversation(backend: Backend) -> None:
    """Run twice: the same conversation, one system notice; the customer sees it."""
    async with api_instance(backend) as running:
        customer, agent = running.user("customer"), running.user("agent")
        rooms = []
        for _ in range(2):
            async with python("examples/backend_support.py", "--url", running.base_url,
                              "--customer", customer.id, "--agent", agent.id,
                              env={"HUBBUB_API_KEY": API_KEY}) as process:
                rooms.append((await finished(process)).strip())
        assert rooms[0] == rooms[1]
        async with Client(running.ws_url, customer.token, backoff=FAST) as chat:
            history = await chat.history(rooms[0])
        assert [(m.kind, m.content) for m in history.messages] == [("system", NOTICE)]
