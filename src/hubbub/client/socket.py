"""One WebSocket connection to hubbub over aiohttp's client: open (token or ticket,
PROTOCOL.md §1), decode each text frame into its typed server message, send typed client
messages. It knows nothing of requests, ordering or reconnects (client.py does).

Besides the typed `receive`/`send`, it gives the wire form to callers that need it:
`receive_text` (a test suite that checks every frame against these types while it keeps
the JSON, a benchmark that decodes into a narrower type of its own) and
`send_text`/`send_binary` (frames built elsewhere, or malformed on purpose).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp
import msgspec
from yarl import URL

from hubbub.client.errors import AuthenticationError, HandshakeFailed, Unreachable
from hubbub.protocol.client import ClientMessage
from hubbub.protocol.server import AnyServerMessage

log = logging.getLogger("hubbub.client")

_decoder = msgspec.json.Decoder(AnyServerMessage)
_encoder = msgspec.json.Encoder()

# The handshake statuses that another attempt with the same credentials cannot fix.
REFUSED = frozenset({401, 403})
_GONE = (aiohttp.ClientError, ConnectionError, RuntimeError)
# Module constants: `receive_text` runs once per frame (a benchmark's client is bound by it).
_TEXT = aiohttp.WSMsgType.TEXT
_CLOSE = aiohttp.WSMsgType.CLOSE
_ENDED = frozenset({aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR})


def decode(text: str | bytes) -> AnyServerMessage:
    """One server frame as its typed message.

    Raises:
        msgspec.DecodeError: not JSON, or not a message of §4 (a ValidationError: an
            unknown `type`, a missing or mistyped field).
    """
    message: AnyServerMessage = _decoder.decode(text)
    return message


def ticket_url(ws_url: str) -> URL:
    """`POST /api/v1/ws-tickets` on the same host as the WebSocket URL."""
    url = URL(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return url.with_scheme(scheme).with_path("/api/v1/ws-tickets").with_query(None)


class Socket:
    """An open connection; `close_code` is set once it has closed."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._server_close_code: int | None = None

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: str, token: str | None, *,
                   use_ticket: bool = False, heartbeat: float | None = None,
                   headers: Mapping[str, str] | None = None) -> Socket:
        """Open `url` with `token` (in the Authorization header, so it is in no URL), or
        with a single-use ticket bought with it. With `token` None the URL carries the
        credentials itself (`?token=` or `?ticket=`, §1). `headers` are added to the
        upgrade request (an `Origin`, a proxy's `X-Forwarded-For`).

        Raises:
            AuthenticationError: 401/403 (the token is refused).
            HandshakeFailed: any other HTTP answer than the upgrade.
            Unreachable: anything else another attempt might get past.
        """
        sent = dict(headers or {})
        target = URL(url)
        try:
            if token is not None and use_ticket:
                ticket = await _ticket(session, url, {"Authorization": f"Bearer {token}"})
                target = target.update_query(ticket=ticket)
            elif token is not None:
                sent["Authorization"] = f"Bearer {token}"
            ws = await session.ws_connect(target, headers=sent, heartbeat=heartbeat,
                                          autoclose=True, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in REFUSED:
                raise AuthenticationError(exc.status) from None
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            raise HandshakeFailed(exc.status, _seconds(retry_after)) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        return cls(ws)

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame; else aiohttp's (1006: ended without one).

        aiohttp itself reports 1006 when its answer to the server's close cannot be written
        (a proxy that drops the TCP connection right after forwarding a `1001`), which would
        hide the code the backoff depends on (§1)."""
        if self._server_close_code is not None:
            return self._server_close_code
        return self._ws.close_code

    @property
    def local_address(self) -> tuple[str, int] | None:
        """This end's (host, port), to find the connection in the host's socket table;
        None once closed."""
        address = self._ws.get_extra_info("sockname")
        return (address[0], address[1]) if address else None

    async def receive(self) -> AnyServerMessage | None:
        """The next server message; None once the connection has closed. A frame these
        types cannot read (e.g. a type a newer server added) is logged and skipped."""
        while (text := await self.receive_text()) is not None:
            try:
                return decode(text)
            except msgspec.DecodeError as exc:
                log.warning("skipping a server frame the SDK cannot read: %s", exc)
        return None

    async def receive_text(self) -> str | None:
        """The next text frame as the server sent it, undecoded; None once the connection
        has closed. Binary frames (the server sends none) are skipped."""
        while True:
            try:
                frame = await self._ws.receive()
            except _GONE:
                return None
            if frame.type is _TEXT:
                text: str = frame.data
                return text
            if frame.type is _CLOSE:
                self._server_close_code = frame.data
                return None
            if frame.type in _ENDED:
                return None

    async def send(self, message: ClientMessage) -> bool:
        """Send one message; False when the connection is gone (the caller resends later)."""
        # A text frame: the server answers binary ones with BAD_REQUEST (§1).
        return await self.send_text(_encoder.encode(message))

    async def send_text(self, data: str | bytes) -> bool:
        """Send `data` as one text frame, unchecked (bytes must be UTF-8: they are sent as
        they are, without a decode); False when the connection is gone."""
        if self._ws.closed:
            return False
        try:
            payload = data.encode() if isinstance(data, str) else data
            await self._ws.send_frame(payload, aiohttp.WSMsgType.TEXT)
        except _GONE:
            return False
        return True

    async def send_binary(self, data: bytes) -> bool:
        """Send `data` as one binary frame (which the server refuses, §1: for tests of that
        answer); False when the connection is gone."""
        if self._ws.closed:
            return False
        try:
            await self._ws.send_bytes(data)
        except _GONE:
            return False
        return True

    async def close(self) -> None:
        await self._ws.close()


def _seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds; None for an HTTP date or garbage (never honoured blindly)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


async def _ticket(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with session.post(ticket_url(url), headers=headers) as response:
        if response.status in REFUSED:
            raise AuthenticationError(response.status)
        if response.status != 201:
            raise Unreachable(f"POST /api/v1/ws-tickets answered {response.status}")
        body = await response.json()
    ticket = body.get("ticket") if isinstance(body, dict) else None
    if not isinstance(ticket, str):
        raise Unreachable("POST /api/v1/ws-tickets answered without a ticket")
    return ticket
