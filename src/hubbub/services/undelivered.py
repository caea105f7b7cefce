"""`message.undelivered` (docs/WEBHOOKS.md): the members a new message did not reach live.

`HUBBUB_OFFLINE_GRACE` seconds after a message committed, its conversation's accepted
members other than the sender who have no open connection on any instance (the presence
counters) and have not muted it are told in one event per message, with those of them it
mentions (`@all`: every one; `@here` names the online, so none of them), for push
notifications or e-mail. The grace spares those who were reconnecting. The work is per
conversation, not per message: the messages of one conversation that commit until its
check runs share one member list and one presence look-up.

Durable, at least once: each send batch notes the conversations it added messages to as
owed a check, in the messages' own transaction (storage/undelivered.py). A sweeper on every
instance claims the due checks every `HUBBUB_WEBHOOK_POLL_INTERVAL` (a lease, so two
instances never run one check at once) and finishes each by storing its events in the
outbox as it removes the note, in one transaction. An instance that stops within the grace
leaves its notes to whichever instance sweeps next; one that stops during a check leaves a
lease that runs out after `LEASE_S`, and the check runs again. A finished check is never
run again, so in the normal path each message is checked once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import msgspec

from hubbub.logs import get_logger
from hubbub.services.context import Clock, now_micros
from hubbub.storage.errors import StoreUnavailable
from hubbub.storage.members import MemberStore
from hubbub.storage.outbox import OutboxEvent
from hubbub.storage.undelivered import OwedCheck, Unchecked, UndeliveredStore

log = get_logger("hubbub.undelivered")
_encode = msgspec.json.Encoder().encode

# Which of these users have a connection anywhere (PresenceService.online).
Online = Callable[[list[str]], Awaitable[set[str]]]

# Far longer than a check takes (two reads, a presence look-up, one write); an instance
# that died holding a lease delays that conversation's check by this much.
LEASE_S = 30.0
# Checks claimed at once by one sweep (it claims again at once when it got this many).
CLAIM_LIMIT = 64
# Messages of one conversation checked at once; a check moves past them and goes on.
READ_LIMIT = 1000


class UndeliveredData(msgspec.Struct, frozen=True):
    message_id: str
    sender_id: str
    user_ids: list[str]  # the members without an open connection (not those who muted)
    mentioned: list[str]  # those of them the message mentions (by id, or `@all`)


class Undelivered:
    """The sweeper of one instance. Built, it has the sends note their checks; `start`
    runs the sweeps."""

    def __init__(self, members: MemberStore, online: Online, checks: UndeliveredStore,
                 grace: float, poll_interval: float, clock: Clock = now_micros) -> None:
        self._members = members
        self._online = online
        self._checks = checks
        self._grace = int(grace * 1_000_000)
        self._poll = poll_interval
        self._clock = clock
        self._owner = "sweep_" + os.urandom(8).hex()
        self._task: asyncio.Task[None] | None = None
        checks.owe_checks(self._grace)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                while await self.sweep() == CLAIM_LIMIT:
                    pass
            except StoreUnavailable as exc:
                log.warning("undelivered.sweep_failed", error=str(exc))
            except Exception:
                log.exception("undelivered.sweep_failed")
            await asyncio.sleep(self._poll)

    async def sweep(self) -> int:
        """Claim the due checks and run them; how many were claimed."""
        now = self._clock()
        owed = await self._checks.claim(self._owner, now, now + int(LEASE_S * 1_000_000),
                                        CLAIM_LIMIT)
        await asyncio.gather(*(self._check(check) for check in owed))
        return len(owed)

    async def _check(self, owed: OwedCheck) -> None:
        conversation_id = owed.conversation_id
        try:
            messages = await self._checks.unchecked(conversation_id, owed.from_seq,
                                                    READ_LIMIT)
            events: list[OutboxEvent] = []
            if messages:
                members = [m.user_id for m in await self._members.list_members(conversation_id)
                           if m.accepted_at is not None and m.role != "banned" and not m.muted]
                offline = set(members) - await self._online(members)
                events = [_event(conversation_id, m, users) for m in messages
                          if (users := sorted(offline - {m.sender_id}))]
            through = messages[-1].seq if messages else owed.from_seq - 1
            if not await self._checks.finish(self._owner, conversation_id, through, events,
                                             self._grace):
                log.warning("undelivered.lease_lost", conversation_id=conversation_id)
        except StoreUnavailable as exc:  # the lease runs out, and the check runs again
            log.warning("undelivered.check_failed", conversation_id=conversation_id,
                        error=str(exc))
        except Exception:
            log.exception("undelivered.check_failed", conversation_id=conversation_id)


def _event(conversation_id: str, message: Unchecked, users: list[str]) -> OutboxEvent:
    mentioned = (users if "@all" in message.mentions
                 else [u for u in users if u in message.mentions])
    return OutboxEvent("message.undelivered", conversation_id, message.seq,
                       _encode(UndeliveredData(message.id, message.sender_id, users,
                                               mentioned)))
