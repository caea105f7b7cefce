"""Persistence benchmark: committed messages per second with many concurrent senders.

    python -m bench.persist                          # 50 senders, own channels, 20000 messages
    python -m bench.persist --conversations shared   # all senders in one channel
    python -m bench.persist --mode store             # the Store alone, in this process

`ws` mode (default) starts hubbub like `bench.fanout` and connects `--senders` users; each
keeps `--window` SendMessages (with a `client_message_id`) in flight, in its own channel or
in one shared channel, and nobody is subscribed, so what is measured is the send path down
to the commit: a message counts when its `ActionConfirmed` arrives. `--retries F` re-sends
that share of the messages with the same `client_message_id`; each must be confirmed as
the message already stored. On SQLite the database is checked afterwards: exactly one row
per message and versions 1..n without gaps in every conversation.

`store` mode calls `MessageStore.send` from `--senders` coroutines in this process, without any
transport, to measure the storage layer (and group commit) alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec

from bench.common import (
    CLIENT_SATURATED_PCT,
    BenchError,
    Servers,
    User,
    add_server_arguments,
    client_session,
    close_all,
    connect_all,
    cpu_seconds,
    create_conversation,
    frame_decoder,
    new_users,
    percentile,
    raise_fd_limit,
    report,
    run,
    servers,
)
from hubbub.client import Socket

# Conversations are created this many at a time (each is one REST call).
CREATE_CONCURRENCY = 20


@dataclass
class Result:
    mode: str
    senders: int
    messages: int
    window: int
    conversations: str
    seconds: float = 0.0
    persisted_per_s: float = 0.0
    ack_p50_ms: float = 0.0
    ack_p99_ms: float = 0.0
    retried: int = 0
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    batches: int | None = None
    verified: str = "not checked"
    notes: list[str] = field(default_factory=list)


class Sender:
    """One connection sending its share, `window` at a time, and checking the answers."""

    def __init__(self, socket: Socket, conversation_id: str, index: int,
                 count: int, window: int, retry_every: int) -> None:
        self.socket = socket
        self.conversation_id = conversation_id
        self.index = index
        self.count = count
        self.window = window
        self.retry_every = retry_every
        self.sent_at: dict[str, float] = {}
        self.stored: dict[str, str] = {}  # client_message_id → message id
        self.acks: list[float] = []
        self.retried = 0
        self.slot = asyncio.Event()
        self.in_flight = 0
        self.confirmed = 0
        self.expected = count

    async def send_all(self) -> None:
        encode = msgspec.json.encode
        for i in range(self.count):
            while self.in_flight >= self.window:
                self.slot.clear()
                await self.slot.wait()
            client_id = f"s{self.index}-{i}"
            self.in_flight += 1
            self.sent_at[client_id] = time.perf_counter()
            await self.socket.send_text(encode({
                "type": "SendMessage", "conversation_id": self.conversation_id,
                "content": f"message {i} from sender {self.index}",
                "client_message_id": client_id, "request_id": client_id,
            }))
            if self.retry_every and i % self.retry_every == 0:
                # The same client_message_id again, as a client retrying after a timeout.
                self.in_flight += 1
                self.expected += 1
                self.retried += 1
                await self.socket.send_text(encode({
                    "type": "SendMessage", "conversation_id": self.conversation_id,
                    "content": f"message {i} from sender {self.index}",
                    "client_message_id": client_id, "request_id": "r:" + client_id,
                }))

    async def read_all(self) -> None:
        decode, receive = frame_decoder.decode, self.socket.receive_text
        while self.confirmed < self.expected:
            text = await receive()
            if text is None:
                raise BenchError(f"sender {self.index}'s connection ended: "
                                 f"{self.socket.close_code}")
            frame = decode(text)
            if frame.type == "Error":
                raise BenchError(f"SendMessage failed: {text:.300}")
            if frame.type != "ActionConfirmed" or frame.request_id is None:
                continue
            if frame.message is None:
                raise BenchError(f"ActionConfirmed without its message: {text:.300}")
            request_id = frame.request_id
            client_id = request_id.removeprefix("r:")
            known = self.stored.setdefault(client_id, frame.message.id)
            if known != frame.message.id:
                raise BenchError(f"{client_id} was stored twice: {known} and "
                                 f"{frame.message.id}")
            if request_id == client_id:
                self.acks.append(time.perf_counter() - self.sent_at[client_id])
            self.confirmed += 1
            self.in_flight -= 1
            self.slot.set()


async def _conversations(http: aiohttp.ClientSession, group: Servers, users: list[User],
                         shared: bool) -> list[str]:
    target = group.processes[0]
    if shared:
        owner, *others = users
        # The members must be known to the server first: their connections did that.
        conversation_id = await create_conversation(http, target, owner, "persist",
                                                    [u.id for u in others])
        return [conversation_id] * len(users)
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def own(user: User) -> str:
        async with gate:
            return await create_conversation(http, target, user, f"persist-{user.name}")

    return list(await asyncio.gather(*(own(u) for u in users)))


async def run_ws(group: Servers, args: argparse.Namespace) -> Result:
    result = Result("ws", args.senders, args.messages, args.window, args.conversations)
    async with client_session() as http:
        users = new_users(group, args.senders, "sender")
        sockets = await connect_all(http, group.processes, users)
        try:
            ids = await _conversations(http, group, users, args.conversations == "shared")
            share, extra = divmod(args.messages, args.senders)
            retry_every = round(1 / args.retries) if args.retries > 0 else 0
            senders = [Sender(ws, ids[i], i, share + (i < extra), args.window, retry_every)
                       for i, ws in enumerate(sockets)]
            cpu0, server0, started = time.process_time(), cpu_seconds(group.pids), \
                time.perf_counter()
            async with asyncio.timeout(args.timeout):
                await asyncio.gather(*(s.read_all() for s in senders),
                                     *(s.send_all() for s in senders))
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - cpu0
            server_cpu = cpu_seconds(group.pids) - server0
        except TimeoutError:
            raise BenchError(f"timed out after {args.timeout} s") from None
        finally:
            await close_all(sockets)
    acks = [a for s in senders for a in s.acks]
    result.seconds = seconds
    result.persisted_per_s = args.messages / seconds
    result.ack_p50_ms = percentile(acks, 50) * 1000
    result.ack_p99_ms = percentile(acks, 99) * 1000
    result.retried = sum(s.retried for s in senders)
    result.client_cpu_pct = 100 * client_cpu / seconds
    result.server_cpu_pct = 100 * server_cpu / seconds
    if result.client_cpu_pct >= CLIENT_SATURATED_PCT:
        result.notes.append(f"the client was saturated ({result.client_cpu_pct:.0f} % of a "
                            "core): the server's rate is a lower bound")
    result.verified = await verify(group.database_url, sorted(set(ids)), args.messages,
                                   {mid for s in senders for mid in s.stored.values()})
    return result


async def _stored_rows(url: str, conversation_ids: list[str]) -> list[tuple[str, str, int, int]]:
    """(conversation, id, version, seq) of every message of the conversations."""
    query = ("SELECT conversation_id, id, version, seq FROM messages "
             "WHERE conversation_id IN ({}) ORDER BY conversation_id, version")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            marks = ",".join("?" * len(conversation_ids))
            return db.execute(query.format(marks), conversation_ids).fetchall()
    import asyncpg

    db = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        marks = ",".join(f"${i + 1}" for i in range(len(conversation_ids)))
        return [tuple(row) for row in await db.fetch(query.format(marks), *conversation_ids)]
    finally:
        await db.close()


async def verify(url: str, conversation_ids: list[str], expected: int,
                 confirmed_ids: set[str]) -> str:
    """Nothing lost, nothing duplicated: one row per message, versions 1..n per conversation."""
    rows = await _stored_rows(url, conversation_ids)
    if len(rows) != expected:
        raise BenchError(f"{len(rows)} rows stored for {expected} messages")
    if {row[1] for row in rows} != confirmed_ids:
        raise BenchError("the stored message ids differ from the confirmed ones")
    by_conversation: dict[str, list[int]] = {}
    for conversation_id, _, version, seq in rows:
        if version != seq:
            raise BenchError(f"a new message has version {version} but seq {seq}")
        by_conversation.setdefault(conversation_id, []).append(version)
    for conversation_id, versions in by_conversation.items():
        if versions != list(range(1, len(versions) + 1)):
            raise BenchError(f"versions of {conversation_id} are not 1..{len(versions)}")
    return f"ok: {len(rows)} rows, versions gapless in {len(by_conversation)} conversation(s)"


async def run_store(args: argparse.Namespace) -> Result:
    """`MessageStore.send` from many coroutines, no transport: the storage layer's own rate."""
    from hubbub.adapters.sql import open_sql_database
    from hubbub.domain.models import MessageDraft

    result = Result("store", args.senders, args.messages, args.window, args.conversations)
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        database = await open_sql_database(url)
        users, conversations = database.stores.users, database.stores.conversations
        messages = database.stores.messages
        try:
            now = time.time_ns() // 1000
            senders = [str(uuid.uuid4()) for _ in range(args.senders)]
            for i, sender in enumerate(senders):
                await users.upsert_user(sender, f"sender-{i}", now)
            if args.conversations == "shared":
                shared = str(uuid.uuid4())
                await conversations.create_conversation(shared, "channel", "persist",
                                                        senders[0], senders[1:], now)
                ids = [shared] * len(senders)
            else:
                ids = [str(uuid.uuid4()) for _ in senders]
                for sender, conversation_id in zip(senders, ids, strict=True):
                    await conversations.create_conversation(conversation_id, "channel", "p",
                                                            sender, [], now)
            share = args.messages // args.senders
            acks: list[float] = []

            async def one_sender(i: int) -> None:
                gate = asyncio.Semaphore(args.window)

                async def one(n: int) -> None:
                    async with gate:
                        started = time.perf_counter()
                        await messages.send(MessageDraft(
                            id=str(uuid.uuid4()), conversation_id=ids[i],
                            sender_id=senders[i], sender_name=f"sender-{i}",
                            content=f"message {n}", parent_id=None, attachments=(),
                            client_message_id=f"s{i}-{n}", created_at=now + n,
                        ))
                        acks.append(time.perf_counter() - started)

                await asyncio.gather(*(one(n) for n in range(share)))

            batches0 = database.writer.batches
            cpu0, started = time.process_time(), time.perf_counter()
            async with asyncio.timeout(args.timeout):
                await asyncio.gather(*(one_sender(i) for i in range(args.senders)))
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            result.batches = database.writer.batches - batches0
        finally:
            await database.close()
        total = share * args.senders
        result.messages = total
        result.seconds = seconds
        result.persisted_per_s = total / seconds
        result.ack_p50_ms = percentile(acks, 50) * 1000
        result.ack_p99_ms = percentile(acks, 99) * 1000
        result.server_cpu_pct = 100 * cpu / seconds
        if url.startswith("sqlite"):
            result.verified = _verify_count(url, total)
    return result


