"""Invalid frames cost the sender, not the server (PROTOCOL.md §6, docs/DECISIONS.md
"Invalid frames"): each one is refused in microseconds and takes a token from the sender's
"other actions" bucket, so a connection that sends nothing but garbage is answered
RATE_LIMITED and then closed with 1008, while a bystander's requests keep their pace.
Against a real `hubbub serve`."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path

import aiohttp
import pytest

from hubbub.client import HandshakeFailed, Socket
from hubbub.config import Settings
from tests.conftest import Backend
from tests.support.flows import TIMEOUT
from tests.support.process import ServerProcess, for_backend, serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The frame that cost the most to refuse before (the depth pre-scan walked it in Python,
# ~9 ms each): 64 KiB of brackets, exactly max_frame_bytes.
GARBAGE = "[" * 64 * 1024
SENDERS = 4
# Long enough for many rounds of garbage, closes and reconnects.
ATTACK_S = 5.0
# A bystander's Ping is answered in a few ms; the bound is generous for a noisy machine.
P99_BOUND_S = 0.25
# The bystander stays at half its own "other actions" budget (HUBBUB_OTHER_RATE's default):
# on a fast machine, Pings sent back to back would be rate-limited for the bystander's own
# pace, not the attack's.
PING_EVERY_S = 2 / Settings.model_fields["other_rate"].default


# The server under attack keeps its rate limits on.
LIMITS_ON = {"HUBBUB_RATE_LIMITS": "on"}


async def blast(process: ServerProcess, until: float) -> int:
    """Send garbage as fast as the socket takes it, never reading, and connect again each
    time the server closes the connection, until `until`; how many connections it took."""
    url = f"{process.ws_url}?token={process.user().token}"
    opened = 0
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            try:
                socket = await Socket.open(session, url, None)
            except HandshakeFailed:  # the handshake rate of our IP: back off a little
                await asyncio.sleep(0.1)
                continue
            opened += 1
            try:  # until the server has closed the connection (a send fails)
                while time.monotonic() < until and await socket.send_text(GARBAGE):
                    pass
            finally:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(socket.close(), 1)
    return opened


async def closes(process: ServerProcess) -> dict[str, float]:
    """The server's `hubbub_connections_closed_total`, by close code."""
    return {sample.labels["code"]: sample.value
            for sample in await process.samples("hubbub_connections_closed_total")}


async def test_garbage_senders_are_closed_with_1008_and_the_bystander_keeps_its_pace(
        backend: Backend, tmp_path: Path) -> None:
    """Connections sending 64 KiB frames of brackets at full speed (and connecting again
    when closed) are closed with 1008, again and again; meanwhile another user's Pings keep
    a p99 round trip far under a second."""
    async with serving(for_backend(backend, tmp_path, LIMITS_ON)) as process:
        bystander = await process.connect(process.user("bystander"))
        until = time.monotonic() + ATTACK_S
        blasts = asyncio.gather(*(blast(process, until) for _ in range(SENDERS)))
        rtts: list[float] = []
        while time.monotonic() < until:
            started = time.perf_counter()
            reply = await bystander.request("Ping", timeout=TIMEOUT)
            assert reply["type"] == "Pong", reply
            rtts.append(time.perf_counter() - started)
            await asyncio.sleep(PING_EVERY_S)
        opened = sum(await asyncio.wait_for(blasts, TIMEOUT))
        by_code = await closes(process)
        p99 = statistics.quantiles(rtts, n=100)[98]
        print(f"\n{SENDERS} garbage senders for {ATTACK_S} s: {opened} connections, closed "
              f"{by_code}; {len(rtts)} bystander pings, p50 "
              f"{statistics.median(rtts) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {max(rtts) * 1000:.1f} ms")
        assert by_code.get("1008", 0) >= SENDERS
        assert by_code == {"1008": by_code["1008"]}
        assert p99 < P99_BOUND_S, p99
        assert bystander.close_code is None
