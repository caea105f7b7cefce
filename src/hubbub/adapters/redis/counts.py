"""Connections per user, counted per instance in Redis: the presence counter and the
per-user connection cap across instances (PROTOCOL.md §4, §6). Key layout under the
prefix `P:`, which is `{<HUBBUB_REDIS_PREFIX>}:` — a hash tag, so that every key below is
in one slot of a Redis Cluster, as a script that reaps or resyncs across users and
instances needs (one server ignores the braces):

    P:inst:all            set of instance ids
    P:inst:alive:<iid>    a heartbeat key with a TTL, refreshed every TTL/3
    P:<ns>:u:<uid>        hash: instance id → open connections of the user there
    P:<ns>:i:<iid>        set: the users an instance has counted (for cleaning up)
    P:inst:reaped:<iid>   mark: the others removed this instance's counts (a day at most)

A user's total counts only instances whose heartbeat key exists, so a crashed instance's
connections stop counting within the TTL; the first live instance to notice removes them
(atomically: one script) and reports the users left with no connection, whom presence
then announces offline. An instance that was only cut off (stalled, or away from Redis)
finds the mark when it writes its counts back, and announces those users online again.

Each instance also keeps its own counts in memory. They decide for its own connections
(a second local connection is never "first"), they keep presence and limits working while
Redis is down (per instance then, like the in-memory fallback), and they are written back
in full whenever the heartbeat finds the instance's state missing (Redis restarted, or the
instance stalled past its TTL) or Redis answers again after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hubbub.adapters.redis.client import UNAVAILABLE, Breaker, Unavailable
from hubbub.adapters.redis.scripts import lua
from hubbub.adapters.redis.topology import REDIS_ERRORS, RedisClient
from hubbub.logs import get_logger

log = get_logger("hubbub.coordination.counts")

UserListener = Callable[[str], Awaitable[None]]


# One script per step, each atomic (scripts/counts_*.lua; they share live_total.lua).
_SCRIPTS = {name: lua("counts_" + name) for name in (
    "add", "remove", "online", "resync", "heartbeat", "reap", "leave")}

PRESENCE = "presence"

def hash_tag(prefix: str) -> str:
    """`{prefix}`: Redis Cluster hashes only what is inside the braces."""
    return "{" + prefix.replace("{", "").replace("}", "") + "}"


CONNECTIONS = "conns"


class _Exclusive:
    """Counting calls run side by side; a resync waits for them and runs alone, so that it
    writes a snapshot no increment in flight can land on top of."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._active = 0
        self._resyncing = False

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        if self._resyncing:
            async with self._condition:
                await self._condition.wait_for(lambda: not self._resyncing)
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0 and self._resyncing:
                async with self._condition:
                    self._condition.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._condition:
            self._resyncing = True
            await self._condition.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            async with self._condition:
                self._resyncing = False
                self._condition.notify_all()


class InstanceCounts:
    """Per-user connection counts of one namespace: this instance's in memory, everyone's in
    Redis (see the module docstring)."""

    def __init__(self, registry: InstanceRegistry, namespace: str) -> None:
        self._registry = registry
        self._ns = namespace
        self.local: dict[str, int] = {}
        registry.register(self)

    @property
    def namespace(self) -> str:
        return self._ns

    async def add(self, user_id: str, limit: int | None = None) -> int | None:
        """Count a connection; returns the user's total (None: Redis unavailable, the caller
        decides from `local`), or -1 when `limit` connections are open already."""
        registry = self._registry
        async with registry.gate.shared():
            # Counted here before the round trip, so that concurrent adds of one user see
            # each other; taken back if refused.
            self.local[user_id] = self.local.get(user_id, 0) + 1
            total = await registry.attempt("add", self._ns, user_id, registry.instance_id,
                                           -1 if limit is None else limit)
            if total is UNAVAILABLE:
                if limit is not None and self.local[user_id] > limit:
                    self._take_back(user_id)
                    return -1
                return None
            if int(total) < 0:
                self._take_back(user_id)
            return int(total)

    def _take_back(self, user_id: str) -> None:
        count = self.local.get(user_id, 0) - 1
        if count > 0:
            self.local[user_id] = count
        else:
            self.local.pop(user_id, None)

    async def remove(self, user_id: str) -> int | None:
        """Forget a connection; returns the user's remaining total (None: Redis unavailable)."""
        registry = self._registry
        async with registry.gate.shared():
            self._take_back(user_id)
            total = await registry.attempt("remove", self._ns, user_id, registry.instance_id)
            return None if total is UNAVAILABLE else int(total)

    async def online(self, user_ids: list[str]) -> set[str]:
        """Users with a connection on any live instance (this one's, while Redis is down)."""
        here = {uid for uid in user_ids if uid in self.local}
        registry = self._registry
        if not user_ids:
            return here
        flags = await registry.attempt("online", self._ns, registry.instance_id, *user_ids)
        if flags is UNAVAILABLE:
            return here
        return here | {uid for uid, flag in zip(user_ids, flags, strict=True) if int(flag)}


