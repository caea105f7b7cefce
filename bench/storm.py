"""Reconnect storm (`python -m bench.storm`): every client drops its connection at once and
reconnects and syncs straight away, as after a load balancer's failover.

    python -m bench.storm                              # 19,000 clients in 4 processes, SQLite
    python -m bench.storm --clients 5000 --processes 2

The corpus is written straight into the database (tests/support/bulk.py): `--rooms`
groups sharing the clients as members, `--history` messages each. hubbub starts, and
`--processes` client processes (the load generator must not be the limit) each open
their share of the connections. On "go" each process closes all of its connections and,
at once, opens each again (`--in-flight` handshakes at a time per process) and sends
`SyncMessages` from the version it last saw minus `--behind` (what it missed), waiting
for the `SyncChunk`. The storm's time runs from "go" to the last client synced; a
handshake or sync that fails counts as a failure and is retried after 0.1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import msgspec
from tests.support.bulk import Room, bulk_load, new_user_ids

from bench.common import (
    CONNECT_TIMEOUT_S,
    BenchError,
    client_session,
    cpu_seconds,
    frame_decoder,
    percentile,
    raise_fd_limit,
    request,
    run,
    servers,
)
from hubbub.client import HubbubError, Socket

# Every client comes from 127.0.0.1, as every connection does behind a load balancer: so it
# is a trusted proxy, as it would be there, and its many handshakes at once are not held to
# the per-IP bound on half-open connections (HUBBUB_MAX_HALF_OPEN_PER_IP).
LOAD_BALANCED = ["HUBBUB_TRUSTED_PROXIES=127.0.0.1"]


@dataclass
class Job:
    """What one client process does (sent on its stdin as JSON)."""

    ws_url: str
    clients: list[tuple[str, str, str]]  # (user id, token, conversation id)
    since_version: int
    in_flight: int


async def _open(http: aiohttp.ClientSession, url: str, token: str) -> Socket:
    socket = await Socket.open(http, url, token)
    text = await asyncio.wait_for(socket.receive_text(), CONNECT_TIMEOUT_S)
    if text is None or frame_decoder.decode(text).type != "Connected":
        await socket.close()
        raise BenchError(f"expected Connected, got {text!r:.100} ({socket.close_code})")
    return socket


async def _reconnect(http: aiohttp.ClientSession, job: Job, index: int,
                     gate: asyncio.Semaphore, opened: list[Socket],
                     failures: list[str]) -> float:
    """Open client `index` and sync it, retrying what fails; seconds until synced."""
    _user_id, token, room = job.clients[index]
    started = time.perf_counter()
    body = msgspec.json.encode({"type": "SyncMessages", "conversation_id": room,
                                "since_version": job.since_version,
                                "request_id": f"s{index}"})
    while True:
        try:
            async with gate:
                socket = await _open(http, job.ws_url, token)
                await request(socket, body, f"s{index}")
            break
        except (HubbubError, BenchError, TimeoutError, OSError) as exc:
            failures.append(type(exc).__name__)
            await asyncio.sleep(0.1)
    opened.append(socket)
    return time.perf_counter() - started


async def client_process(job: Job) -> None:
    """Connect every client, say "ready", wait for "go", storm, print the result."""
    async with client_session() as http:
        gate = asyncio.Semaphore(job.in_flight)
        opened: list[Socket] = []
        failures: list[str] = []
        await asyncio.gather(*(_reconnect(http, job, i, gate, opened, failures)
                               for i in range(len(job.clients))))
        print("ready", flush=True)
        if not await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline):
            return  # the bench is gone (stdin closed): no storm against a stopped server
        dropped, opened = opened, []
        await asyncio.gather(*(s.close() for s in dropped))
        failures.clear()
        times = await asyncio.gather(*(_reconnect(http, job, i, gate, opened, failures)
                                       for i in range(len(job.clients))))
        print(json.dumps({"times": times, "failures": failures}), flush=True)
        await asyncio.gather(*(s.close() for s in opened))


async def prepare(database_url: str, args: argparse.Namespace) -> tuple[list[str], list[Room]]:
    users = new_user_ids(args.clients)
    per_room = -(-args.clients // args.rooms)
    rooms = [Room(users[i:i + per_room], args.history) for i in range(0, len(users), per_room)]
    await bulk_load(database_url, users, rooms, start_us=time.time_ns() // 1000 - 86_400_000_000)
    return users, rooms


def storm(args: argparse.Namespace) -> None:
    raise_fd_limit()
    with servers(1, database_url=args.database_url, redis_url=args.redis_url,
                 server_cmd=None, extra_env=[*LOAD_BALANCED, *args.server_env]) as group:
        # The servers' migrations ran; the corpus goes in, then the server is restarted so
        # that nothing of it is cached.
        users, rooms = run(prepare(group.database_url, args))
        group.stop()
        group.start(1)
        url = group.processes[0].ws_url
        of_user = {u: r.id for r in rooms for u in r.members}
        clients = [(u, group.token(u, "storm"), of_user[u]) for u in users]
        share = -(-len(clients) // args.processes)
        workers = []
        for p in range(args.processes):
            job = Job(url, clients[p * share:(p + 1) * share],
                      max(0, args.history - args.behind), args.in_flight)
            worker = subprocess.Popen([sys.executable, "-m", "bench.storm", "--client"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert worker.stdin is not None
            worker.stdin.write(json.dumps(job.__dict__) + "\n")
            worker.stdin.flush()
            workers.append(worker)
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise BenchError("a client process failed to connect its clients")
        print(f"{len(clients):,} clients connected in {args.processes} processes; storm",
              file=sys.stderr)
        started = time.perf_counter()
        server_cpu_before = cpu_seconds(group.pids)
        client_pids = [worker.pid for worker in workers]
        client_cpu_before = cpu_seconds(client_pids)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        times: list[float] = []
        failures: list[str] = []
        for worker in workers:
            assert worker.stdout is not None
            result = json.loads(worker.stdout.readline())
            times += result["times"]
            failures += result["failures"]
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(group.pids) - server_cpu_before
        # The clients share the machine's cores with the server: what they took says how
        # much of the storm's time was theirs.
        client_cpu = cpu_seconds(client_pids) - client_cpu_before
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
            worker.wait(60)
    print(f"| clients | processes | all reconnected and synced s | per client p50 / p99 s "
          f"| handshakes+syncs/s | server CPU s (ms per client) | client processes' CPU s "
          f"| failures |\n"
          f"|---:|---:|---:|---:|---:|---:|---:|---|\n"
          f"| {len(times):,} | {args.processes} | {elapsed:.1f} | "
          f"{percentile(times, 50):.1f} / {percentile(times, 99):.1f} | "
          f"{len(times) / elapsed:,.0f} | "
          f"{server_cpu:.1f} ({server_cpu / len(times) * 1000:.2f}) | {client_cpu:.1f} | "
          f"{len(failures)} "
          f"{dict((f, failures.count(f)) for f in set(failures)) if failures else ''} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    # As many as one server process may hold here (a descriptor limit of 20,000).
    ap.add_argument("--clients", type=int, default=19_000)
    ap.add_argument("--processes", type=int, default=4, help="client processes")
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--history", type=int, default=20, help="messages per room")
    ap.add_argument("--behind", type=int, default=5, help="messages each client missed")
    ap.add_argument("--in-flight", type=int, default=200,
                    help="handshakes at a time per client process")
    ap.add_argument("--database-url", default=None, help="default: a new SQLite file")
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--server-env", action="append", default=[], metavar="HUBBUB_N=V")
    args = ap.parse_args(argv)
    if args.client:
        raise_fd_limit()
        run(client_process(Job(**json.loads(sys.stdin.readline()))))
        return 0
    try:
        storm(args)
    except BenchError as exc:
        print(f"bench.storm: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
