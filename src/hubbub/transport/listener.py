"""The listening socket: its accept queue, what one client IP may hold before it has sent a
request (DECISIONS.md, "Limits, abuse and shutdown"), and who answers a connection's first
request.

aiohttp's own knobs do most of the limits: `backlog` is the listen queue, and its keep-alive
timeout, set to `request_timeout` in `create_app`, closes a connection that has not completed
a request head within that time of its previous response (a running handler, so a
WebSocket, is never cut by it). What aiohttp lacks is a count per client IP: every
connection starts with a `_FirstRequest` in front, which counts it from accept until the
blank line that ends its first request head, closes a new connection at once when its IP
already holds `max_half_open_per_ip` of them, and closes one whose first head is not
complete within `request_timeout`. The client IP is the TCP peer: nothing else is known
before a head arrives, so behind a proxy (exempt when listed in `trusted_proxies`) the proxy
must enforce its own limits.

A first request that is a WebSocket handshake for `/ws` is answered there too, without
aiohttp (DECISIONS.md "The upgrade outside aiohttp"); any other goes to aiohttp as it came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aiohttp import web

from hubbub.config import Settings
from hubbub.logs import get_logger
from hubbub.transport.http.bodies import WS_PATH
from hubbub.transport.websocket.admission import IPNetwork, client_ip, in_networks, trusted_networks
from hubbub.transport.websocket.endpoint import ENDPOINT, Endpoint, upgrade
from hubbub.transport.websocket.handshake import Head, parse_head, refused, upgrade_key

log = get_logger("hubbub.listener")

ProtocolFactory = Callable[[], asyncio.Protocol]

# The blank line that ends a request head; aiohttp accepts no bare-LF variant.
HEAD_END = b"\r\n\r\n"
# A head longer than this is aiohttp's to refuse (its lines are at most 8190 bytes).
MAX_HEAD_BYTES = 16 * 1024
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


@dataclass(frozen=True, slots=True)
class Front:
    """What every connection's `_FirstRequest` shares."""

    limit: HalfOpenLimit
    aiohttp: ProtocolFactory  # aiohttp's `web.Server`
    door: Endpoint
    head_timeout: float  # aiohttp's keep-alive timeout, which it runs from the opening
    upgrade_line: bytes  # how a request line for `/ws` begins: b"GET /ws"

    def __call__(self) -> asyncio.Protocol:
        return _FirstRequest(self)


