"""`hubbub serve --workers N`: N server processes on one port, so that one machine uses all
its cores (docs/DECISIONS.md, "Workers").

The supervisor (this module, the unit's main process under systemd) starts N fresh
interpreters, `python -m hubbub.workers INDEX`, each a whole server: its own event loop,
app, PostgreSQL pool and Redis connections. Each binds `HUBBUB_HOST:HUBBUB_PORT` with
`SO_REUSEPORT` (transport/listener.py) and the kernel spreads new connections over their
sockets; what they share goes through Redis and PostgreSQL, as between instances on hosts
of their own. Settings force Redis and PostgreSQL whenever N > 1 (config.py).

- Settings are read once, here; each worker gets them as one JSON line on its stdin (the
  same values, a generated development secret included, no secret on a command line).
  Worker i serves `/metrics` on `HUBBUB_METRICS_PORT + i` when that is set.
- Readiness: each worker's `NOTIFY_SOCKET` is a datagram socket of the supervisor's, so a
  worker's `READY=1` (runner.py) tells the supervisor, which sends systemd its own once
  every worker has said it. A worker never speaks to systemd.
- Stopping: SIGTERM or SIGINT here is SIGTERM to each worker, which drains within
  `HUBBUB_SHUTDOWN_GRACE`; one still running past that and `STOP_MARGIN_S` is killed.
  Workers have a process group of their own, so a terminal's Ctrl-C reaches the
  supervisor alone; and they stop when the supervisor dies, as their stdin then ends,
  each then its own killer past the same deadline.
- Failures: a worker that ends unasked is started again after a delay that doubles with
  each quick failure. One that fails before every worker has been ready once stops them
  all, with its status (a busy port: 1), as a single server would.
- Migrations: each worker migrates at start as `serve` does; PostgreSQL's advisory lock
  (storage/migrate.py) lets the first do it and the others find it done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubbub.config import Settings
from hubbub.logs import configure, get_logger
from hubbub.notify import notify

log = get_logger("hubbub.workers")

# A failed worker starts again after BACKOFF_FIRST_S, doubling with each failure in a row
# that follows its start quickly, up to BACKOFF_MAX_S: at once after a crash, gently while
# the database is down.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# A worker that served this long before it ended is not failing quickly.
STABLE_S = 60.0
# Past the grace period: time for a worker to close its store and bus before it is killed.
STOP_MARGIN_S = 5.0
# Exit statuses that mean a worker stopped as asked: drained (0), or ended by the SIGTERM
# before its handler was installed (still importing: nothing to drain).
CLEAN_STOP = (0, -signal.SIGTERM)
STDIN = 0


def supervise(settings: Settings) -> int:
    """Run `settings.workers` servers until SIGTERM or SIGINT; the exit status."""
    if settings.metrics_port is None:
        log.warning("workers.metrics_shared", note="/metrics on the main port answers for "
                    "whichever worker accepts the scrape; set HUBBUB_METRICS_PORT so that "
                    "worker i serves its own on HUBBUB_METRICS_PORT + i")
    return asyncio.run(Supervisor(settings).run())


@dataclass
class Worker:
    """One slot of the N: the process filling it now, if any."""

    index: int
    process: asyncio.subprocess.Process | None = None
    ready: bool = False
    failures: int = 0  # quick failures in a row, for the backoff


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._workers = [Worker(index) for index in range(settings.workers)]
        self._stop = asyncio.Event()
        self._all_ready = False
        self._failed: int | None = None  # the status of a worker that failed to start
        self._starts = 0
        self._dir = Path()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        # Short: a socket's path must fit in 108 bytes, under whatever TMPDIR is.
        with tempfile.TemporaryDirectory(prefix="hubbub-") as directory:
            self._dir = Path(directory)
            keepers = [loop.create_task(self._keep(worker)) for worker in self._workers]
            await self._stop.wait()
            if self._failed is None:
                notify("STOPPING=1")
                log.info("workers.stopping", workers=len(self._workers))
            for worker in self._workers:
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.terminate()
            statuses = await self._reap(keepers)
        if self._failed is not None:
            return self._failed
        return 0 if all(status in CLEAN_STOP for status in statuses) else 1

    async def _reap(self, keepers: list[asyncio.Task[int]]) -> list[int]:
        """The keepers' last statuses, killing the workers still running past the grace."""
        _, pending = await asyncio.wait(
            keepers, timeout=self._settings.shutdown_grace + STOP_MARGIN_S)
        if pending:
            for worker in self._workers:
                if worker.process is not None and worker.process.returncode is None:
                    log.error("workers.killed", worker=worker.index, pid=worker.process.pid,
                              note="still running past the grace period")
                    worker.process.kill()
        return list(await asyncio.gather(*keepers))

    async def _keep(self, worker: Worker) -> int:
        """Keep a process in the slot until the stop; the last one's exit status."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            status = await self._run_one(worker)
            if self._stop.is_set():
                return status
            if not self._all_ready:
                log.error("workers.start_failed", worker=worker.index, status=status)
                self._failed = status if status > 0 else 1
                self._stop.set()
                return status
            worker.failures = 0 if loop.time() - started >= STABLE_S else worker.failures + 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** worker.failures)
            log.error("workers.exited", worker=worker.index, status=status,
                      restart_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return 0  # it was not running when the stop came

    async def _run_one(self, worker: Worker) -> int:
        """Start a worker in the slot and wait for its end; its exit status."""
        self._starts += 1
        path = self._dir / f"{self._starts}"  # new for each start: no stale READY
        with _datagram_socket(path) as notifications:
            loop = asyncio.get_running_loop()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hubbub.workers", str(worker.index),
                stdin=asyncio.subprocess.PIPE, env={**os.environ, "NOTIFY_SOCKET": str(path)},
                process_group=0)
            worker.process = process
            loop.add_reader(notifications.fileno(), self._heard, worker, notifications)
            try:
                assert process.stdin is not None
                process.stdin.write(self._settings_for(worker).encode() + b"\n")
                # The pipe stays open: its end tells the worker the supervisor is gone.
                with contextlib.suppress(ConnectionError):
                    await process.stdin.drain()
                if self._stop.is_set():  # the stop came while it was starting
                    process.terminate()
                log.info("workers.started", worker=worker.index, pid=process.pid)
                status = await process.wait()
            finally:
                loop.remove_reader(notifications.fileno())
                worker.process = None
                worker.ready = False
                if process.stdin is not None:
                    process.stdin.close()
        return status

    def _settings_for(self, worker: Worker) -> str:
        settings = self._settings
        if settings.metrics_port is not None:
            settings = settings.model_copy(
                update={"metrics_port": settings.metrics_port + worker.index})
        return settings.model_dump_json()

    def _heard(self, worker: Worker, notifications: socket.socket) -> None:
        """A worker's sd_notify datagrams: `READY=1` once it listens."""
        while True:
            try:
                states = notifications.recv(4096).split(b"\n")
            except BlockingIOError:
                return
            if b"READY=1" not in states or worker.process is None:
                continue
            worker.ready = True
            log.info("workers.worker_ready", worker=worker.index, pid=worker.process.pid)
            if not self._all_ready and all(w.ready for w in self._workers):
                self._all_ready = True
                notify("READY=1")  # systemd: every worker listens now
                host, port = self._settings.host, self._settings.port
                log.info("workers.ready", workers=len(self._workers),
                         url=f"http://[{host}]:{port}" if ":" in host
                         else f"http://{host}:{port}")


