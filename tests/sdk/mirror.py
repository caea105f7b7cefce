"""What an application builds from the SDK's events alone, to compare with the server's
stored state: the messages of one conversation, and every version it was shown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from hubbub.client import Client
from hubbub.protocol.objects import MessageObject
from hubbub.protocol.server import (
    MessageDeleted,
    MessageEdited,
    NewMessage,
    ReactionAdded,
    ReactionRemoved,
)
from tests.support.waiting import until

# (version, content, deleted, {(emoji, user_id)}): what a chat view shows of a message.
Snapshot = tuple[int, str, bool, frozenset[tuple[str, str]]]


def snapshot(message: MessageObject) -> Snapshot:
    reactions = frozenset((r.emoji, user) for r in message.reactions for user in r.user_ids)
    return message.version, message.content, message.deleted_at is not None, reactions


class Mirror:
    """One conversation as the application sees it."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.messages: dict[str, Snapshot] = {}
        self.versions: list[int] = []

    def apply(self, event: object) -> None:
        match event:
            case NewMessage(message=m) | MessageEdited(message=m):
                self._seen(m.conversation_id, m.version)
                self.messages[m.id] = snapshot(m)
            case MessageDeleted(conversation_id=c, message_id=i, version=v):
                self._seen(c, v)
                self.messages[i] = (v, "", True, frozenset())
            case ReactionAdded(conversation_id=c, message_id=i, version=v, user_id=u,
                               emoji=e):
                self._seen(c, v)
                _, content, deleted, reactions = self.messages[i]
                self.messages[i] = (v, content, deleted, reactions | {(e, u)})
            case ReactionRemoved(conversation_id=c, message_id=i, version=v, user_id=u,
                                 emoji=e):
                self._seen(c, v)
                _, content, deleted, reactions = self.messages[i]
                self.messages[i] = (v, content, deleted, reactions - {(e, u)})

    def _seen(self, conversation_id: str, version: int) -> None:
        if conversation_id == self.conversation_id:
            assert not self.versions or version > self.versions[-1], (
                f"version {version} after {self.versions[-1]}: out of order or repeated")
            self.versions.append(version)


async def stored(client: Client, conversation_id: str) -> dict[str, Snapshot]:
    """The server's state of the conversation, through FetchHistory, every page."""
    result: dict[str, Snapshot] = {}
    before: int | None = None
    while True:
        page = await client.history(conversation_id, before=before, limit=100)
        result.update((m.id, snapshot(m)) for m in page.messages)
        if not page.has_more:
            return result
        before = page.next_before


@contextlib.asynccontextmanager
async def following(client: Client, mirror: Mirror) -> AsyncIterator[Mirror]:
    """Apply the client's events to `mirror` in a task, while the block runs."""
    async def follow() -> None:
        async for event in client.events():
            mirror.apply(event)

    task = asyncio.get_running_loop().create_task(follow())
    try:
        yield mirror
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # re-raises what the follower failed on (an order assertion)


async def chatter(client: Client, conversation_id: str, count: int, tag: str,
                  padding: str = "") -> list[MessageObject]:
    """`count` sends, and edits, reactions and deletes among them, each awaited: every
    one resolves once, whatever the connection does meanwhile."""
    sent: list[MessageObject] = []
    for i in range(count):
        message = await client.send(conversation_id, f"{tag} {i}{padding}",
                                    client_message_id=f"{tag}-{i}")
        sent.append(message)
        if i % 3 == 0:
            await client.edit(message.id, f"{tag} {i} edited")
        if i % 4 == 0:
            await client.react(message.id, "👍")
        if i % 5 == 4:
            await client.delete(message.id)
    return sent


def assert_sent_once(sent: list[MessageObject], state: Mapping[str, Snapshot],
                     count: int) -> None:
    """`count` sends, each resolved to a distinct stored message."""
    assert len(sent) == count
    assert len({m.id for m in sent}) == count
    assert {m.id for m in sent} <= set(state)


async def converges(mirror: Mirror, reader: Client, within: float = 30.0) -> None:
    """Wait until the mirror equals the stored state (bounded), then assert it."""
    async def same() -> bool:
        return mirror.messages == await stored(reader, mirror.conversation_id)

    await until(same, "the client's view equals the stored state", within=within, every=0.2)
