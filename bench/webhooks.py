"""What webhooks and the moderation hook cost (docs/DECISIONS.md, "Webhooks: measured").

    python -m bench.webhooks persist      # bench.persist with webhooks off/on, alternating
    python -m bench.webhooks moderation   # a slow hook in one conversation, sends in another

`persist` runs `python -m bench.persist` `--pairs` times off then on (webhooks on: every
message stores a `message.created` event that a sink in this process receives and answers
204), and prints each rate and the on/off ratio of the medians. Alternating spreads the
drift of a shared machine over both sides.

`moderation` starts hubbub with a moderation hook that takes `--slow` seconds for the
messages of one conversation and answers at once for the others. It measures the send
latency (SendMessage → ActionConfirmed) in a second conversation twice in one run: alone,
then while `--slow-senders` keep sending into the slow conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
from aiohttp import web

from bench.common import (
    Servers,
    client_session,
    connect,
    create_conversation,
    free_port,
    new_users,
    percentile,
    request,
    run,
    servers,
)
from hubbub.client import Socket

SLOW_MARK = "slow:"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@contextmanager
def sink(slow_s: float = 0.0) -> Iterator[str]:
    """An HTTP endpoint in a thread of its own: 204 to every webhook, and as a moderation
    hook `allow`, after `slow_s` for content starting with SLOW_MARK. Yields its URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/review":
            if slow_s and SLOW_MARK.encode() in body:
                await asyncio.sleep(slow_s)
            return web.json_response({"action": "allow"})
        return web.Response(status=204)

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{tail:.*}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def persist_rate(extra: list[str], messages: int) -> float:
    """One `bench.persist` run's committed messages per second."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "persist.json"
        subprocess.run([sys.executable, "-m", "bench.persist", "--messages", str(messages),
                        "--json", str(result), *extra], check=True, capture_output=True)
        rate: float = json.loads(result.read_text())["persisted_per_s"]
        return rate


def compare_persist(args: argparse.Namespace) -> None:
    with sink() as url:
        on = ["--server-env", f"HUBBUB_WEBHOOK_URL={url}/hooks",
              "--server-env", f"HUBBUB_WEBHOOK_SECRET={new_secret()}"]
        rates: dict[str, list[float]] = {"off": [], "on": []}
        for pair in range(args.pairs):
            for side, extra in (("off", []), ("on", on)):
                rates[side].append(persist_rate(extra, args.messages))
                print(f"pair {pair + 1} webhooks {side}: {rates[side][-1]:.0f} msg/s",
                      flush=True)
    off, with_hooks = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(f"median off {off:.0f} msg/s, on {with_hooks:.0f} msg/s, "
          f"ratio {100 * with_hooks / off:.0f} %")


async def latencies(socket: Socket, room: str, count: int,
                    tag: str) -> list[float]:
    """`count` sends into `room`, one at a time; each one's seconds to its confirmation."""
    taken = []
    for i in range(count):
        body = msgspec.json.encode({"type": "SendMessage", "conversation_id": room,
                                    "content": f"{tag} {i}", "request_id": f"{tag}{i}"})
        started = time.perf_counter()
        await request(socket, body, f"{tag}{i}")
        taken.append(time.perf_counter() - started)
    return taken


async def slow_traffic(socket: Socket, room: str,
                       stop: asyncio.Event) -> int:
    """Keep one send waiting on the slow hook at a time, until `stop`; how many."""
    sent = 0
    while not stop.is_set():
        body = msgspec.json.encode({"type": "SendMessage", "conversation_id": room,
                                    "content": f"{SLOW_MARK} {sent}",
                                    "request_id": f"s{sent}"})
        await request(socket, body, f"s{sent}")
        sent += 1
    return sent


async def measure_moderation(group: Servers, args: argparse.Namespace) -> None:
    server = group.processes[0]
    async with client_session() as http:
        fast_user, *slow_users = new_users(group, 1 + args.slow_senders, "sender")
        fast_room = await create_conversation(http, server, fast_user, "fast")
        slow_room = await create_conversation(http, server, fast_user, "slow",
                                              [u.id for u in slow_users])
        fast = await connect(http, server, fast_user)
        slow = [await connect(http, server, u) for u in slow_users]
        await latencies(fast, fast_room, 20, "warm")
        alone = await latencies(fast, fast_room, args.sends, "alone")
        stop = asyncio.Event()
        traffic = [asyncio.ensure_future(slow_traffic(s, slow_room, stop)) for s in slow]
        await asyncio.sleep(args.slow)  # every slow sender is waiting on the hook
        beside = await latencies(fast, fast_room, args.sends, "beside")
        stop.set()
        slow_sent = sum(await asyncio.gather(*traffic))
        for socket in [fast, *slow]:
            await socket.close()
    for name, taken in (("alone", alone), ("beside the slow hook", beside)):
        print(f"{name:>22}: p50 {1000 * percentile(taken, 50):.1f} ms, "
              f"p99 {1000 * percentile(taken, 99):.1f} ms ({len(taken)} sends)")
    print(f"slow conversation: {slow_sent} sends of {args.slow} s each by "
          f"{args.slow_senders} senders meanwhile")


def compare_moderation(args: argparse.Namespace) -> None:
    with sink(args.slow) as url:
        env = [f"HUBBUB_MODERATION_URL={url}/review",
               f"HUBBUB_WEBHOOK_SECRET={new_secret()}",
               f"HUBBUB_MODERATION_TIMEOUT={args.slow * 3}"]
        with servers(1, database_url=None, redis_url=None, server_cmd=None,
                     extra_env=env) as group:
            run(measure_moderation(group, args))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    persist = sub.add_parser("persist")
    persist.add_argument("--pairs", type=int, default=3)
    # bench.persist's own default: 10,000 messages measured ~0.8 s, too short to compare.
    persist.add_argument("--messages", type=int, default=20000)
    moderation = sub.add_parser("moderation")
    moderation.add_argument("--slow", type=float, default=1.0, help="the hook's delay, s")
    moderation.add_argument("--slow-senders", type=int, default=20)
    moderation.add_argument("--sends", type=int, default=300)
    args = ap.parse_args(argv)
    if args.what == "persist":
        compare_persist(args)
    else:
        compare_moderation(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