class _FirstRequest(asyncio.Protocol):
    """Stands in front of aiohttp until a connection's first request says what it is.

    - A WebSocket handshake for `/ws` is answered here (endpoint.py's `upgrade`) and the
      transport goes to the connection's own protocol: no aiohttp request, parser or task
      stays for the connection's life.
    - Anything else goes to aiohttp's protocol with the bytes read so far (`set_protocol`);
      while the head of a counted connection is incomplete, this stays in front to count it.
    """

    __slots__ = ("_front", "_inner", "_ip", "_kept", "_started", "_tail", "_timer",
                 "_transport", "_upgrading")

    def __init__(self, front: Front) -> None:
        self._front = front
        self._inner: asyncio.Protocol | None = None  # aiohttp's, once handed to it
        self._ip: str | None = None  # set while counted
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._kept = b""  # the first request's bytes so far, or those after an upgrade's head
        self._upgrading = False
        self._started = False  # past the empty lines a client may send before a request
        self._tail = b""  # the last bytes seen, in case the blank line is split

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's is one, though not a subclass
        peer = transport.get_extra_info("peername")
        ip = client_ip(peer[0] if peer else None, None, ())
        limit = self._front.limit
        if not limit.exempt(ip):
            if not limit.admit(ip):
                transport.abort()
                return
            self._ip = ip
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._front.head_timeout,
                                                            transport.close)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is not None:  # aiohttp's, still counted until the head is complete
            if self._head_complete(data):
                self._uncount()
                self._hand(inner)
            inner.data_received(data)
            return
        if self._upgrading:
            self._kept += data
            if len(self._kept) > self._front.door.settings.max_frame_bytes + MAX_HEAD_BYTES:
                self._transport.abort()  # type: ignore[union-attr]  # a client that will not wait
            return
        if not self._started:
            data = data.lstrip(b"\r\n")
            if not data:
                return
            self._started = True
        kept = self._kept = self._kept + data
        line_end = kept.find(b"\r\n")
        if line_end < 0:
            if len(kept) > MAX_HEAD_BYTES:
                self._to_aiohttp()
            return
        upgrade_line = self._front.upgrade_line
        if not (kept.startswith(upgrade_line) and kept[len(upgrade_line):][:1] in (b"?", b" ")):
            self._to_aiohttp()
            return
        end = kept.find(HEAD_END)
        if end < 0:
            if len(kept) > MAX_HEAD_BYTES:
                self._to_aiohttp()
            return
        peer = self._transport.get_extra_info("peername")  # type: ignore[union-attr]
        head = parse_head(kept[:end + len(HEAD_END)], peer[0] if peer else None)
        if head is None or upgrade_key(head) is None:
            self._to_aiohttp()
            return
        self._uncount()
        self._stop_timer()
        self._upgrading = True
        self._kept = kept[end + len(HEAD_END):]
        asyncio.get_running_loop().create_task(self._upgrade(head))

    async def _upgrade(self, head: Head) -> None:
        transport = self._transport
        assert transport is not None
        door = self._front.door
        started = time.monotonic()
        refusal = await upgrade(door, head, transport, self._hand)
        if refusal is None:
            door.answered(101)
        elif not transport.is_closing():
            door.answered(refusal.status)
            door.log_access(refusal.status, time.monotonic() - started)
            transport.write(refused(refusal))
            transport.close()

    def _hand(self, protocol: asyncio.Protocol) -> None:
        """Give the transport to `protocol`, with what came after the head meanwhile."""
        transport = self._transport
        assert transport is not None
        transport.set_protocol(protocol)
        kept, self._kept = self._kept, b""
        if kept and self._upgrading:
            protocol.data_received(kept)

    def _to_aiohttp(self) -> None:
        """Not ours: aiohttp's protocol gets the connection as it arrived."""
        transport = self._transport
        assert transport is not None
        self._stop_timer()  # aiohttp's own runs from here
        inner = self._inner = self._front.aiohttp()
        kept, self._kept = self._kept, b""
        inner.connection_made(transport)
        if self._ip is None or self._head_complete(kept):
            self._uncount()
            self._hand(inner)
        inner.data_received(kept)

    def _head_complete(self, data: bytes) -> bool:
        seen = self._tail + data
        if HEAD_END in seen:
            return True
        self._tail = seen[-(len(HEAD_END) - 1):]
        return False

    def _uncount(self) -> None:
        if self._ip is not None:
            self._front.limit.release(self._ip)
            self._ip = None

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._uncount()
        self._stop_timer()
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

    __slots__ = ("_host", "_limit", "_port", "_reuse_port", "_settings")

    def __init__(self, runner: web.BaseRunner, settings: Settings, *,
                 host: str | None = None, port: int | None = None) -> None:
        super().__init__(runner, backlog=settings.listen_backlog)
        _warn_if_capped(settings.listen_backlog)
        self._host = settings.host if host is None else host
        self._port = settings.port if port is None else port
        self._reuse_port = settings.workers > 1
        self._settings = settings
        self._limit = HalfOpenLimit(settings.max_half_open_per_ip,
                                    trusted_networks(settings.trusted_proxies))

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        app = self._runner.app  # type: ignore[attr-defined]  # an AppRunner's
        settings = self._settings
        front = Front(self._limit, server, app[ENDPOINT], settings.request_timeout,
                      f"GET {settings.base_path}{WS_PATH}".encode())
        self._server = await asyncio.get_running_loop().create_server(
            front, self._host, self._port, backlog=self._backlog, reuse_port=self._reuse_port)


def _warn_if_capped(backlog: int) -> None:
    """Say so when the kernel will silently shorten the listen queue asked for."""
    try:
        cap = int(SOMAXCONN.read_text())
    except (OSError, ValueError):  # not Linux, or no /proc: nothing to compare with
        return
    if backlog > cap:
        log.warning("listen.backlog_capped", backlog=backlog, somaxconn=cap,
                    note="the kernel caps the listen queue at net.core.somaxconn")