class InstanceRegistry:
    """This instance's heartbeat, the resync of its counts, and the removal of dead
    instances' counts. One per process, shared by every `InstanceCounts`."""

    def __init__(self, client: RedisClient, prefix: str, ttl: float,
                 instance_id: str | None = None) -> None:
        self.instance_id = instance_id or str(uuid.uuid4())
        self._client = client
        self._prefix = hash_tag(prefix) + ":"
        # Every script names this key, so that a cluster client sends it to the slot of P.
        self._route = [self._prefix + "inst:all"]
        self._ttl_ms = max(1000, int(ttl * 1000))
        self._scripts = {name: client.register_script(source)
                         for name, source in _SCRIPTS.items()}
        self._counts: list[InstanceCounts] = []
        self._expired_listeners: list[UserListener] = []
        self._revived_listeners: list[UserListener] = []
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._needs_resync = True
        self.gate = _Exclusive()
        # After any failure Redis may have lost or missed counts: resync at the next beat,
        # or at once when a counting call finds Redis back.
        self.breaker = Breaker("connection_counts", on_failed=self._lost,
                               on_recovered=self._wake)

    def register(self, counts: InstanceCounts) -> None:
        self._counts.append(counts)

    def on_expired(self, listener: UserListener) -> None:
        """Call `listener(user_id)` for each user left with no presence anywhere when a dead
        instance's counts are removed."""
        self._expired_listeners.append(listener)

    def on_revived(self, listener: UserListener) -> None:
        """Call `listener(user_id)` for each user of this instance whom the others had
        reported offline while it was cut off (stalled, or away from Redis), once it is
        counted again."""
        self._revived_listeners.append(listener)

    async def run(self, script: str, *args: Any) -> Any:
        return await self._scripts[script](keys=self._route, args=[self._prefix, *args])

    async def attempt(self, script: str, *args: Any) -> Any | Unavailable:
        """A counting call through the breaker: UNAVAILABLE while Redis is down."""
        return await self.breaker.attempt(lambda: self.run(script, *args))

    def _lost(self) -> None:
        self._needs_resync = True

    async def start(self) -> None:
        """Beat once now (so this instance counts at once), then every TTL/3."""
        await self.beat()
        self._task = asyncio.get_running_loop().create_task(self._beating())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*REDIS_ERRORS):
            await self.run("leave", self.instance_id, *(c.namespace for c in self._counts))

    async def beat(self) -> None:
        """Refresh the heartbeat; resync when needed; remove dead instances' counts. Tried
        even while Redis is known down: this is what finds it back."""
        found = await self.breaker.probe(self._beat)
        if found is UNAVAILABLE:
            return
        revived, gone = found
        await _notify(self._revived_listeners, revived, "presence.revived_listener_failed")
        await _notify(self._expired_listeners, gone, "presence.expired_listener_failed")

    async def _beat(self) -> tuple[list[Any], list[Any]]:
        """The users to announce online again (resynced) and offline (reaped)."""
        revived: list[Any] = []
        present = int(await self.run("heartbeat", self.instance_id, self._ttl_ms))
        if not present or self._needs_resync:
            revived = await self._resync()
        gone = await self.run("reap", PRESENCE, *(c.namespace for c in self._counts))
        return revived, gone

    async def _resync(self) -> list[Any]:
        """Write this instance's counts back; returns the users to announce online again."""
        revived: list[Any] = []
        async with self.gate.exclusive():
            self._needs_resync = False
            for counts in self._counts:
                pairs: list[Any] = []
                for user_id, n in counts.local.items():
                    pairs += [user_id, n]
                report = 1 if counts.namespace == PRESENCE else 0
                revived += await self.run("resync", counts.namespace, self.instance_id,
                                          report, *pairs)
        log.info("redis.counts_resynced", instance_id=self.instance_id,
                 users=sum(len(c.local) for c in self._counts), revived=len(revived))
        return revived

    async def _beating(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._ttl_ms / 3000)
            self._wakeup.clear()
            await self.beat()

    def _wake(self) -> None:
        """Redis is back: resync now rather than at the next beat."""
        self._wakeup.set()


async def _notify(listeners: list[UserListener], users: list[Any], failure: str) -> None:
    for raw in users:
        user_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        for listener in listeners:
            try:
                await listener(user_id)
            except Exception:
                log.exception(failure)


class RedisPresenceCounter:
    """The `PresenceCounter` across instances (coordination/presence.py)."""

    def __init__(self, registry: InstanceRegistry) -> None:
        self._counts = InstanceCounts(registry, PRESENCE)
        self._registry = registry

    def on_expired(self, listener: UserListener) -> None:
        """Call `listener(user_id)` when a crashed instance took a user's last connection."""
        self._registry.on_expired(listener)

    def on_revived(self, listener: UserListener) -> None:
        """Call `listener(user_id)` when this instance, cut off long enough to be reaped,
        counts again a user the others had reported offline."""
        self._registry.on_revived(listener)

    async def connected(self, user_id: str) -> bool:
        first_here = user_id not in self._counts.local
        total = await self._counts.add(user_id)
        return first_here and (total is None or total == 1)

    async def disconnected(self, user_id: str) -> bool:
        if user_id not in self._counts.local:
            return False
        total = await self._counts.remove(user_id)
        return user_id not in self._counts.local and (total is None or total == 0)

    async def online(self, user_ids: list[str]) -> set[str]:
        return await self._counts.online(user_ids)

    async def close(self) -> None:
        return None  # the registry, shared, is closed by its owner


class RedisConnectionLimiter:
    """The `ConnectionLimiter` across instances (coordination/connection_limit.py): check and
    add in one script, so two handshakes racing for the last slot cannot both get it."""

    def __init__(self, registry: InstanceRegistry) -> None:
        self._counts = InstanceCounts(registry, CONNECTIONS)

    async def acquire(self, user_id: str, limit: int) -> bool:
        return await self._counts.add(user_id, limit) != -1

    async def release(self, user_id: str) -> None:
        if user_id in self._counts.local:
            await self._counts.remove(user_id)

    async def close(self) -> None:
        return None
