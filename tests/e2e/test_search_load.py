"""Searches never stall the rest (docs/DECISIONS.md, "Search cost"): the worst searches a
client may send, within the default rate limits, leave other users' reads fast, stop at
their time budget, give up their slot when their connection closes, and the excess is
refused with RATE_LIMITED.

Sizing: a conversation of 10,000 messages of 4,000 `a`s, searched for 199 `a`s and a `b`.
The matcher of either database tries the pattern at each of the 4,000 positions and gets
199 characters in before failing, ~0.8 ms a message on a quiet machine and ~7 ms on a
loaded one, so examining them all takes 8-70 s while the store stays small (40 MB, loaded
in seconds). With 2,000 messages a fast machine finished inside the budget. Without a
time budget SQLite runs such a search to its end, and PostgreSQL's former 5 s backstop
ended it with INTERNAL_ERROR; meanwhile 24 of them hold every read connection of either
database (SQLite's three, PostgreSQL's twenty), so a bystander waited for seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import Backend, StartServer
from tests.support.bulk import Room, bulk_load, new_user_ids
from tests.support.client import ChatClient
from tests.support.flows import fetch
from tests.support.server import RunningServer, User
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

SPAM = "a" * 4000
# Asked as a substring: a word search finds it in the index at once (PROTOCOL.md §3).
WORST = "a" * 199 + "b"
# Messages of SPAM in the searchers' room: each costs a worst search ~0.8 ms (a quiet,
# fast machine) to ~7 ms (a loaded one), so the search always outlasts its 2 s budget.
SPAM_MESSAGES = 10_000
SEARCHERS = 24
# Generous bounds for a shared, noisy machine; the failures they catch take seconds.
FAST_S = 1.0
# The default search budget (2 s) plus room for a loaded machine.
BUDGET_BOUND_S = 5.0
# Long enough for the old, unbounded searches to show, short enough to end the test.
PATIENCE_S = 30.0


@dataclass
class Heavy:
    url: str
    searchers: list[str]
    bystander: str
    bystander_room: str
    quiet: str  # a user with one small group, whose searches are cheap
    quiet_room: str

    @property
    def settings(self) -> dict[str, Any]:
        """The defaults (search bounds and per-user rate limits included), on this store;
        only the handshake limit per IP is lifted, as every test user connects from one."""
        return {"database_url": self.url, "handshake_burst": 100}

    def user(self, server: RunningServer, user_id: str) -> User:
        return User(user_id, f"u-{user_id[:6]}", server.token(user_id, f"u-{user_id[:6]}"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def heavy(backend: Backend, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Heavy]:
    """A database of its own holding the spam conversation, and the bystander's."""
    database = None
    if backend.name == "sqlite":
        path: Path = tmp_path_factory.mktemp("heavy") / "heavy.db"
        url = f"sqlite:///{path}"
    else:
        database = await create_postgres_database()
        url = database.url
    owner, bystander, quiet = new_user_ids(3)
    searchers = new_user_ids(SEARCHERS)
    spam = Room([owner, *searchers], SPAM_MESSAGES, content=lambda _room, _seq: SPAM)
    history = Room([owner, bystander], 200)
    small = Room([quiet], 20)
    await bulk_load(url, [owner, bystander, quiet, *searchers], [spam, history, small],
                    start_us=time.time_ns() // 1000 - 86_400_000_000)
    try:
        yield Heavy(url, searchers, bystander, history.id, quiet, small.id)
    finally:
        if database is not None:
            await drop_postgres_database(database)


async def connect_all(server: RunningServer, heavy: Heavy, ids: list[str]) -> list[ChatClient]:
    return list(await asyncio.gather(*(server.connect(heavy.user(server, i)) for i in ids)))


NO_ANSWER = {"type": "no answer"}


async def timed(work: Any) -> tuple[float, dict[str, Any]]:
    """How long `work` took to answer, and the answer (NO_ANSWER: none in PATIENCE_S)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PATIENCE_S):
            answer: dict[str, Any] = await work
    except (TimeoutError, AssertionError):
        return time.perf_counter() - started, NO_ANSWER
    return time.perf_counter() - started, answer


def worst_searches(clients: list[ChatClient]) -> list[asyncio.Task[dict[str, Any]]]:
    return [asyncio.create_task(c.request("SearchMessages", query=WORST, mode="substring",
                                 timeout=PATIENCE_S))
            for c in clients]


async def test_a_bystanders_history_stays_fast_while_worst_searches_run(
        start_server: StartServer, heavy: Heavy) -> None:
    """24 users' worst searches at once, and another user's FetchHistory still answers at
    once; every search answers its truncated results or RATE_LIMITED with a retry time."""
    async with start_server(**heavy.settings) as server:
        searchers = await connect_all(server, heavy, heavy.searchers)
        bystander = await server.connect(heavy.user(server, heavy.bystander))
        pending = worst_searches(searchers)
        await asyncio.sleep(0.3)  # every search is in: running, or waiting for a slot
        took, page = await timed(fetch(bystander, heavy.bystander_room))
        assert took < FAST_S, f"FetchHistory took {took:.1f} s"
        assert len(page.get("messages", ())) == 50, page
        answers = await asyncio.gather(*pending)
    refused = [a for a in answers if a["type"] == "Error"]
    assert all(a["code"] == "RATE_LIMITED" and a["retry_after_ms"] > 0 for a in refused)
    assert refused, "24 worst searches at once, and none was refused"
    for answer in answers:
        assert answer["type"] in ("SearchResults", "Error"), answer
        if answer["type"] == "SearchResults":
            assert (answer["messages"], answer["truncated"]) == ([], True)


async def test_a_search_past_its_time_budget_answers_what_it_found(
        start_server: StartServer, heavy: Heavy) -> None:
    """A search that would take 10-70 s answers within its budget, `truncated`, and others
    are served meanwhile."""
    async with start_server(**heavy.settings) as server:
        searcher = await server.connect(heavy.user(server, heavy.searchers[0]))
        quiet = await server.connect(heavy.user(server, heavy.quiet))
        bystander = await server.connect(heavy.user(server, heavy.bystander))
        search = asyncio.create_task(timed(
            searcher.request("SearchMessages", query=WORST, mode="substring",
                                 timeout=PATIENCE_S)))
        await asyncio.sleep(0.2)
        took_history, page = await timed(fetch(bystander, heavy.bystander_room))
        took_quiet, cheap = await timed(quiet.request("SearchMessages", query="hello",
                                                      timeout=PATIENCE_S))
        took, answer = await search
    assert took < BUDGET_BOUND_S, f"the search took {took:.1f} s"
    assert answer["type"] == "SearchResults", answer
    assert (answer["messages"], answer["truncated"]) == ([], True)
    assert took_history < FAST_S, f"FetchHistory took {took_history:.1f} s"
    assert page["type"] == "HistoryChunk", page
    assert took_quiet < FAST_S, f"the cheap search took {took_quiet:.1f} s"
    assert (cheap["type"], cheap.get("truncated")) == ("SearchResults", False), cheap


async def test_closing_the_connection_frees_the_searches_at_once(
        start_server: StartServer, heavy: Heavy) -> None:
    """Worst searches whose connections close stop there: a search right after them finds
    a slot (and a connection) at once instead of waiting for them to run out."""
    async with start_server(**heavy.settings) as server:
        closers = await connect_all(server, heavy, heavy.searchers[:20])
        quiet = await server.connect(heavy.user(server, heavy.quiet))
        pending = worst_searches(closers)
        await asyncio.sleep(0.3)  # running, or waiting for a slot
        await asyncio.gather(*(c.close() for c in closers))
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0.1)  # the server has seen the closes
        took, answer = await timed(quiet.request(
            "SearchMessages", query="hello", conversation_id=heavy.quiet_room,
            timeout=PATIENCE_S))
        statements = await active_searches(heavy.url)
    assert answer["type"] == "SearchResults", answer
    assert took < FAST_S, f"the next search took {took:.1f} s"
    assert statements == 0, f"{statements} abandoned searches still run in PostgreSQL"


async def active_searches(url: str) -> int:
    """PostgreSQL: statements of searches still running in that database (SQLite: 0, its
    statements run inside the server, and the free slot above shows they ended)."""
    if not url.startswith("postgres"):
        return 0
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query ILIKE '%ILIKE%' AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    return count
