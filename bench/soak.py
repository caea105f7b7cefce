"""Soak: connection churn and steady traffic for a few minutes; does the server's memory stay
flat once warmed up?

    python -m bench.soak                          # 30 s warm-up, then 180 s of churn
    python -m bench.soak --warmup 60 --duration 600 --stayers 200 --churners 40

It starts hubbub like `bench.fanout` (its own SQLite file, a free port), but with rate
limits ON and set high enough never to refuse this load, so the limiter's buckets, the
connection caps and the ticket store are exercised too. Then, for the whole run:

- `--stayers` connections stay open in `--rooms` channels and send `--rate` messages per
  second between them, each between a typing start and stop;
- `--churners` loops each connect (by token, or by a fresh `ws-tickets` ticket), join a
  room, start typing, send a few messages, fetch a page of history and leave — one in four without a
  closing handshake (the socket is just dropped), one in eight after sitting in a busy room
  without reading, until the server closes it as a slow consumer (4008);
- `--garbage` loops each connect and send hostile frames (64 KiB of brackets, invalid JSON,
  unknown types, binary frames) as fast as the socket takes them, until the server closes
  them for flooding (1008), then connect again.

The server's RSS is sampled every `--sample` seconds. The baseline is taken at the end of
the warm-up; the final value after the load stops and the server has been idle for
`--settle` seconds. The run fails (exit status 1) when the final RSS exceeds the baseline by
more than `--tolerance` (10 %). Not part of `make test`: it takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from dataclasses import asdict, dataclass, field

import aiohttp
import msgspec

from bench.common import (
    BenchError,
    Servers,
    User,
    add_server_arguments,
    client_session,
    close_all,
    connect,
    connect_all,
    cpu_seconds,
    create_conversation,
    new_users,
    raise_fd_limit,
    rss_bytes,
    run,
    servers,
)
from hubbub.client import Socket

# High enough never to refuse the soak's load, low enough that every bucket is real.
LIMITS_ENV = [
    "HUBBUB_RATE_LIMITS=on", "HUBBUB_SEND_RATE=1000", "HUBBUB_SEND_BURST=1000",
    "HUBBUB_OTHER_RATE=1000", "HUBBUB_OTHER_BURST=1000", "HUBBUB_HANDSHAKE_RATE=10000",
    "HUBBUB_HANDSHAKE_BURST=10000", "HUBBUB_MAX_CONNECTIONS_PER_USER=1000",
    "HUBBUB_CONVERSATION_BURST=10000",
    # Small, so a client that stops reading is closed within seconds (the kernel's send
    # buffer is capped to the same size).
    "HUBBUB_MAX_PENDING_BYTES=65536",
]
CONTENT = "soak " + "z" * 400
# What a garbage sender sends, in turn: each is refused cheaply and costs it a token.
GARBAGE: tuple[bytes, ...] = (
    b"[" * 65536, b'{"type":"SendMessage","content":' + b"{" * 60000,
    b"not json at all", b'{"type":"NoSuchType"}', b'{"type":"Typing","is_typing":"yes"}',
)
# A churner that stops reading waits this long for the server to give up on it.
SLOW_WAIT_S = 15.0
# …with a receive buffer this small, so the server sees the backlog soon.
SLOW_RCVBUF = 4096


@dataclass
class Result:
    warmup_s: float
    duration_s: float
    stayers: int
    churners: int
    rooms: int
    rate: float
    rss_start_mb: float = 0.0
    rss_baseline_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_final_mb: float = 0.0
    growth_pct: float = 0.0
    passed: bool = False
    connections: int = 0
    abrupt_closes: int = 0
    slow_consumer_closes: int = 0
    garbage_senders: int = 0
    garbage_frames: int = 0
    flood_closes: int = 0
    server_closes: dict[str, int] = field(default_factory=dict)
    tickets: int = 0
    messages_sent: int = 0
    errors: int = 0
    # What went wrong, by kind (an Error frame's code, or the exception's type): a run
    # passes only with none.
    error_kinds: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    samples: list[tuple[float, float]] = field(default_factory=list)


class Soak:
    """The running load: counters, a stop flag, and the users and rooms it works with."""

    def __init__(self, group: Servers, http: aiohttp.ClientSession, rooms: list[str],
                 users: list[User], attackers: list[User], result: Result) -> None:
        self.group = group
        self.server = group.processes[0]
        self.http = http
        self.rooms = rooms
        self.users = users
        # Users of their own: every invalid frame costs its sender's budget (§6), and an
        # honest user sharing it would be refused along with the attacker.
        self.attackers = attackers
        self.result = result
        self.stopping = asyncio.Event()
        self._ids = 0

    def error(self, kind: str) -> None:
        self.result.errors += 1
        self.result.error_kinds[kind] = self.result.error_kinds.get(kind, 0) + 1

    def request_id(self) -> str:
        self._ids += 1
        return f"s{self._ids}"

    def frame(self, body: dict[str, object]) -> bytes:
        body["request_id"] = self.request_id()
        return msgspec.json.encode(body)

    async def send(self, socket: Socket, body: dict[str, object]) -> None:
        await socket.send_text(self.frame(body))

    async def send_bare(self, ws: aiohttp.ClientWebSocketResponse,
                        body: dict[str, object]) -> None:
        await ws.send_frame(self.frame(body), aiohttp.WSMsgType.TEXT)

    async def ticket(self, user: User) -> str:
        async with self.http.post(self.server.base_url + "/api/v1/ws-tickets",
                                  headers={"Authorization": f"Bearer {user.token}"}) as resp:
            if resp.status != 201:
                raise BenchError(f"ws-tickets answered {resp.status}")
            body = await resp.json()
        self.result.tickets += 1
        ticket: str = body["ticket"]
        return ticket

    async def stayer(self, socket: Socket, room: str, interval: float) -> None:
        """Reads everything; sends one message every `interval` seconds (with jitter)."""
        reader = asyncio.get_running_loop().create_task(self._drain(socket))
        try:
            while not self.stopping.is_set():
                await asyncio.sleep(random.uniform(0.5, 1.5) * interval)
                await self.send(socket, {"type": "Typing", "conversation_id": room,
                                         "is_typing": True})
                await self.send(socket, {"type": "SendMessage", "conversation_id": room,
                                         "content": CONTENT})
                await self.send(socket, {"type": "Typing", "conversation_id": room,
                                         "is_typing": False})
                self.result.messages_sent += 1
        finally:
            reader.cancel()

    async def _drain(self, socket: Socket) -> None:
        while (text := await socket.receive_text()) is not None:
            if '"code":"' in text[:80]:
                self.error("Error " + msgspec.json.decode(text).get("code", "?"))

    async def churner(self, index: int) -> None:
        """Connect, do a little, leave — forever, in one of three ways. On aiohttp's bare
        connection, not the SDK's: it drops sockets and stops reading on purpose."""
        n = 0
        while not self.stopping.is_set():
            n += 1
            user = random.choice(self.users)
            room = random.choice(self.rooms)
            try:
                credential = (f"token={user.token}" if n % 2
                              else f"ticket={await self.ticket(user)}")
                ws = await self.http.ws_connect(f"{self.server.ws_url}?{credential}",
                                                autoping=True, max_msg_size=0)
                await ws.receive(timeout=10)  # Connected
                self.result.connections += 1
                if (n + index) % 8 == 0:
                    await self._stop_reading(ws)
                    continue
                await self.send_bare(ws, {"type": "JoinConversation", "conversation_id": room})
                # Left typing: the close (clean or not) must end it, and free its state.
                await self.send_bare(ws, {"type": "Typing", "conversation_id": room,
                                          "is_typing": True})
                for _ in range(3):
                    await self.send_bare(ws, {"type": "SendMessage", "conversation_id": room,
                                              "content": CONTENT})
                    self.result.messages_sent += 1
                await self.send_bare(ws, {"type": "FetchHistory", "conversation_id": room,
                                          "limit": 20})
                await asyncio.sleep(random.uniform(0.05, 0.3))
                if (n + index) % 4 == 0:
                    _transport(ws).abort()  # no closing handshake: the socket just drops
                    self.result.abrupt_closes += 1
                else:
                    await ws.close()
            except (aiohttp.ClientError, TimeoutError, BenchError) as exc:
                self.error(f"churner {type(exc).__name__}: {exc}"[:120])
                await asyncio.sleep(0.1)

    async def garbage(self) -> None:
        """Connect and send hostile frames until the server closes us (1008); again."""
        while not self.stopping.is_set():
            user = random.choice(self.attackers)
            try:
                garbler = await connect(self.http, self.server, user)
            except (TimeoutError, BenchError) as exc:
                self.error(f"garbage {type(exc).__name__}: {exc}"[:120])
                await asyncio.sleep(0.1)
                continue
            self.result.connections += 1
            reader = asyncio.get_running_loop().create_task(self._ignore(garbler))
            try:
                n, sent = 0, True
                while sent and not self.stopping.is_set():  # until the server closes us
                    frame = GARBAGE[n % len(GARBAGE)]
                    n += 1
                    sent = await (garbler.send_binary(frame[:1024]) if n % 7 == 0
                                  else garbler.send_text(frame))
                    self.result.garbage_frames += sent
                    await asyncio.sleep(0)
            finally:
                await asyncio.wait([reader], timeout=5)
                reader.cancel()
                await garbler.close()
            self.result.garbage_senders += 1

    async def _ignore(self, socket: Socket) -> None:
        """Read and drop what the server answers a garbage sender (its errors expected)."""
        while await socket.receive_text() is not None:
            pass

    async def _stop_reading(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Join every room, stop reading, and wait until the server closes us with 4008."""
        _transport(ws).get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        for room in self.rooms:
            await self.send_bare(ws, {"type": "JoinConversation", "conversation_id": room})
        _transport(ws).pause_reading()
        await asyncio.sleep(SLOW_WAIT_S)
        # The server cut us off 2 s after its close frame, which sat behind what we did not
        # read, so the code is counted from its metrics at the end, not seen here.
        _transport(ws).abort()


def _transport(ws: aiohttp.ClientWebSocketResponse) -> asyncio.Transport:
    """The client socket's transport (aiohttp exposes only its extra info)."""
    transport = ws._response.connection.transport  # type: ignore[union-attr]
    assert transport is not None
    return transport


async def run_soak(group: Servers, args: argparse.Namespace) -> Result:
    result = Result(warmup_s=args.warmup, duration_s=args.duration, stayers=args.stayers,
                    churners=args.churners, rooms=args.rooms, rate=args.rate)
    server = group.processes[0]
    pids = group.pids
    result.rss_start_mb = rss_bytes(pids) / 2**20
    async with client_session() as http:
        users = new_users(group, args.users, "soak")
        owner = users[0]
        for user in users:  # make every user known, so rooms can list them as members
            async with http.get(server.base_url + "/api/v1/users/me",
                                headers={"Authorization": f"Bearer {user.token}"}):
                pass
        rooms = [await create_conversation(http, server, owner, f"soak-{i}",
                                           [u.id for u in users[1:]])
                 for i in range(args.rooms)]
        soak = Soak(group, http, rooms, users,
                    new_users(group, max(1, args.garbage), "garbage"), result)
        stay_users = [users[i % len(users)] for i in range(args.stayers)]
        sockets: list[tuple[Socket, str]] = []
        for i in range(args.rooms):
            part = stay_users[i::args.rooms]
            sockets.extend((s, rooms[i]) for s in
                           await connect_all(http, [server], part, join=rooms[i]))
        interval = args.stayers / args.rate
        cpu_start = cpu_seconds(pids)
        tasks = [asyncio.get_running_loop().create_task(soak.stayer(s, room, interval))
                 for s, room in sockets]
        tasks += [asyncio.get_running_loop().create_task(soak.churner(i))
                  for i in range(args.churners)]
        tasks += [asyncio.get_running_loop().create_task(soak.garbage())
                  for _ in range(args.garbage)]
        started = time.monotonic()
        end = started + args.warmup + args.duration
        baseline_at = started + args.warmup
        next_sample = started
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                rss = rss_bytes(pids) / 2**20
                result.samples.append((round(now - started, 1), round(rss, 2)))
                print(f"  {now - started:6.0f} s  RSS {rss:7.1f} MiB  "
                      f"connections {result.connections}  messages {result.messages_sent}",
                      file=sys.stderr)
                next_sample = now + args.sample
            if not result.rss_baseline_mb and now >= baseline_at:
                result.rss_baseline_mb = rss_bytes(pids) / 2**20
            if any(t.done() and t.exception() for t in tasks):
                raise BenchError("a load task failed: " + repr(
                    next(t.exception() for t in tasks if t.done() and t.exception())))
            await asyncio.sleep(min(1.0, max(0.0, end - now)))
        soak.stopping.set()
        await asyncio.wait(tasks, timeout=SLOW_WAIT_S + 10)
        for task in tasks:
            task.cancel()
        await close_all([s for s, _ in sockets])
        result.server_cpu_s = round(cpu_seconds(pids) - cpu_start, 1)
        result.server_closes = await server_closes(http, server.base_url)
        result.slow_consumer_closes = result.server_closes.get("4008", 0)
        result.flood_closes = result.server_closes.get("1008", 0)
    await asyncio.sleep(args.settle)
    result.rss_final_mb = rss_bytes(pids) / 2**20
    result.rss_peak_mb = max(rss for _, rss in result.samples)
    result.growth_pct = round(100 * (result.rss_final_mb / result.rss_baseline_mb - 1), 2)
    result.passed = result.growth_pct <= args.tolerance and result.errors == 0
    for name in ("rss_start_mb", "rss_baseline_mb", "rss_final_mb"):
        setattr(result, name, round(getattr(result, name), 2))
    return result


async def server_closes(http: aiohttp.ClientSession, base_url: str) -> dict[str, int]:
    """Connections the server closed, by close code, from its Prometheus metrics."""
    async with http.get(base_url + "/metrics") as response:
        text = await response.text()
    closes: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("hubbub_connections_closed_total{"):
            code = line.split('code="', 1)[1].split('"', 1)[0]
            closes[code] = int(float(line.rsplit(" ", 1)[1]))
    return closes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the baseline")
    ap.add_argument("--duration", type=float, default=180.0, help="seconds after the baseline")
    ap.add_argument("--stayers", type=int, default=100, help="connections open all along")
    ap.add_argument("--churners", type=int, default=20, help="connect/leave loops")
    ap.add_argument("--garbage", type=int, default=2, help="hostile-frame senders")
    ap.add_argument("--rooms", type=int, default=5, help="channels the load spreads over")
    ap.add_argument("--users", type=int, default=200, help="distinct users")
    ap.add_argument("--rate", type=float, default=100.0, help="stayers' messages per second")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--settle", type=float, default=5.0, help="idle seconds before the end")
    ap.add_argument("--tolerance", type=float, default=10.0, help="allowed RSS growth, %%")
    add_server_arguments(ap, bus=False)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    try:
        with servers(1, database_url=args.database_url, redis_url=None,
                     server_cmd=args.server_cmd, extra_env=LIMITS_ENV,
                     keep_tmp=args.keep_tmp) as group:
            result = run(run_soak(group, args))
    except BenchError as exc:
        print(f"soak failed: {exc}", file=sys.stderr)
        return 2
    summary = asdict(result)
    samples = summary.pop("samples")
    print(json.dumps(summary, indent=2))
    print(f"RSS after warm-up {result.rss_baseline_mb:.1f} MiB, at the end "
          f"{result.rss_final_mb:.1f} MiB ({result.growth_pct:+.1f} %, peak "
          f"{result.rss_peak_mb:.1f} MiB): {'PASS' if result.passed else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({**summary, "samples": samples}, indent=2))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
