"""Search benchmark: search latency, and a bystander's FetchHistory while searches run.

    python -m bench.search                                        # SQLite, 500k messages
    python -m bench.search --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python -m bench.search --words --repeats 200                  # words mode, 1M messages

With `--words` it measures the words search instead (bench/search_words.py); without, the
substring search and its bounds, on a corpus made for them:

The store is written directly (tests/support/bulk.py): `--big-rooms` groups of
`--big-size` messages among the crowd's users, and three groups of 300 messages of the
searcher `alice`, interleaved in time with the rest. `carol` and `--searchers` more users
are members of five big groups (the worst case: their scope has more messages than a
search may examine), the bystander `bob` of one. Then hubbub starts (rate limits off) and:

1. *latency*: each search below runs `--repeats` times, one at a time;
2. *bystander*: the `--searchers` users run carol's worst-case search in a loop (each
   waits for its answer, then asks again) for `--seconds`, while bob sends one
   FetchHistory every 50 ms, waiting for each answer; bob's latency alone comes first.

Every answer is waited for up to `--request-timeout` s, errors counted by code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from tests.support.bulk import Room, bulk_load, chatter, new_user_ids

from bench import search_words
from bench.common import (
    BenchError,
    ServerProcess,
    User,
    client_session,
    close_all,
    connect,
    percentile,
    report,
    run,
    servers,
)
from hubbub.client import Socket

# A rare word in alice's conversations: one message in a hundred.
RARE = "kumquat"
# Matches nothing: every search with it examines as much as its bounds allow.
NO_MATCH = "zq"
BYSTANDER_EVERY_S = 0.05
QUIET = ("HUBBUB_HEARTBEAT_INTERVAL=3600", "HUBBUB_HEARTBEAT_TIMEOUT=7200")


@dataclass
class Latency:
    case: str
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]


@dataclass
class Result:
    backend: str
    messages: int
    latency: list[Latency] = field(default_factory=list)
    searchers: int = 0
    bystander_idle_p50_ms: float = 0.0
    bystander_p50_ms: float = 0.0
    bystander_p99_ms: float = 0.0
    bystander_max_ms: float = 0.0
    bystander_errors: dict[str, int] = field(default_factory=dict)
    searches_done: int = 0
    searches_per_s: float = 0.0
    search_p50_ms: float = 0.0
    search_p99_ms: float = 0.0
    search_errors: dict[str, int] = field(default_factory=dict)
    truncated: int = 0


class Answer(msgspec.Struct):
    type: str
    request_id: str | None = None
    code: str | None = None
    truncated: bool = False
    mode: str | None = None
    messages: list[msgspec.Raw] = []

    @property
    def found(self) -> int:
        return len(self.messages)


_answer = msgspec.json.Decoder(Answer)


class Client:
    """One connection asking one thing at a time and timing each answer."""

    def __init__(self, socket: Socket, timeout: float) -> None:
        self.socket = socket
        self.timeout = timeout
        self.n = 0

    async def ask(self, **body: object) -> tuple[float, Answer]:
        self.n += 1
        request_id = f"r{self.n}"
        started = time.perf_counter()
        await self.socket.send_text(msgspec.json.encode({**body, "request_id": request_id}))
        async with asyncio.timeout(self.timeout):
            while True:
                text = await self.socket.receive_text()
                if text is None:
                    raise BenchError(f"connection ended: {self.socket.close_code}")
                answer = _answer.decode(text)
                if answer.request_id == request_id:
                    return time.perf_counter() - started, answer


def _outcome(answer: Answer, errors: Counter[str]) -> None:
    if answer.type == "Error":
        errors[answer.code or "?"] += 1


@dataclass
class Dataset:
    alice: str
    carol: str
    bob: str
    alice_rooms: list[str]
    carol_rooms: list[str]
    bob_room: str
    messages: int
    searchers: list[str]


async def load(database_url: str, args: argparse.Namespace) -> Dataset:
    crowd = new_user_ids(args.big_rooms * 5)
    alice, carol, bob = new_user_ids(3)
    searchers = new_user_ids(args.searchers)
    rooms = [Room([crowd[i * 5 + j] for j in range(5)], args.big_size)
             for i in range(args.big_rooms)]
    for room in rooms[:5]:
        room.members += [carol, *searchers]
    rooms[5].members.append(bob)

    def alices(room: int, seq: int) -> str:
        return chatter(room, seq) + (f" {RARE}" if seq % 100 == 0 else "")

    small = [Room([alice, crowd[i]], 300, content=alices) for i in range(3)]
    await bulk_load(database_url, [*crowd, alice, carol, bob, *searchers], rooms + small,
                    start_us=time.time_ns() // 1000 - 30 * 86_400_000_000)
    return Dataset(alice, carol, bob, [r.id for r in small], [r.id for r in rooms[:5]],
                   rooms[5].id, sum(r.messages for r in rooms + small), searchers)


async def latency(clients: dict[str, Client], data: Dataset, repeats: int) -> list[Latency]:
    cases = [
        ("alice, all her conversations, no match", "alice", NO_MATCH, None),
        ("alice, all her conversations, rare word", "alice", RARE, None),
        ("alice, all her conversations, common word", "alice", "hello", None),
        ("alice, one conversation, no match", "alice", NO_MATCH, data.alice_rooms[0]),
        ("carol (5 big groups), all, no match", "carol", NO_MATCH, None),
        ("carol, one big group, no match", "carol", NO_MATCH, data.carol_rooms[0]),
    ]
    found: list[Latency] = []
    for name, who, query, conversation_id in cases:
        times: list[float] = []
        errors: Counter[str] = Counter()
        for _ in range(repeats):
            seconds, answer = await clients[who].ask(
                type="SearchMessages", query=query, conversation_id=conversation_id)
            times.append(seconds)
            _outcome(answer, errors)
        found.append(Latency(name, percentile(times, 50) * 1000, percentile(times, 99) * 1000,
                             dict(errors)))
        print(f"  {name}: p50 {found[-1].p50_ms:.1f} ms", file=sys.stderr)
    return found


async def bystander(result: Result, bob: Client, searchers: list[Client], data: Dataset,
                    seconds: float) -> None:
    async def fetch_loop(until: float) -> tuple[list[float], Counter[str]]:
        times: list[float] = []
        errors: Counter[str] = Counter()
        while time.perf_counter() < until:
            took, answer = await bob.ask(type="FetchHistory", conversation_id=data.bob_room)
            times.append(took)
            _outcome(answer, errors)
            await asyncio.sleep(BYSTANDER_EVERY_S)
        return times, errors

    idle, _ = await fetch_loop(time.perf_counter() + 2.0)
    result.bystander_idle_p50_ms = percentile(idle, 50) * 1000
    stop = time.perf_counter() + seconds
    search_times: list[float] = []
    search_errors: Counter[str] = Counter()

    async def search_loop(client: Client) -> None:
        while time.perf_counter() < stop:
            took, answer = await client.ask(type="SearchMessages", query=NO_MATCH)
            search_times.append(took)
            _outcome(answer, search_errors)
            result.truncated += answer.truncated
            if answer.type == "Error":
                await asyncio.sleep(0.05)  # as a client honouring retry_after_ms would

    started = time.perf_counter()
    loops = [asyncio.create_task(search_loop(c)) for c in searchers]
    await asyncio.sleep(0.2)  # the searches are under way
    times, errors = await fetch_loop(stop)
    await asyncio.gather(*loops)
    elapsed = time.perf_counter() - started
    result.searchers = len(searchers)
    result.bystander_p50_ms = percentile(times, 50) * 1000
    result.bystander_p99_ms = percentile(times, 99) * 1000
    result.bystander_max_ms = max(times) * 1000
    result.bystander_errors = dict(errors)
    result.searches_done = len(search_times)
    result.searches_per_s = len(search_times) / elapsed
    result.search_p50_ms = percentile(search_times, 50) * 1000
    result.search_p99_ms = percentile(search_times, 99) * 1000
    result.search_errors = dict(search_errors)


async def measure(server: ServerProcess, secret_of: dict[str, User], searcher_users: list[User],
                  data: Dataset, args: argparse.Namespace, backend: str) -> Result:
    result = Result(backend, data.messages)
    async with client_session() as http:
        sockets: list[Socket] = []
        try:
            named: dict[str, Client] = {}
            for who in ("alice", "carol", "bob"):
                ws = await connect(http, server, secret_of[who])
                sockets.append(ws)
                named[who] = Client(ws, args.request_timeout)
            searchers = []
            for user in searcher_users:
                ws = await connect(http, server, user)
                sockets.append(ws)
                searchers.append(Client(ws, args.request_timeout))
            result.latency = await latency(named, data, args.repeats)
            await bystander(result, named["bob"], searchers, data, args.seconds)
        except TimeoutError:
            raise BenchError(f"an answer took longer than {args.request_timeout} s") from None
        finally:
            await close_all(sockets)
    return result


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace, tmp: Path) -> AsyncIterator[str]:
    """A database of its own: a SQLite file in `tmp`, or a new PostgreSQL database."""
    if not args.postgres:
        yield f"sqlite:///{tmp / 'search.db'}"
        return
    import asyncpg

    name = f"hubbub_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(args.postgres)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield args.postgres.rsplit("/", 1)[0] + "/" + name
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def render(result: Result) -> str:
    lines = [f"search on {result.backend}, {result.messages:,} messages", "",
             "| search | p50 ms | p99 ms | errors |", "|---|---|---|---|"]
    lines += [f"| {x.case} | {x.p50_ms:.1f} | {x.p99_ms:.1f} | {x.errors or '–'} |"
              for x in result.latency]
    lines += [
        "",
        f"bystander FetchHistory: alone p50 {result.bystander_idle_p50_ms:.1f} ms; with "
        f"{result.searchers} worst-case searches looping: p50 {result.bystander_p50_ms:.1f} ms,"
        f" p99 {result.bystander_p99_ms:.1f} ms, max {result.bystander_max_ms:.1f} ms, "
        f"errors {result.bystander_errors or '–'}",
        f"those searches: {result.searches_done} answered ({result.searches_per_s:.1f}/s), "
        f"p50 {result.search_p50_ms:.1f} ms, p99 {result.search_p99_ms:.1f} ms, "
        f"errors {result.search_errors or '–'}, truncated {result.truncated}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-rooms", type=int, default=50, help="the crowd's big groups")
    ap.add_argument("--big-size", type=int, default=10_000, help="messages per big group")
    ap.add_argument("--repeats", type=int, default=30, help="runs of each search")
    ap.add_argument("--searchers", type=int, default=8, help="concurrent search loops")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the load")
    ap.add_argument("--request-timeout", type=float, default=120.0,
                    help="longest wait for one answer, s")
    ap.add_argument("--postgres", metavar="ADMIN_URL",
                    help="run on a new database of this PostgreSQL server (dropped after)")
    ap.add_argument("--server-cmd", help="default: this Python's `-m hubbub serve`")
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the server's log")
    search_words.add_arguments(ap)
    args = ap.parse_args(argv)
    if args.big_rooms < 6 or args.big_size < 1 or args.searchers < 1:
        ap.error("need --big-rooms ≥ 6 (carol's five and bob's), --big-size and "
                 "--searchers ≥ 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hubbub-bench-search-"))

    if args.words:
        async def words_only() -> search_words.WordsResult:
            async with database(args, tmp) as url:
                return await search_words.prepare_and_measure(url, args)

        try:
            return report("search", lambda: run(words_only()), search_words.render,
                          args.json)
        finally:
            _remove(tmp)

    async def prepare_and_measure() -> Result:
        async with database(args, tmp) as url:
            started = time.perf_counter()
            data = await load(url, args)
            print(f"stored {data.messages:,} messages in {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
            # Connections sit silent while others are measured: no heartbeat closes them.
            with servers(1, database_url=url, redis_url=None, server_cmd=args.server_cmd,
                         extra_env=QUIET, keep_tmp=args.keep_tmp) as group:
                users = {"alice": User(data.alice, "alice", group.token(data.alice, "alice")),
                         "carol": User(data.carol, "carol", group.token(data.carol, "carol")),
                         "bob": User(data.bob, "bob", group.token(data.bob, "bob"))}
                searchers = [User(u, f"searcher-{i}", group.token(u, f"searcher-{i}"))
                             for i, u in enumerate(data.searchers)]
                return await measure(group.processes[0], users, searchers, data, args,
                                     "PostgreSQL" if args.postgres else "SQLite")

    try:
        return report("search", lambda: run(prepare_and_measure()), render, args.json)
    finally:
        _remove(tmp)


def _remove(tmp: Path) -> None:
    for path in sorted(tmp.rglob("*"), reverse=True):
        with contextlib.suppress(OSError):
            path.unlink() if path.is_file() else path.rmdir()
    with contextlib.suppress(OSError):
        tmp.rmdir()


if __name__ == "__main__":
    sys.exit(main())
