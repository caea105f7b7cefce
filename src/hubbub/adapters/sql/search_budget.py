"""What one search may spend (docs/DECISIONS.md, "Search cost"): a slot, and time.

Searches run on a pool of connections of their own (engine.py), so that however
many run, every other read still finds its connection in the main pool. The `SearchGate`
in front of that pool lets `concurrency` searches run per instance, at most one per user
(one user's searches never take every slot); a search that finds no slot within
QUEUE_WAIT_S is refused with RATE_LIMITED rather than queued without end.

A search's time, counted from its slot, is bounded inside its statements too, by a
`Deadline` per database: SQLite calls a progress handler every PROGRESS_STEPS
virtual-machine steps, which interrupts the statement once the deadline passed or the
search was abandoned; PostgreSQL runs each statement of the scan under
`SET LOCAL statement_timeout` set to the time left.

A search whose request goes away (its connection closed) is cancelled: waiting for a slot,
it just stops; running, `run_abortable` stops its statement and waits until the
connection is free again before the slot is given back, so neither is ever held by work
nobody waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.domain.errors import RateLimited

T = TypeVar("T")

# A slot frees within one search's time budget, usually within milliseconds; waiting
# longer than this only piles requests up behind a busy instance.
QUEUE_WAIT_S = 0.5
# What a refused client is told to wait: about one worst-case search.
RETRY_AFTER_MS = 1000
# Searches of one user running at once on one instance: a second one waits for the first.
PER_USER = 1
# SQLite calls the progress handler every this many virtual-machine steps, about every
# five messages examined. Steps are not equal: one LIKE over 4,000 characters can take
# ~7 ms, so a deadline or an abort stops a statement within ~40 ms, while a Python call
# per five messages costs little next to matching them.
PROGRESS_STEPS = 100
# PostgreSQL's statement_timeout is whole milliseconds, and 0 would mean "none".
_MIN_TIMEOUT_MS = 1
_QUERY_CANCELED = "57014"


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """The bounds of PROTOCOL.md §3's search, per instance (Settings: `search_*`)."""

    # Searches running at once, each on its own connection of the search pool.
    concurrency: int = 2
    # The time one search may take; it then answers what it found, `truncated`.
    timeout_s: float = 2.0
    # Messages one search may examine.
    scan_limit: int = 50_000
    # Conversations a search without `conversation_id` covers: the most recently active.
    conversations: int = 100
    # Matches a words search ranks: the newest in scope (DECISIONS.md, "Rank window").
    rank_window: int = 2000


DEFAULT_SEARCH = SearchLimits()


class SearchGate:
    """Hands out the search slots: `slots` at once, PER_USER of them to any one user."""

    def __init__(self, slots: int) -> None:
        self._free = asyncio.Semaphore(slots)
        self._users: dict[str, _UserSlots] = {}

    @contextlib.asynccontextmanager
    async def slot(self, user_id: str) -> AsyncIterator[None]:
        """Hold a slot for the duration of the block.

        Raises:
            RateLimited: no slot came free within QUEUE_WAIT_S.
        """
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = _UserSlots()
        user.holders += 1
        try:
            try:
                async with asyncio.timeout(QUEUE_WAIT_S):
                    await user.free.acquire()
                    try:
                        await self._free.acquire()
                    except BaseException:
                        user.free.release()
                        raise
            except TimeoutError:
                raise RateLimited("too many searches at once: retry later",
                                  RETRY_AFTER_MS) from None
            try:
                yield
            finally:
                self._free.release()
                user.free.release()
        finally:
            user.holders -= 1
            if not user.holders:
                del self._users[user_id]


class _UserSlots:
    __slots__ = ("free", "holders")

    def __init__(self) -> None:
        self.free = asyncio.Semaphore(PER_USER)
        self.holders = 0  # searches of this user holding or waiting for a slot


async def run_abortable(work: Awaitable[T], deadline: Deadline) -> T:
    """Await `work` in a task of its own. When the caller is cancelled, stop the work's
    statement (`deadline.abort`) and wait until it has let go of its connection, then
    raise the cancellation: nothing keeps running on behalf of a request that is gone."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        deadline.abort(task)
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved, so not logged: nobody waits for this answer
        raise


class Deadline:
    """When a search must be over, and how its statements are held to it."""

    def __init__(self, timeout_s: float) -> None:
        self._at = time.monotonic() + timeout_s

    def expired(self) -> bool:
        return time.monotonic() >= self._at

    async def attach(self, conn: AsyncConnection) -> None:
        """Start bounding the statements of `conn` (before the scan)."""

    async def detach(self) -> None:
        """Stop it (before the connection goes back to the pool)."""

    def relax(self) -> None:
        """The scan is over: loading what it found is not cut short (an abort still is)."""

    async def before_statement(self, conn: AsyncConnection) -> None:
        """Called before each statement of the scan."""

    def interrupted(self, exc: DBAPIError) -> bool:
        """Whether this error is the deadline (or an abort) stopping a statement."""
        raise NotImplementedError

    def abort(self, task: asyncio.Task[Any]) -> None:
        """Stop the search running in `task`, whose caller is gone."""
        raise NotImplementedError


class SqliteDeadline(Deadline):
    """On SQLite: a progress handler on the search's connection, run in aiosqlite's
    thread, interrupts the running statement when the deadline passed or on `abort`."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(timeout_s)
        self._enforced = True
        self._aborted = False
        self._fired = False
        self._db: Any = None

    def __call__(self) -> int:
        if self._aborted or (self._enforced and time.monotonic() >= self._at):
            self._fired = True
            return 1  # SQLite stops the statement: OperationalError "interrupted"
        return 0

    async def attach(self, conn: AsyncConnection) -> None:
        raw = await conn.get_raw_connection()
        self._db = raw.driver_connection
        await self._db.set_progress_handler(self, PROGRESS_STEPS)

    async def detach(self) -> None:
        if self._db is not None:
            await self._db.set_progress_handler(None, 0)

    def relax(self) -> None:
        self._enforced = False

    def interrupted(self, exc: DBAPIError) -> bool:
        return self._fired

    def abort(self, task: asyncio.Task[Any]) -> None:
        # Not task.cancel(): the statement runs on in aiosqlite's thread whatever the task
        # does, and a cancelled SQLAlchemy connection would queue its cleanup behind it.
        self._aborted = True


class PostgresDeadline(Deadline):
    """On PostgreSQL: each scan statement gets the time left as its `statement_timeout`;
    an abort cancels the task, and asyncpg cancels the statement."""

    async def before_statement(self, conn: AsyncConnection) -> None:
        left_ms = max(_MIN_TIMEOUT_MS, int((self._at - time.monotonic()) * 1000))
        # Ends with the transaction; a literal, as SET takes no parameters.
        await conn.execute(text(f"SET LOCAL statement_timeout = {left_ms}"))

    def interrupted(self, exc: DBAPIError) -> bool:
        return getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED

    def abort(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
