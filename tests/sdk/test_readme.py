"""The README's quick-start program, taken from README.md as it stands and run unchanged
against a real server: it sends, and prints what the channel says."""

from __future__ import annotations

import re

import pytest

from hubbub.client import Client
from tests.sdk.processes import ROOT, line_with, python
from tests.sdk.support import FAST
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


def quick_start() -> str:
    """The first Python block of the README's quick start section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks, "no Python block in the quick start"
    return str(blocks[0])


async def test_the_quick_start_runs_verbatim(server: RunningServer) -> None:
    alice, bob = server.user("alice"), server.user("bob")
    channel = (await server.create_conversation(alice, "channel", "general"))["id"]
    env = {"HUBBUB_URL": server.ws_url, "ALICE": alice.token, "CHANNEL": channel}
    async with python("-c", quick_start(), env=env) as program:
        assert (await line_with(program, "sent ")).split()[2] == "version"
        await line_with(program, "alice: hello")
        async with Client(server.ws_url, bob.token, backoff=FAST) as chat:
            await chat.join(channel)
            await chat.send(channel, "hi alice")
            await line_with(program, "bob: hi alice")
