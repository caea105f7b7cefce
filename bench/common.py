"""What both benchmarks share: hubbub servers as subprocesses, tokens, clients, measuring.

Every server runs in its own process group on 127.0.0.1 and a free port, with its own
temporary SQLite database (unless a database URL is given), rate limits off and a random
JWT secret. Every wait is bounded; `Servers.stop` ends exactly the groups it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec

from hubbub.client import HubbubError, Socket
from hubbub.domain.tokens import mint

HOST = "127.0.0.1"
# Generous: the first start of a server also creates the schema.
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
# Connections are opened this many at a time, so the server's accept backlog never fills.
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT_S = 30.0
# A client process busier than this share of one core limits what it can measure.
CLIENT_SATURATED_PCT = 90.0


class BenchError(Exception):
    """A run that could not complete; the message says why (with the server's log tail)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def raise_fd_limit() -> None:
    """Many connections need many descriptors: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- servers ------------------------------------------------------------------------------


@dataclass
class ServerProcess:
    index: int
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Servers:
    """Several hubbub instances sharing one database (and one Redis when there are many)."""

    secret: str
    database_url: str
    redis_url: str | None
    command: list[str]
    extra_env: dict[str, str]
    tmp: Path
    processes: list[ServerProcess] = field(default_factory=list)
    # Where the servers run: a CPU core (None: anywhere) and SCHED_FIFO or not (see place).
    core: int | None = None
    realtime: bool = False
    # Processes per server (`hubbub serve --workers`) sharing its port.
    workers: int = 1
    redis_prefix: str = field(default_factory=lambda: "bench-" + secrets.token_hex(4))

    @property
    def pids(self) -> list[int]:
        return [p.process.pid for p in self.processes]

    def token(self, user_id: str, name: str) -> str:
        return mint(self.secret, user_id, name, now=time.time(), ttl_s=3600)

    def start(self, instances: int) -> None:
        """Start the instances one after another (the first one migrates the schema)."""
        for index in range(instances):
            self.processes.append(self._start_one(index))

    def _start_one(self, index: int) -> ServerProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
        env.update({
            "HUBBUB_HOST": HOST,
            "HUBBUB_PORT": str(port),
            "HUBBUB_JWT_SECRET": self.secret,
            "HUBBUB_DATABASE_URL": self.database_url,
            "HUBBUB_RATE_LIMITS": "off",
            "HUBBUB_LOG_LEVEL": "warning",
            # Idle benchmark connections must not be closed for connecting from one IP.
            "HUBBUB_MAX_CONNECTIONS_PER_USER": "1000",
        })
        if self.redis_url:
            env["HUBBUB_REDIS_URL"] = self.redis_url
            # Keys and channels of its own, so a shared Redis is never mixed up.
            env["HUBBUB_REDIS_PREFIX"] = self.redis_prefix
        env.update(self.extra_env)
        log_path = self.tmp / f"server-{index}.log"
        with contextlib.ExitStack() as stack:
            ready = None
            if self.workers > 1:
                env["HUBBUB_WORKERS"] = str(self.workers)
                ready = stack.enter_context(_notify_socket(self.tmp / f"notify-{index}.sock"))
                env["NOTIFY_SOCKET"] = ready.getsockname()
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    self.command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )
            server = ServerProcess(index, port, process, log_path)
            try:
                # Before the server starts its threads (imports take a while), which inherit
                # it; a supervisor's workers inherit it too.
                place(process.pid, self.core, self.realtime)
                if ready is not None:  # /healthz answers once the first worker listens
                    _wait_ready(server, ready)
                _wait_healthy(server)
            except BaseException:
                _stop(server)
                raise
        return server

    def stop(self) -> None:
        for server in self.processes:
            _stop(server)
        self.processes.clear()

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def place(pid: int, core: int | None, realtime: bool) -> None:
    """Pin `pid` (0: this process) to a core and/or give it SCHED_FIFO priority 1.

    On a machine shared with other work the server and the client otherwise wait for time
    slices at each of their many hand-offs, which divides throughput by several times (the
    shared kit's README explains). SCHED_FIFO needs root or CAP_SYS_NICE; the kernel's RT
    throttling still leaves ~5 % of each core to everything else.

    Raises:
        BenchError: the placement is not permitted here.
    """
    try:
        if core is not None:
            os.sched_setaffinity(pid, {core})
        if realtime:
            os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot place process {pid} (core {core}, realtime {realtime}): "
                         f"{exc}") from exc


def _wait_healthy(server: ServerProcess) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"server {server.index} exited with {server.process.returncode}:\n"
                             f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base_url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"server {server.index} not healthy after {STARTUP_TIMEOUT_S:.0f} s:\n"
                     f"{server.log_tail()}")


@contextlib.contextmanager
def _notify_socket(path: Path) -> Iterator[socket.socket]:
    """Where `hubbub serve --workers` says READY=1 once every worker listens (systemd's
    protocol, src/hubbub/notify.py)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        try:
            sock.settimeout(STARTUP_TIMEOUT_S)
            yield sock
        finally:
            path.unlink()  # not a regular file: the cleanup of `tmp` would leave it


def _wait_ready(server: ServerProcess, ready: socket.socket) -> None:
    try:
        while ready.recv(4096) != b"READY=1":
            pass
    except TimeoutError:
        raise BenchError(f"server {server.index}'s workers not ready after "
                         f"{STARTUP_TIMEOUT_S:.0f} s:\n{server.log_tail()}") from None


def _stop(server: ServerProcess) -> None:
    """SIGTERM to the server's own process group, SIGKILL if it lingers."""
    process = server.process
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def servers(instances: int, *, database_url: str | None, redis_url: str | None,
            server_cmd: str | None, extra_env: Sequence[str] = (),
            keep_tmp: bool = False, core: int | None = None,
            realtime: bool = False, workers: int = 1) -> Iterator[Servers]:
    """Started servers (a fresh SQLite file unless `database_url`), stopped on exit."""
    if (instances > 1 or workers > 1) and not redis_url:
        raise BenchError("--instances > 1 and --workers > 1 need --redis-url: without a "
                         "shared bus the processes would not see each other's events")
    if workers > 1 and not (database_url or "").startswith(("postgresql", "postgres")):
        raise BenchError("--workers > 1 needs a PostgreSQL --database-url")
    tmp = Path(tempfile.mkdtemp(prefix="hubbub-bench-"))
    command = (shlex.split(server_cmd) if server_cmd
               else [sys.executable, "-m", "hubbub", "serve"])
    env: dict[str, str] = {}
    for item in extra_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("HUBBUB_"):
            raise BenchError(f"--server-env wants HUBBUB_NAME=VALUE, got {item!r}")
        env[name] = value
    group = Servers(
        secret=secrets.token_urlsafe(32),
        database_url=database_url or f"sqlite:///{tmp / 'bench.db'}",
        redis_url=redis_url, command=command, extra_env=env, tmp=tmp, core=core,
        realtime=realtime, workers=workers,
    )
    try:
        with group:
            group.start(instances)
            yield group
    finally:
        if not keep_tmp:
            for path in sorted(tmp.rglob("*"), reverse=True):
                with contextlib.suppress(OSError):
                    path.unlink() if path.is_file() else path.rmdir()
            with contextlib.suppress(OSError):
                tmp.rmdir()


# -- measuring ----------------------------------------------------------------------------


def _proc_tree(pids: Sequence[int]) -> list[int]:
    """The servers and their children (e.g. a launcher's real server process)."""
    found: list[int] = []
    for pid in pids:
        found.append(pid)
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                found.extend(_proc_tree([int(child)]))
    return found


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory of the servers' processes, from /proc."""
    total = 0
    for pid in _proc_tree(pids):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the servers' processes, from /proc (10 ms ticks)."""
    total = 0
    for pid in _proc_tree(pids):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN when there is nothing."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- clients ------------------------------------------------------------------------------


class Frame(msgspec.Struct):
    """The few fields of a server frame a benchmark looks at; everything else is skipped.

    The benchmarks read frames with the SDK's `Socket.receive_text` and decode them into
    this narrow type rather than the SDK's full message union, which costs the client
    more per frame (docs/DECISIONS.md): the client is often the limit of what a run can
    measure."""

    type: str
    request_id: str | None = None
    code: str | None = None
    message: MessageBody | None = None


class MessageBody(msgspec.Struct):
    id: str
    content: str
    version: int = 0


frame_decoder = msgspec.json.Decoder(Frame)


@dataclass
class User:
    id: str
    name: str
    token: str


def new_users(group: Servers, count: int, prefix: str) -> list[User]:
    users: list[User] = []
    for i in range(count):
        user_id = str(uuid.uuid4())
        name = f"{prefix}-{i}"
        users.append(User(user_id, name, group.token(user_id, name)))
    return users


def client_session() -> aiohttp.ClientSession:
    """One HTTP/WebSocket client for the whole run: no connection limit, no proxies."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S), trust_env=False,
    )


async def create_conversation(http: aiohttp.ClientSession, server: ServerProcess, owner: User,
                              name: str, member_ids: Sequence[str] = ()) -> str:
    async with http.post(
        server.base_url + "/api/v1/conversations",
        headers={"Authorization": f"Bearer {owner.token}"},
        json={"kind": "channel", "name": name, "member_ids": list(member_ids)},
    ) as response:
        body: dict[str, Any] = await response.json(content_type=None)
        if response.status not in (200, 201):
            raise BenchError(f"creating the conversation failed: {response.status} {body}")
        conversation_id: str = body["id"]
        return conversation_id


async def connect(http: aiohttp.ClientSession, server: ServerProcess, user: User) -> Socket:
    """Open `/ws` as `user` with the SDK's connection and wait for `Connected`."""
    try:
        socket = await Socket.open(http, server.ws_url, user.token)
    except HubbubError as exc:
        raise BenchError(f"connecting to {server.ws_url} failed: {exc}") from exc
    text = await asyncio.wait_for(socket.receive_text(), CONNECT_TIMEOUT_S)
    if text is None or frame_decoder.decode(text).type != "Connected":
        await socket.close()
        raise BenchError(f"expected Connected, got {text!r:.200} ({socket.close_code})")
    return socket


async def request(socket: Socket, body: bytes, request_id: str) -> Frame:
    """Send one request and wait for its direct response, skipping broadcasts."""
    await socket.send_text(body)
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while True:
            text = await socket.receive_text()
            if text is None:
                raise BenchError(f"connection closed while waiting for {request_id}: "
                                 f"{socket.close_code}")
            frame = frame_decoder.decode(text)
            if frame.request_id == request_id:
                if frame.type == "Error":
                    raise BenchError(f"request {request_id} failed: {text:.300}")
                return frame


async def connect_all(http: aiohttp.ClientSession, targets: Sequence[ServerProcess],
                      users: Sequence[User], join: str | None = None) -> list[Socket]:
    """Connect every user (round-robin over the servers), optionally joining `join`."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    join_body = None if join is None else msgspec.json.encode(
        {"type": "JoinConversation", "conversation_id": join, "request_id": "j"})

    async def one(i: int, user: User) -> Socket:
        async with gate:
            ws = await connect(http, targets[i % len(targets)], user)
            if join_body is not None:
                await request(ws, join_body, "j")
            return ws

    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))


async def writer_totals(http: aiohttp.ClientSession, targets: Sequence[ServerProcess]
                        ) -> tuple[float, float]:
    """(commits, writes) of the servers' group commit so far, summed, from `/metrics`."""
    commits = writes = 0.0
    for server in targets:
        async with http.get(f"{server.base_url}/metrics") as response:
            for line in (await response.text()).splitlines():
                name, _, value = line.partition(" ")
                if name == "hubbub_writer_commits_total":
                    commits += float(value)
                elif name == "hubbub_writer_jobs_total":
                    writes += float(value)
    return commits, writes


async def close_all(sockets: Sequence[Socket]) -> None:
    """Close the client sockets, bounded in time (a stuck close is abandoned)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_TIMEOUT_S * 2):
            await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)


ResultT = TypeVar("ResultT")


def add_server_arguments(ap: argparse.ArgumentParser, *, bus: bool = True) -> None:
    """The options every benchmark that starts servers shares."""
    ap.add_argument("--database-url", help="default: a new SQLite file per run")
    if bus:
        ap.add_argument("--instances", type=int, default=1,
                        help="servers sharing one database and bus")
        ap.add_argument("--redis-url", help="the bus for --instances > 1 (HUBBUB_REDIS_URL)")
        ap.add_argument("--server-env", action="append", default=[], metavar="HUBBUB_N=V",
                        help="extra server environment, repeatable")
        ap.add_argument("--timeout", type=float, default=180.0, help="limit for the load, s")
    ap.add_argument("--server-cmd", help="default: this Python's `-m hubbub serve`")
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--keep-tmp", action="store_true", help="keep server logs and database")


def report(name: str, produce: Callable[[], ResultT], render: Callable[[ResultT], str],
           json_path: Path | None) -> int:
    """Run a benchmark: print its table, or why it failed (exit status 1), and write its
    result as JSON when asked."""
    try:
        result = produce()
    except BenchError as exc:
        print(f"bench.{name} failed: {exc}", file=sys.stderr)
        return 1
    print(render(result))
    if json_path:
        json_path.write_text(json.dumps(asdict(result), indent=2) + "\n")  # type: ignore[call-overload]
    return 0


def run(main: Any) -> Any:
    """Run a coroutine on uvloop (the fastest loop, as the server uses)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency on Linux
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
