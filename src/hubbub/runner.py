"""Run the server: start the app, bind, say where it listens, serve until SIGTERM or SIGINT,
then shut down gracefully (transport/shutdown.py).

aiohttp's `web.run_app` would bind too, but says nothing after binding and turns a busy
port into a traceback; this is the same sequence with those two said plainly.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from hubbub import __version__
from hubbub.app import create_app
from hubbub.config import Settings
from hubbub.logs import get_logger
from hubbub.notify import notify
from hubbub.transport.access import AccessLogger, access_logger
from hubbub.transport.listener import Listener
from hubbub.transport.shutdown import handler_timeout

log = get_logger("hubbub.server")

# A server allocates and frees many small objects per message (frames, futures, structs),
# few of which form cycles. CPython's default (700, 10, 10) ran ~500 young and a few full
# collections per 20,000 fanned-out messages, the full ones ~40 ms each over the ~100,000
# objects of the loaded libraries: ~7 % of the server's time. With a larger young
# generation and the startup objects frozen out of every collection, ~1 %.
GC_THRESHOLDS = (10_000, 50, 100)


# Given the callback that stops the server, once its loop runs: another reason to stop
# than a signal (a worker's supervisor gone, src/hubbub/workers.py).
StopWatch = Callable[[Callable[[], None]], None]


def serve(settings: Settings, watch: StopWatch | None = None) -> int:
    """Serve until a signal (or `watch` says stop); the exit status (1: the address cannot
    be listened on)."""
    app = create_app(settings)
    gc.set_threshold(*GC_THRESHOLDS)
    app.on_startup.append(_settle_gc)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(app, settings, watch))


async def _serve(app: web.Application, settings: Settings, watch: StopWatch | None) -> int:
    runner = web.AppRunner(
        app, access_log=access_logger(settings.access_log), access_log_class=AccessLogger,
        # on_shutdown drains within the grace period; this is aiohttp's backstop for a
        # handler still running after that (see transport/shutdown.py).
        shutdown_timeout=handler_timeout(settings.shutdown_grace),
    )
    stop = asyncio.Event()  # set by SIGTERM or SIGINT, from startup on
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if watch is not None:
        watch(stop.set)
    await runner.setup()
    try:
        site = Listener(runner, settings)  # the backlog and the half-open cap
        try:
            await site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            print(f"hubbub: cannot listen on {_address(settings.host, settings.port)}: "
                  f"{reason}", file=sys.stderr)
            return 1
        address = _address(settings.host, settings.port)
        log.info("server.listening", url=f"http://{address}{settings.base_path}",
                 database=settings.database_url.split("://")[0],
                 bus="redis" if settings.redis_url else "memory", version=__version__)
        notify("READY=1")  # systemd (Type=notify): every listener is bound now
        await stop.wait()
        log.info("server.stopping")
    finally:
        await runner.cleanup()
    return 0


async def _settle_gc(app: web.Application) -> None:
    """After startup: move everything allocated so far out of the collector's sight."""
    gc.collect()
    gc.freeze()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return None
    return uvloop.new_event_loop