@contextlib.contextmanager
def _datagram_socket(path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(str(path))
        sock.setblocking(False)
        yield sock
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            path.unlink()


def _orphan_watch(deadline_s: float) -> Callable[[Callable[[], None]], None]:
    """Stop the worker when its stdin ends: the supervisor has gone (even by SIGKILL).
    Nobody is left to kill a drain that hangs, so a thread does it at `deadline_s`."""

    def watch(stop: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()

        def readable() -> None:
            if os.read(STDIN, 64):
                return
            loop.remove_reader(STDIN)
            log.warning("workers.orphaned", note="the supervisor has gone: stopping")
            killer = threading.Timer(deadline_s, _exit_late, (deadline_s,))
            killer.daemon = True  # a worker that stops in time exits without waiting for it
            killer.start()
            stop()

        loop.add_reader(STDIN, readable)

    return watch


def _exit_late(deadline_s: float) -> None:
    log.error("workers.orphan_killed", note=f"still stopping after {deadline_s:.0f} s")
    os._exit(1)


def worker_main(argv: Sequence[str]) -> int:
    """One worker: the settings from stdin, then `serve` as a single server would."""
    index = int(argv[0])
    settings = Settings.model_validate_json(sys.stdin.buffer.readline())
    configure(settings.log_level, settings.log_format, worker=index)
    from hubbub.runner import serve  # the server's imports, only in the worker

    return serve(settings, watch=_orphan_watch(settings.shutdown_grace + STOP_MARGIN_S))


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