def _verify_count(url: str, expected: int) -> str:
    path = url.split("///", 1)[1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT count(*) FROM messages").fetchone()
        (gaps,) = db.execute(
            "SELECT count(*) FROM (SELECT conversation_id, max(version) AS v, count(*) AS n "
            "FROM messages GROUP BY conversation_id) WHERE v != n").fetchone()
    if count != expected or gaps:
        raise BenchError(f"{count} rows for {expected} messages, {gaps} conversation(s) "
                         "with version gaps")
    return f"ok: {count} rows, versions gapless"


def render(result: Result) -> str:
    lines = [
        f"hubbub persistence ({result.mode}): {result.senders} senders, {result.messages} "
        f"messages, window {result.window} per sender, {result.conversations} conversations",
        "",
        "| persisted messages/s | send→ack p50 / p99 ms | server CPU % | client CPU % "
        "| retries | check |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {result.persisted_per_s:,.0f} | {result.ack_p50_ms:.1f} / {result.ack_p99_ms:.1f} "
        f"| {result.server_cpu_pct:.0f} | "
        + ("–" if result.mode == "store" else f"{result.client_cpu_pct:.0f}")
        + f" | {result.retried} | {result.verified} |",
    ]
    if result.batches:
        lines.append(f"\n{result.batches} commits, {result.messages / result.batches:.1f} "
                     "messages per commit")
    lines += [f"\nnote: {note}" for note in result.notes]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.persist", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["ws", "store"], default="ws")
    ap.add_argument("--senders", type=int, default=50, help="concurrent senders")
    ap.add_argument("--messages", type=int, default=20000, help="messages in all")
    ap.add_argument("--window", type=int, default=20, help="messages in flight per sender")
    ap.add_argument("--conversations", choices=["own", "shared"], default="own",
                    help="a channel per sender, or one for all")
    ap.add_argument("--retries", type=float, default=0.0, metavar="F",
                    help="share of messages sent twice with the same client_message_id")
    add_server_arguments(ap)  # --instances: ws mode only
    args = ap.parse_args(argv)
    if args.senders < 1 or args.messages < args.senders or args.window < 1:
        ap.error("need --senders ≥ 1, --messages ≥ --senders and --window ≥ 1")
    if not 0 <= args.retries <= 1:
        ap.error("--retries is a share between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()

    def measure() -> Result:
        if args.mode == "store":
            result: Result = run(run_store(args))
            return result
        with servers(args.instances, database_url=args.database_url,
                     redis_url=args.redis_url, server_cmd=args.server_cmd,
                     extra_env=args.server_env, keep_tmp=args.keep_tmp) as group:
            result = run(run_ws(group, args))
        return result

    return report("persist", measure, render, args.json)


if __name__ == "__main__":
    sys.exit(main())

