"""One WebSocket connection to hubbub over aiohttp's client: open (token or ticket,
PROTOCOL.md §1), decode each text frame into its typed server message, send typed client
messages. It knows nothing of requests, ordering or reconnects (client.py does)."""

from __future__ import annotations

import logging

import aiohttp
import msgspec
from yarl import URL

from hubbub.client.errors import AuthenticationError
from hubbub.protocol.client import ClientMessage
from hubbub.protocol.server import AnyServerMessage

log = logging.getLogger("hubbub.client")

_decoder = msgspec.json.Decoder(AnyServerMessage)
_encoder = msgspec.json.Encoder()

# The handshake statuses that another attempt with the same credentials cannot fix.
REFUSED = frozenset({401, 403})


class Unreachable(Exception):
    """The handshake failed for a reason a later attempt may not meet (network, 5xx)."""


def ticket_url(ws_url: str) -> URL:
    """`POST /api/v1/ws-tickets` on the same host as the WebSocket URL."""
    url = URL(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return url.with_scheme(scheme).with_path("/api/v1/ws-tickets").with_query(None)


class Socket:
    """An open connection; `close_code` is set once it has closed."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: str, token: str, *,
                   use_ticket: bool, heartbeat: float | None) -> Socket:
        """Open `url` with `token` (in the Authorization header, so it is in no URL), or
        with a single-use ticket bought with it.

        Raises:
            AuthenticationError: 401/403 (the token is refused).
            Unreachable: anything another attempt might get past.
        """
        headers = {"Authorization": f"Bearer {token}"}
        target = URL(url)
        try:
            if use_ticket:
                ticket = await _ticket(session, url, headers)
                target, headers = target.update_query(ticket=ticket), {}
            ws = await session.ws_connect(target, headers=headers, heartbeat=heartbeat,
                                          autoclose=True, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in REFUSED:
                raise AuthenticationError(exc.status) from None
            raise Unreachable(f"handshake answered {exc.status}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        return cls(ws)

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def receive(self) -> AnyServerMessage | None:
        """The next server message; None once the connection has closed."""
        while True:
            try:
                frame = await self._ws.receive()
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                return None
            if frame.type is aiohttp.WSMsgType.TEXT:
                try:
                    message: AnyServerMessage = _decoder.decode(frame.data)
                except msgspec.ValidationError as exc:  # e.g. a type a newer server added
                    log.warning("skipping a server frame the SDK cannot read: %s", exc)
                    continue
                return message
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None

    async def send(self, message: ClientMessage) -> bool:
        """Send one message; False when the connection is gone (the caller resends later)."""
        if self._ws.closed:
            return False
        try:
            # A text frame: the server answers binary ones with BAD_REQUEST (§1).
            await self._ws.send_str(_encoder.encode(message).decode())
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return False
        return True

    async def close(self) -> None:
        await self._ws.close()


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
