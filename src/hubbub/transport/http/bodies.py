"""JSON bodies in and out for the HTTP API (PROTOCOL.md §7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from hubbub.domain.errors import BadRequest, PayloadTooLarge, RateLimited
from hubbub.protocol.codec import NUL_REFUSED, encode_json, has_nul_escape, nul_path
from hubbub.protocol.objects import explain

T = TypeVar("T")

# The WebSocket endpoint. Its handler tracks itself and turns its own failures into
# responses, so the middlewares hand it on without a frame of theirs (websocket/endpoint.py).
WS_PATH = "/ws"
WS_ROUTE = "ws"  # its route's name: the path has HUBBUB_BASE_PATH in front


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Wrapping = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def serves_websocket(request: web.Request) -> bool:
    """Whether the `/ws` handler takes this request (not a 405 the router answers)."""
    info = request.match_info
    return info.http_exception is None and info.route.name == WS_ROUTE


def http_only(wrapping: Wrapping) -> Middleware:
    """A middleware that runs `wrapping` around every request but `/ws`'s, which passes
    straight through: a frame of a middleware would stay for the whole life of every
    WebSocket connection, so its handler does the middlewares' jobs itself."""

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        if serves_websocket(request):
            return handler(request)
        return wrapping(request, handler)

    return middleware


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=encode_json(value), status=status,
                        content_type="application/json")


def error_response(status: int, code: str, message: str,
                   retry_after_ms: int | None = None) -> web.Response:
    """§7: `{"error": {"code": …, "message": …}}`; 429 carries `Retry-After` (seconds)."""
    response = json_response({"error": {"code": code, "message": message}}, status)
    if retry_after_ms is not None:
        response.headers["Retry-After"] = str(max(1, -(-retry_after_ms // 1000)))
    return response


def error_for(exc: Exception) -> web.Response:
    """The JSON error response for a ChatError."""
    from hubbub.domain.errors import ChatError

    assert isinstance(exc, ChatError)
    retry = exc.retry_after_ms if isinstance(exc, RateLimited) else None
    return error_response(exc.http_status, exc.code, exc.message, retry)


async def read_body(request: web.Request, kind: type[T], max_bytes: int) -> T:
    """Decode and validate a JSON body into `kind`.

    Raises:
        PayloadTooLarge: the body exceeds `max_bytes`; BadRequest: invalid JSON or fields.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    # `read(n)` returns what has arrived so far, not the whole body: keep reading to the end
    # (a body sent in pieces, e.g. chunked, would otherwise be cut short).
    raw = bytearray()
    while len(raw) <= max_bytes:
        chunk = await request.content.read(max_bytes + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    body = bytes(raw)
    try:
        value = msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(explain(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if has_nul_escape(body):
        path = nul_path(msgspec.to_builtins(value))
        if path is not None:
            raise BadRequest(f"{NUL_REFUSED} - at `{path}`")
    return value
