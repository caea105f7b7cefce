"""One subscriber connection of the Redis bus: its share of the channels (bus.py).

On one server or Sentinel there is one such connection (SUBSCRIBE); on a Redis Cluster one
per primary (SSUBSCRIBE, sharded pub/sub), each subscribing only the channels whose slot
its primary owns. A keeper task sends the difference between the channels wanted and
those sent whenever it changes, and pings every few seconds to prove the connection
alive; a reader task hands each message to the bus. Both end (raise) when the connection
fails, when the cluster moved a slot away (a server-sent `sunsubscribe` of a channel
still wanted), or when the sentinels name another master: the bus then plans its
connections afresh.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from redis.asyncio.connection import AbstractConnection

# Channels per SUBSCRIBE after a reconnect: keeps each command small.
SUBSCRIBE_CHUNK = 1000
# The connection is pinged this often, and given up when nothing at all (not even the
# PONG) arrived for STALE_S: a half-open TCP connection shows no error by itself.
KEEPALIVE_S = 5.0
STALE_S = 15.0

RESUME_MARK = b"hubbub-resubscribed"
_KEEPALIVE_MARK = b"hubbub-keepalive"


class SubscriberOwner(Protocol):
    """What a subscriber connection tells the bus, and asks it."""

    wanted: dict[bytes, str]

    def on_message(self, channel: bytes, payload: bytes) -> None: ...
    def on_subscribed(self, channel: bytes) -> None: ...
    def on_unsubscribed(self, channel: bytes) -> None: ...
    def on_ready(self, shard: str) -> None: ...


class ShardSubscriber:
    """The channels of one shard on one connection, until the connection fails."""

    def __init__(self, shard: str, owner: SubscriberOwner, mine: Callable[[bytes], bool],
                 *, sharded: bool,
                 watch: Callable[[AbstractConnection], Coroutine[Any, Any, None]]) -> None:
        """`watch(connection)` returns or raises when the connection must be given up
        although it works (topology.py: a Sentinel failover)."""
        self.shard = shard
        self._owner = owner
        self._mine = mine
        self._sent: set[bytes] = set()
        self._leaving: set[bytes] = set()  # UNSUBSCRIBE sent, its reply not yet read
        self.dirty = asyncio.Event()
        self.last_read = 0.0
        prefix = "S" if sharded else ""
        self._subscribe, self._unsubscribe = prefix + "SUBSCRIBE", prefix + "UNSUBSCRIBE"
        self._kinds = (b"smessage", b"ssubscribe", b"sunsubscribe") if sharded else (
            b"message", b"subscribe", b"unsubscribe")
        self._sharded = sharded
        self._watch = watch

    async def serve(self, connection: AbstractConnection) -> None:
        """Serve the connection (connected) until it fails: always raises."""
        loop = asyncio.get_running_loop()
        self.last_read = loop.time()
        tasks = [loop.create_task(self._read(connection)),
                 loop.create_task(self._keep(connection)),
                 loop.create_task(self._watch(connection))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
        raise ConnectionError("the subscriber connection ended")

    async def _keep(self, connection: AbstractConnection) -> None:
        """Subscribe what is wanted, keep it in sync, and ping."""
        loop = asyncio.get_running_loop()
        await self._sync(connection)
        # Its PONG comes after every SUBSCRIBE reply above: then this shard is whole again.
        await connection.send_command("PING", RESUME_MARK, check_health=False)
        while True:
            try:
                await asyncio.wait_for(self.dirty.wait(), KEEPALIVE_S)
            except TimeoutError:
                if loop.time() - self.last_read > STALE_S:
                    raise ConnectionError("no answer to PING on the subscriber") from None
                await connection.send_command("PING", _KEEPALIVE_MARK, check_health=False)
                continue
            await self._sync(connection)

    async def _sync(self, connection: AbstractConnection) -> None:
        """Send the difference between this shard's channels wanted and those sent."""
        self.dirty.clear()
        wanted = self._owner.wanted
        gone = [channel for channel in self._sent if channel not in wanted]
        new = [channel for channel in wanted
               if channel not in self._sent and self._mine(channel)]
        self._sent.difference_update(gone)
        self._leaving.update(gone)
        for channel in gone:  # a re-subscribe must wait for its reply
            self._owner.on_unsubscribed(channel)
        self._sent.update(new)
        for command, channels in ((self._unsubscribe, gone), (self._subscribe, new)):
            for chunk in self._chunks(channels):
                await connection.send_command(command, *chunk, check_health=False)

    def _chunks(self, channels: list[bytes]) -> list[list[bytes]]:
        # SSUBSCRIBE takes channels of one slot only: one command each.
        size = 1 if self._sharded else SUBSCRIBE_CHUNK
        return [channels[start:start + size] for start in range(0, len(channels), size)]

    async def _read(self, connection: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        message, subscribed, unsubscribed = self._kinds
        while True:
            response = await connection.read_response(timeout=math.inf)
            self.last_read = loop.time()
            if type(response) is list and response:
                kind = response[0]
                if kind == message:
                    self._owner.on_message(response[1], response[2])
                elif kind == subscribed:
                    if response[1] in self._sent:
                        self._owner.on_subscribed(response[1])
                elif kind == unsubscribed:
                    self._on_unsubscribed(response[1])
                elif kind == b"pong" and len(response) > 1 and response[1] == RESUME_MARK:
                    self._owner.on_ready(self.shard)
            elif response == RESUME_MARK:  # PING outside subscribed mode: a bulk reply
                self._owner.on_ready(self.shard)

    def _on_unsubscribed(self, channel: bytes) -> None:
        self._owner.on_unsubscribed(channel)
        if channel in self._leaving:
            self._leaving.discard(channel)
        elif self._sharded and channel in self._sent:
            # Not asked for: the cluster moved the channel's slot to another primary.
            raise ConnectionError("a slot moved to another primary")
