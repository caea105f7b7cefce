"""`message.undelivered` (docs/WEBHOOKS.md): the members a new message did not reach live.

`HUBBUB_OFFLINE_GRACE` seconds after a message committed, its conversation's accepted
members other than the sender who have no open connection on any instance (the presence
counters) and have not muted it are told in one event per message, with those of them it
mentions (`@all`: every one; `@here` names the online, so none of them), for push
notifications or e-mail. The grace spares those who were reconnecting. The work is per
conversation, not per message: the messages of one conversation that commit within one
grace share one member list and one presence look-up.

At most once: the check lives in this process until it runs, so an instance that stops
within the grace drops it (the `message.created` events themselves are in the outbox and
never lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from hubbub.domain.models import Message
from hubbub.logs import get_logger
from hubbub.storage.errors import StoreUnavailable
from hubbub.storage.members import MemberStore
from hubbub.storage.outbox import OutboxEvent, OutboxStore

log = get_logger("hubbub.undelivered")
_encode = msgspec.json.Encoder().encode

# Which of these users have a connection anywhere (PresenceService.online).
Online = Callable[[list[str]], Awaitable[set[str]]]


class UndeliveredData(msgspec.Struct, frozen=True):
    message_id: str
    sender_id: str
    user_ids: list[str]  # the members without an open connection (not those who muted)
    mentioned: list[str]  # those of them the message mentions (by id, or `@all`)


class Undelivered:
    def __init__(self, members: MemberStore, online: Online, outbox: OutboxStore,
                 grace: float) -> None:
        self._members = members
        self._online = online
        self._outbox = outbox
        self._grace = grace
        self._waiting: dict[str, list[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def committed(self, message: Message) -> None:
        """A new message committed: check its recipients after the grace."""
        waiting = self._waiting.get(message.conversation_id)
        if waiting is not None:
            waiting.append(message)
            return
        self._waiting[message.conversation_id] = [message]
        task = asyncio.get_running_loop().create_task(self._check(message.conversation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _check(self, conversation_id: str) -> None:
        await asyncio.sleep(self._grace)
        messages = self._waiting.pop(conversation_id, [])
        try:
            members = [m.user_id for m in await self._members.list_members(conversation_id)
                       if m.accepted_at is not None and m.role != "banned" and not m.muted]
            offline = set(members) - await self._online(members)
            events = [_event(m, users) for m in messages
                      if (users := sorted(offline - {m.sender_id}))]
            if events:
                await self._outbox.append(events)
        except StoreUnavailable as exc:
            log.warning("undelivered.dropped", conversation_id=conversation_id,
                        messages=len(messages), error=str(exc))
        except Exception:
            log.exception("undelivered.failed", conversation_id=conversation_id)


def _event(message: Message, users: list[str]) -> OutboxEvent:
    mentioned = (users if "@all" in message.mentions
                 else [u for u in users if u in message.mentions])
    return OutboxEvent("message.undelivered", message.conversation_id, message.version,
                       _encode(UndeliveredData(message.id, message.sender_id, users,
                                               mentioned)))
