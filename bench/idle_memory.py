"""Where an idle WebSocket connection's memory goes: tracemalloc by allocation site.

Runs hubbub in this process on uvloop (as `hubbub serve` does), has the benchmark kit's
load generator open 50 connections and then N idle authenticated ones, and compares
tracemalloc snapshots taken with 50 and with N + 50 open. The kit's own number (RSS per
connection) is the one the issue is judged by; this says which lines allocate it. The
load generator is built by the kit (`python3 ../shared/bench/run.py` once).

    .venv/bin/python -m bench.idle_memory --connections 2000
    .venv/bin/python -m bench.idle_memory --by traceback --depth 8 --top 40
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import tracemalloc
from collections.abc import Sized
from pathlib import Path

import uvloop
from tests.support.server import on_sqlite, run_server

from hubbub.transport.websocket.connections import CONNECTIONS

WARM = 50  # the load generator's first connections, part of the baseline
DEFAULT_LOADGEN = (Path(os.environ.get("HUBBUB_BENCH_HOME", "~/.cache/hubbub-bench"))
                   .expanduser() / "build" / "loadgen")


async def measure(loadgen: Path, connections: int, key: str, depth: int, top: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = on_sqlite(Path(tmp), rate_limits=False, log_level="warning")
        async with run_server(settings) as server:
            tokens = Path(tmp) / "tokens.txt"
            tokens.write_text("".join(server.user().token + "\n"
                                      for _ in range(WARM + connections)))
            registry = server.app[CONNECTIONS]
            tracemalloc.start(depth)
            client = await asyncio.create_subprocess_exec(
                str(loadgen), "--proto", "hubbub", "--url", server.ws_url,
                "--tokens", str(tokens), "--mode", "idle", "--idle", str(connections),
                "--pids", str(os.getpid()), "--timeout", "600",
                stdout=asyncio.subprocess.PIPE)
            before = await _snapshot(registry.sockets, WARM)
            after = await _snapshot(registry.sockets, WARM + connections)
            tracemalloc.stop()
            stats = after.compare_to(before, key)
            total = sum(stat.size_diff for stat in stats)
            print(f"traced: {total / connections:.0f} B per connection")
            for stat in stats[:top]:
                frames = [f"{Path(f.filename).name}:{f.lineno}"
                          for f in reversed(stat.traceback)]
                print(f"{stat.size_diff / connections:7.0f} B {stat.count_diff / connections:5.1f}"
                      f" blocks  {' < '.join(frames)}")
            output, _ = await client.communicate()
            print(output.decode().strip())


async def _snapshot(sockets: Sized, count: int) -> tracemalloc.Snapshot:
    """A snapshot once `count` connections are open and settled."""
    # The registry has no event for a new connection; polling keeps this out of hubbub.
    while len(sockets) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    gc.collect()
    return tracemalloc.take_snapshot()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--by", choices=["lineno", "filename", "traceback"], default="lineno")
    parser.add_argument("--depth", type=int, default=1, help="frames kept per allocation")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--loadgen", type=Path, default=DEFAULT_LOADGEN)
    args = parser.parse_args()
    if not args.loadgen.exists():
        parser.exit(2, f"no load generator at {args.loadgen}: run the kit once to build it\n")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(measure(args.loadgen, args.connections, args.by, args.depth, args.top))


if __name__ == "__main__":
    main()
