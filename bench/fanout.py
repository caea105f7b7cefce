"""Fan-out benchmark: one sender, N receivers in one conversation, real WebSockets.

    python -m bench.fanout                                  # 100 receivers, 2000 messages
    python -m bench.fanout --receivers 1000 --messages 300 --idle 2000
    python -m bench.fanout --instances 3 --database-url postgresql://... --redis-url redis://...
    python -m bench.fanout --workers 2 --database-url postgresql://... --redis-url redis://...
    python -m bench.fanout --receivers 1000 --messages 300 --inbox compare --rounds 2

It starts hubbub (its own SQLite file, rate limits off, a random JWT secret, a free port on
127.0.0.1), creates a channel, connects the receivers and the sender (all joined, like the
shared kit's load generator), and keeps `--window` SendMessages in flight. A message is
complete when every receiver has its NewMessage; the first `--warm` messages are not
measured. With `--idle K` it first measures the server's RSS growth for K idle connections.

The client is one Python process on uvloop with the SDK's connection
(`hubbub.client.socket`, on aiohttp's client, whose frame reader is compiled), each frame
decoded into the benchmark's narrow `Frame` rather than the SDK's full union. A Python
client costs a few microseconds per received frame, so at high
delivery rates it can be the bottleneck: its CPU is measured, and the output says so when
it was saturated (then the server's numbers are lower bounds).

`--inbox compare` measures what the inbox (PROTOCOL.md §4.1) costs: fresh servers with
`HUBBUB_INBOX=off`, then `on`, alternating for `--rounds` pairs, one short run each; the
receivers are members of the room, so with the inbox on every instance also counts their
summaries and sends them the coalesced `ConversationSummary` frames, which are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from bench.common import (
    CLIENT_SATURATED_PCT,
    BenchError,
    Servers,
    add_server_arguments,
    client_session,
    close_all,
    connect_all,
    cpu_seconds,
    create_conversation,
    frame_decoder,
    new_users,
    percentile,
    place,
    raise_fd_limit,
    report,
    rss_bytes,
    run,
    servers,
    writer_totals,
)
from hubbub.client import Socket

# Connections opened before the idle baseline is taken, so one-off costs (first handshake,
# allocator arenas, caches) are not charged to the measured ones — as the shared kit does.
IDLE_WARM_CONNECTIONS = 50
# Time for the server's memory to settle after the last idle connection is open.
IDLE_SETTLE_S = 1.0


@dataclass
class Result:
    receivers: int
    messages: int
    window: int
    instances: int
    workers: int
    seconds: float = 0.0
    messages_per_s: float = 0.0
    deliveries_per_s: float = 0.0
    deliver_p50_ms: float = 0.0
    deliver_p99_ms: float = 0.0
    ack_p50_ms: float = 0.0
    ack_p99_ms: float = 0.0
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    server_rss_mb: float = 0.0
    idle_connections: int = 0
    idle_kib_per_connection: float | None = None
    # Writes per group commit during the load: each commit costs one socket write per
    # subscriber, so this sets the fan-out's system-call cost.
    writes_per_commit: float | None = None
    # `ConversationSummary` frames the receivers got (the inbox's, PROTOCOL.md §4.1).
    summaries: int = 0
    inbox: str = "on"
    notes: list[str] = field(default_factory=list)


class Load:
    """The state of one load phase, updated by the receivers' and the sender's readers."""

    def __init__(self, receivers: int, warm: int, messages: int, window: int) -> None:
        self.receivers = receivers
        self.warm = warm
        self.total = warm + messages
        self.window = window
        self.sent_at = [0.0] * self.total
        self.missing = [receivers] * self.total
        self.latencies: list[float] = []
        self.acks: list[float] = []
        self.in_flight = 0
        self.summaries = 0
        self.completed = 0
        self.started = 0.0
        self.finished = 0.0
        self.cpu_start = (0.0, 0.0)
        self.cpu_end = (0.0, 0.0)
        self.pids: list[int] = []
        self.slot = asyncio.Event()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(BenchError(reason))

    def delivered(self, seq: int) -> None:
        now = time.perf_counter()
        if seq >= self.warm:
            self.latencies.append(now - self.sent_at[seq])
        left = self.missing[seq] = self.missing[seq] - 1
        if left == 0:
            self.in_flight -= 1
            self.completed += 1
            self.slot.set()
            if self.completed == self.total:
                self.finished = now
                self.cpu_end = (time.process_time(), cpu_seconds(self.pids))
                if not self.done.done():
                    self.done.set_result(None)


async def _receive(socket: Socket, load: Load) -> None:
    decode, receive = frame_decoder.decode, socket.receive_text
    while True:
        text = await receive()
        if text is None:
            if not load.done.done():
                load.fail(f"a receiver's connection ended: {socket.close_code}")
            return
        frame = decode(text)
        if frame.type == "NewMessage" and frame.message is not None:
            load.delivered(int(frame.message.content))
        elif frame.type == "ConversationSummary":
            load.summaries += 1
        elif frame.type == "Error":
            load.fail(f"a receiver got an error: {text:.300}")
            return


async def _sender_reader(socket: Socket, load: Load) -> None:
    decode, receive = frame_decoder.decode, socket.receive_text
    while True:
        text = await receive()
        if text is None:
            if not load.done.done():
                load.fail(f"the sender's connection ended: {socket.close_code}")
            return
        frame = decode(text)
        if frame.type == "ActionConfirmed" and frame.request_id is not None:
            seq = int(frame.request_id)
            if seq >= load.warm:
                load.acks.append(time.perf_counter() - load.sent_at[seq])
        elif frame.type == "Error":
            load.fail(f"SendMessage failed: {text:.300}"
                      + (" (is HUBBUB_RATE_LIMITS=off honoured?)" if "RATE_LIMITED" in text
                         else ""))
            return


async def _send(socket: Socket, load: Load, conversation_id: str, client_ids: bool) -> None:
    encode = msgspec.json.encode
    for seq in range(load.total):
        while load.in_flight >= load.window:
            load.slot.clear()
            await load.slot.wait()
        body: dict[str, Any] = {"type": "SendMessage", "conversation_id": conversation_id,
                                "content": str(seq), "request_id": str(seq)}
        if client_ids:
            body["client_message_id"] = f"b-{seq}"
        load.in_flight += 1
        now = time.perf_counter()
        if seq == load.warm:
            load.started = now
            load.cpu_start = (time.process_time(), cpu_seconds(load.pids))
        load.sent_at[seq] = now
        if not await socket.send_text(encode(body)):
            load.fail(f"the sender's connection ended: {socket.close_code}")
            return


async def measure_idle(http: aiohttp.ClientSession, group: Servers, count: int) -> float:
    """RSS growth of the servers per idle, authenticated connection, in KiB."""
    targets = group.processes
    warm = await connect_all(http, targets, new_users(group, IDLE_WARM_CONNECTIONS, "warm"))
    await asyncio.sleep(IDLE_SETTLE_S)
    before = rss_bytes(group.pids)
    idle = await connect_all(http, targets, new_users(group, count, "idle"))
    await asyncio.sleep(IDLE_SETTLE_S)
    after = rss_bytes(group.pids)
    await close_all(warm + idle)
    return (after - before) / count / 1024


async def run_fanout(group: Servers, args: argparse.Namespace) -> Result:
    result = Result(args.receivers, args.messages, args.window, args.instances, args.workers)
    # With workers, a server's /metrics answers for one of them, picked by the kernel.
    count_commits = args.workers == 1
    async with client_session() as http:
        if args.idle:
            result.idle_connections = args.idle
            result.idle_kib_per_connection = await measure_idle(http, group, args.idle)
        targets = group.processes
        sender, *receivers = new_users(group, args.receivers + 1, "bench")
        conversation_id = await create_conversation(http, targets[0], sender, "bench")
        receiver_ws = await connect_all(http, targets, receivers, join=conversation_id)
        (sender_ws,) = await connect_all(http, targets[:1], [sender], join=conversation_id)
        load = Load(args.receivers, args.warm, args.messages, args.window)
        load.pids = group.pids
        loop = asyncio.get_running_loop()
        readers = [loop.create_task(_receive(ws, load)) for ws in receiver_ws]
        readers.append(loop.create_task(_sender_reader(sender_ws, load)))
        commits_before, writes_before = (await writer_totals(http, targets) if count_commits
                                         else (0.0, 0.0))
        sending = loop.create_task(_send(sender_ws, load, conversation_id, args.client_ids))
        try:
            async with asyncio.timeout(args.timeout):
                await load.done
        except TimeoutError:
            raise BenchError(f"timed out after {args.timeout} s with {load.completed} of "
                             f"{load.total} messages complete") from None
        finally:
            sending.cancel()
            for task in readers:
                task.cancel()
            await asyncio.gather(sending, *readers, return_exceptions=True)
            result.server_rss_mb = rss_bytes(group.pids) / 1e6
            commits, writes = (await writer_totals(http, targets) if count_commits
                               else (0.0, 0.0))
            if commits > commits_before:
                result.writes_per_commit = (writes - writes_before) / (commits - commits_before)
            await close_all([*receiver_ws, sender_ws])
    seconds = load.finished - load.started
    result.summaries = load.summaries
    client_cpu = load.cpu_end[0] - load.cpu_start[0]
    server_cpu = load.cpu_end[1] - load.cpu_start[1]
    result.seconds = seconds
    result.messages_per_s = args.messages / seconds
    result.deliveries_per_s = args.messages * args.receivers / seconds
    result.deliver_p50_ms = percentile(load.latencies, 50) * 1000
    result.deliver_p99_ms = percentile(load.latencies, 99) * 1000
    result.ack_p50_ms = percentile(load.acks, 50) * 1000
    result.ack_p99_ms = percentile(load.acks, 99) * 1000
    result.client_cpu_pct = 100 * client_cpu / seconds
    result.server_cpu_pct = 100 * server_cpu / seconds
    if result.client_cpu_pct >= CLIENT_SATURATED_PCT:
        result.notes.append(
            f"the client was saturated ({result.client_cpu_pct:.0f} % of a core): the "
            "server's throughput is a lower bound; use the shared kit's C load generator "
            "for the server's ceiling")
    elif result.client_cpu_pct > result.server_cpu_pct:
        result.notes.append(
            f"the client worked harder than the server ({result.client_cpu_pct:.0f} % vs "
            f"{result.server_cpu_pct:.0f} % of a core): the client is probably the limit, "
            "and the server's throughput a lower bound")
    if seconds < 1.0:
        result.notes.append("the measured phase lasted under 1 s: CPU figures are coarse "
                            "(10 ms ticks); use more --messages")
    return result


def render(result: Result) -> str:
    lines = [
        f"hubbub fan-out: {result.receivers} receivers, {result.messages} messages, "
        f"window {result.window}, {result.instances} instance(s) of {result.workers} "
        "worker(s)",
        "",
        "| messages/s | deliveries/s | deliver p50 / p99 ms | send→ack p50 / p99 ms "
        "| server CPU % | client CPU % | server RSS MB | KiB per idle connection |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.messages_per_s:,.0f} | {result.deliveries_per_s:,.0f} "
        f"| {result.deliver_p50_ms:.1f} / {result.deliver_p99_ms:.1f} "
        f"| {result.ack_p50_ms:.1f} / {result.ack_p99_ms:.1f} "
        f"| {result.server_cpu_pct:.0f} | {result.client_cpu_pct:.0f} "
        f"| {result.server_rss_mb:.1f} | "
        + ("–" if result.idle_kib_per_connection is None
           else f"{result.idle_kib_per_connection:.1f} ({result.idle_connections})")
        + " |",
    ]
    if result.writes_per_commit is not None:
        lines.append(f"\nwrites per group commit: {result.writes_per_commit:.1f}")
    lines += [f"\nnote: {note}" for note in result.notes]
    return "\n".join(lines)


def render_comparison(results: list[Result]) -> str:
    """One line per run, in the order run (off and on alternating)."""
    lines = [f"hubbub fan-out, inbox off vs on: {results[0].receivers} receivers, "
             f"{results[0].messages} messages, {results[0].instances} instance(s)", "",
             "| inbox | deliveries/s | deliver p50 / p99 ms | server CPU % | client CPU % "
             "| server CPU µs per delivery | summaries received |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.inbox} | {r.deliveries_per_s:,.0f} | {r.deliver_p50_ms:.1f} / "
              f"{r.deliver_p99_ms:.1f} | {r.server_cpu_pct:.0f} | {r.client_cpu_pct:.0f} "
              f"| {r.server_cpu_pct * 1e4 / r.deliveries_per_s:.2f} | {r.summaries:,} |"
              for r in results]
    for state in ("off", "on"):
        rates = sorted(r.deliveries_per_s for r in results if r.inbox == state)
        lines.append(f"\nmedian deliveries/s with the inbox {state}: "
                     f"{rates[len(rates) // 2]:,.0f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--receivers", type=int, default=100, help="receiving connections")
    ap.add_argument("--messages", type=int, default=2000, help="measured messages")
    ap.add_argument("--warm", type=int, default=200, help="unmeasured warm-up messages")
    ap.add_argument("--window", type=int, default=50, help="messages in flight")
    ap.add_argument("--idle", type=int, default=0, metavar="K",
                    help="also measure server RSS per idle connection with K connections")
    add_server_arguments(ap)  # receivers are spread round-robin over --instances
    ap.add_argument("--workers", type=int, default=1,
                    help="processes per instance, sharing its port (`hubbub serve "
                    "--workers`; PostgreSQL and Redis): the kernel spreads the receivers")
    ap.add_argument("--no-client-ids", dest="client_ids", action="store_false",
                    help="send without client_message_id (as the shared kit does)")
    ap.add_argument("--pin", action="store_true",
                    help="servers on core 0, this client on core 1 (as the shared kit does)")
    ap.add_argument("--rt", action="store_true",
                    help="SCHED_FIFO priority 1 for servers and client (root or CAP_SYS_NICE)")
    ap.add_argument("--inbox", choices=("on", "off", "compare"), default="on",
                    help="the servers' HUBBUB_INBOX; `compare`: off and on alternating")
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs with --inbox compare")
    args = ap.parse_args(argv)
    if min(args.receivers, args.messages, args.window, args.instances, args.workers) < 1:
        ap.error("--receivers, --messages, --window, --instances and --workers must be "
                 "positive")
    if args.pin and args.workers > 1:
        ap.error("--pin puts every server process on core 0, workers too: not with --workers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()

    def measure(inbox: str = args.inbox) -> Result:
        if args.pin or args.rt:
            place(0, 1 if args.pin else None, args.rt)
        with servers(args.instances, database_url=args.database_url,
                     redis_url=args.redis_url, server_cmd=args.server_cmd,
                     extra_env=[*args.server_env, f"HUBBUB_INBOX={inbox}"],
                     keep_tmp=args.keep_tmp, core=0 if args.pin else None,
                     realtime=args.rt, workers=args.workers) as group:
            result: Result = run(run_fanout(group, args))
        result.inbox = inbox
        return result

    if args.inbox == "compare":
        return report("fanout", lambda: [measure(state) for _ in range(args.rounds)
                                         for state in ("off", "on")],
                      render_comparison, None)  # --json: one run's result only
    return report("fanout", measure, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
