"""The listening socket: its accept queue, and what one client IP may hold before it has
sent a request (DECISIONS.md, "Limits, abuse and shutdown").

aiohttp's own knobs do most of it: `backlog` is the listen queue, and its keep-alive timeout,
set to `request_timeout` in `create_app`, closes a connection that has not completed a
request head within that time of opening or of its previous response (a running handler,
so a WebSocket, is never cut by it). What aiohttp lacks is a count per client IP:
`HalfOpenLimit` wraps the protocol factory it hands the event loop, counts a connection from
accept until the blank line that ends its first request head, and closes a new connection
at once when its IP already holds `max_half_open_per_ip` of them. The client IP is the TCP
peer: nothing else is known before a head arrives, so behind a proxy (exempt when listed in
`trusted_proxies`) the proxy must enforce its own limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from aiohttp import web

from hubbub.config import Settings
from hubbub.logs import get_logger
from hubbub.transport.websocket.admission import IPNetwork, client_ip, in_networks, trusted_networks

log = get_logger("hubbub.listener")

ProtocolFactory = Callable[[], asyncio.Protocol]

# The blank line that ends a request head; aiohttp accepts no bare-LF variant.
HEAD_END = b"\r\n\r\n"
# Where Linux says how deep it lets any listen queue be.
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


class HalfOpenLimit:
    """How many connections each client IP holds that have not sent a request head yet."""

    def __init__(self, cap: int, exempt: Sequence[IPNetwork] = ()) -> None:
        self._cap = cap
        self._exempt = tuple(exempt)
        self._held: dict[str, int] = {}

    def admit(self, ip: str) -> bool:
        """Count one more half-open connection of `ip`, unless it holds `cap` already."""
        held = self._held.get(ip, 0)
        if held >= self._cap:
            return False
        self._held[ip] = held + 1
        return True

    def release(self, ip: str) -> None:
        held = self._held[ip] - 1
        if held:
            self._held[ip] = held
        else:
            del self._held[ip]

    def exempt(self, ip: str) -> bool:
        return bool(self._exempt) and in_networks(ip, self._exempt)

    def wrap(self, factory: ProtocolFactory) -> ProtocolFactory:
        """The factory to hand the event loop instead of aiohttp's `web.Server`."""
        return lambda: _HalfOpen(self, factory)


class _HalfOpen(asyncio.Protocol):
    """Stands in front of aiohttp's protocol until the first request head is complete, then
    hands the transport to it (`set_protocol`), so that a WebSocket pays nothing for it."""

    __slots__ = ("_factory", "_inner", "_ip", "_limit", "_started", "_tail", "_transport")

    def __init__(self, limit: HalfOpenLimit, factory: ProtocolFactory) -> None:
        self._limit = limit
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._ip: str | None = None  # set while counted
        self._transport: asyncio.Transport | None = None
        self._started = False  # past the empty lines a client may send before a request
        self._tail = b""  # the last bytes seen, in case the blank line is split

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's is one, though not a subclass
        peer = transport.get_extra_info("peername")
        ip = client_ip(peer[0] if peer else None, None, ())
        inner = self._inner = self._factory()
        if self._limit.exempt(ip):
            transport.set_protocol(inner)
        elif self._limit.admit(ip):
            self._ip = ip
            self._transport = transport
        else:
            self._inner = None
            transport.abort()
            return
        inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        inner, transport, ip = self._inner, self._transport, self._ip
        # Only a counted connection reaches here: the others were handed over or aborted.
        assert inner is not None
        assert transport is not None
        assert ip is not None
        if self._head_complete(data):
            self._limit.release(ip)
            self._ip = None
            transport.set_protocol(inner)
        inner.data_received(data)

    def _head_complete(self, data: bytes) -> bool:
        if not self._started:
            data = data.lstrip(b"\r\n")
            if not data:
                return False
            self._started = True
        seen = self._tail + data
        if HEAD_END in seen:
            return True
        self._tail = seen[-(len(HEAD_END) - 1):]
        return False

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ip is not None:
            self._limit.release(self._ip)
            self._ip = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class Listener(web.BaseSite):
    """aiohttp's TCP site with the settings' backlog, its connections under a `HalfOpenLimit`.

    Under `serve --workers N` every worker binds the same address with `SO_REUSEPORT`, and
    the kernel spreads new connections over their sockets (src/hubbub/workers.py).
    """

    __slots__ = ("_host", "_limit", "_port", "_reuse_port")

    def __init__(self, runner: web.BaseRunner, settings: Settings, *,
                 host: str | None = None, port: int | None = None) -> None:
        super().__init__(runner, backlog=settings.listen_backlog)
        _warn_if_capped(settings.listen_backlog)
        self._host = settings.host if host is None else host
        self._port = settings.port if port is None else port
        self._reuse_port = settings.workers > 1
        self._limit = HalfOpenLimit(settings.max_half_open_per_ip,
                                    trusted_networks(settings.trusted_proxies))

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._limit.wrap(server), self._host, self._port, backlog=self._backlog,
            reuse_port=self._reuse_port)


def _warn_if_capped(backlog: int) -> None:
    """Say so when the kernel will silently shorten the listen queue asked for."""
    try:
        cap = int(SOMAXCONN.read_text())
    except (OSError, ValueError):  # not Linux, or no /proc: nothing to compare with
        return
    if backlog > cap:
        log.warning("listen.backlog_capped", backlog=backlog, somaxconn=cap,
                    note="the kernel caps the listen queue at net.core.somaxconn")

