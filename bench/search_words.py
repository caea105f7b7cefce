"""Word-search benchmark (`python -m bench.search --words`): latency of SearchMessages in
`words` mode on a large corpus, through a real server.

    python -m bench.search --words                           # SQLite, 1,000,000 messages
    python -m bench.search --words --postgres postgresql://postgres@127.0.0.1:5432/postgres

The corpus is written straight into the migrated database (tests/support/bulk.py; the
full-text index is kept by its triggers or generated column as the rows go in):
`--rooms` groups sharing `--messages` messages, each of `WORDS_PER_MESSAGE` words drawn
from a vocabulary of `VOCABULARY` six-letter words with Zipf frequencies (rank r is
drawn with weight 1/r), as in natural text. The searcher `dana` is a member of `--scope`
of the groups; the rest belong to others, so her scope is checked inside every query.

Each case asks `--repeats` single searches, one at a time, each for a different word of
about the same frequency (the ranks from the case's rank on), so no answer comes from a
cache of the one before; every answer is checked to be `words` mode.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.support.bulk import Room, bulk_load, new_user_ids

from bench.common import BenchError, User, client_session, connect, percentile, servers
from hubbub.client import Socket

VOCABULARY = 10_000
WORDS_PER_MESSAGE = 8
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"


@dataclass
class Case:
    name: str
    rank: int  # the first vocabulary rank asked
    share_pct: float  # messages holding such a word, of the whole corpus
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    found_avg: float


@dataclass
class WordsResult:
    backend: str
    messages: int
    scope_messages: int
    load_s: float
    cases: list[Case] = field(default_factory=list)


def vocabulary(rng: random.Random) -> list[str]:
    """VOCABULARY distinct six-letter words, in frequency order (none is another's
    prefix: all have the same length)."""
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(3)))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


def share(rank: int) -> float:
    """The share of messages holding the word of `rank` (1-based), by the Zipf weights."""
    harmonic = sum(1 / r for r in range(1, VOCABULARY + 1))
    return 1 - (1 - 1 / (rank * harmonic)) ** WORDS_PER_MESSAGE


@dataclass
class Corpus:
    dana: str
    rooms: list[str]
    words: list[str]
    messages: int
    scope_messages: int


async def load(database_url: str, args: argparse.Namespace) -> Corpus:
    rng = random.Random(20_26)
    words = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / r for r in range(1, VOCABULARY + 1)))

    def content(_room: int, _seq: int) -> str:
        return " ".join(rng.choices(words, cum_weights=cumulative, k=WORDS_PER_MESSAGE))

    dana, *others = new_user_ids(1 + args.rooms)
    per_room = args.messages // args.rooms
    rooms = [Room([others[i], others[(i + 1) % len(others)]], per_room, content=content)
             for i in range(args.rooms)]
    for room in rooms[: args.scope]:
        room.members.append(dana)
    await bulk_load(database_url, [dana, *others], rooms,
                    start_us=time.time_ns() // 1000 - 30 * 86_400_000_000)
    return Corpus(dana, [r.id for r in rooms[: args.scope]], words, per_room * args.rooms,
                  per_room * args.scope)


CASES = (
    ("common word (rank 10+)", 10, False),
    ("frequent word (rank 100+)", 100, False),
    ("ordinary word (rank 1,000+)", 1000, False),
    ("rare word (rank 5,000+)", 5000, False),
    ("two words (ranks 10+ and 100+)", 10, True),
)


async def measure(socket: Socket, corpus: Corpus,
                  args: argparse.Namespace) -> list[Case]:
    from bench.search import Client  # bench.search dispatches here: imported late

    client = Client(socket, args.request_timeout)
    cases = []
    for name, rank, pair in CASES:
        times: list[float] = []
        errors: Counter[str] = Counter()
        found = 0
        for i in range(args.repeats):
            query = corpus.words[rank - 1 + i]
            if pair:
                query += " " + corpus.words[10 * rank - 1 + i]
            seconds, answer = await client.ask(type="SearchMessages", query=query, limit=20)
            times.append(seconds)
            if answer.type != "SearchResults" or answer.mode != "words":
                errors[answer.code or answer.type] += 1
            found += answer.found
        cases.append(Case(name, rank, 100 * share(rank) if not pair else float("nan"),
                          percentile(times, 50) * 1000, percentile(times, 95) * 1000,
                          percentile(times, 99) * 1000, dict(errors), found / args.repeats))
        print(f"  {name}: p99 {cases[-1].p99_ms:.1f} ms", file=sys.stderr)
    return cases


async def prepare_and_measure(url: str, args: argparse.Namespace) -> WordsResult:
    started = time.perf_counter()
    corpus = await load(url, args)
    load_s = time.perf_counter() - started
    print(f"stored {corpus.messages:,} messages in {load_s:.0f} s", file=sys.stderr)
    result = WordsResult("PostgreSQL" if args.postgres else "SQLite", corpus.messages,
                         corpus.scope_messages, load_s)
    with servers(1, database_url=url, redis_url=None, server_cmd=args.server_cmd,
                 extra_env=("HUBBUB_HEARTBEAT_INTERVAL=3600",
                            "HUBBUB_HEARTBEAT_TIMEOUT=7200"),
                 keep_tmp=args.keep_tmp) as group:
        dana = User(corpus.dana, "dana", group.token(corpus.dana, "dana"))
        async with client_session() as http:
            socket = await connect(http, group.processes[0], dana)
            try:
                result.cases = await measure(socket, corpus, args)
            except TimeoutError:
                raise BenchError(f"an answer took longer than {args.request_timeout} s"
                                 ) from None
            finally:
                await socket.close()
    return result


def render(result: WordsResult) -> str:
    lines = [f"words search on {result.backend}, {result.messages:,} messages "
             f"(stored in {result.load_s:.0f} s), the searcher's scope "
             f"{result.scope_messages:,} of them", "",
             "| query | messages holding it | found (limit 20) | p50 ms | p95 ms | p99 ms "
             "| errors |", "|---|---|---|---|---|---|---|"]
    for c in result.cases:
        held = "–" if c.share_pct != c.share_pct else f"{c.share_pct:.2f} %"
        lines.append(f"| {c.name} | {held} | {c.found_avg:.1f} | {c.p50_ms:.1f} | "
                     f"{c.p95_ms:.1f} | {c.p99_ms:.1f} | {c.errors or '–'} |")
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    group = ap.add_argument_group("--words")
    group.add_argument("--words", action="store_true",
                       help="measure the words search on a Zipf corpus instead")
    group.add_argument("--messages", type=int, default=1_000_000, help="corpus size")
    group.add_argument("--rooms", type=int, default=200, help="groups sharing the corpus")
    group.add_argument("--scope", type=int, default=50,
                       help="groups the searcher is a member of")
