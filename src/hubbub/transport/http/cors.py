"""CORS for the user REST API (PROTOCOL.md §7), so a web app on another origin can call it.

Only `{base}/api/v1/…` takes part, never the server API (`{base}/api/v1/server/…`: the
backend's, called server to server with an API key, so a browser has no business there)
nor `/ws` (which checks `Origin` itself), health, metrics or the bundled client.

The origins are `HUBBUB_ALLOWED_ORIGINS` (the same list `/ws` admits). Unset, no CORS
header is sent at all: only the page's own origin can read the API. Requests carry bearer
tokens, never cookies, so no `Access-Control-Allow-Credentials` is needed. A request from
an origin not on the list is still served (a non-browser client is not limited by CORS),
it just gets no CORS header, so a browser keeps its answer from the page.

A small middleware rather than aiohttp-cors (0.8.1): that one sends no `Vary: Origin`
while it reflects the origin (a shared cache could hand one origin's answer to another),
and it wants every route registered one by one, so a route added later would silently be
without CORS; here the rule is the path prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from hubbub.transport.http.bodies import http_only
from hubbub.transport.http.routes import API_PREFIX
from hubbub.transport.server_api.routes import SERVER_PREFIX

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
# What a page may read of an answer besides the CORS-safelisted headers.
EXPOSE_HEADERS = "Retry-After, X-Request-Id"
MAX_AGE_S = 600  # how long a browser may reuse a preflight's answer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class Cors:
    """Which paths take part and which origins are allowed (`*` allows any)."""

    def __init__(self, origins: tuple[str, ...], base: str = "") -> None:
        self.on = bool(origins)
        self.any = "*" in origins
        self.origins = frozenset(_normalise(origin) for origin in origins)
        self.api = base + API_PREFIX + "/"
        self.server_api = base + SERVER_PREFIX

    def applies(self, path: str) -> bool:
        """A user REST API path (not the server API's)."""
        return path.startswith(self.api) and not (
            path == self.server_api or path.startswith(self.server_api + "/"))

    def allowed(self, origin: str | None) -> bool:
        return origin is not None and (self.any or _normalise(origin) in self.origins)

    def headers(self, origin: str) -> dict[str, str]:
        """The headers of an actual answer to an allowed origin (its `Origin` as sent)."""
        return {"Access-Control-Allow-Origin": "*" if self.any else origin,
                "Access-Control-Expose-Headers": EXPOSE_HEADERS}


def preflight(cors: Cors, origin: str) -> web.Response:
    """The answer to an OPTIONS with `Access-Control-Request-Method`: what may be sent."""
    return web.Response(status=204, headers={
        **cors.headers(origin),
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": str(MAX_AGE_S),
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    })


def cors_middleware(cors: Cors) -> Middleware:
    """Answer preflights and add the CORS headers to every answer of the API, errors
    (401, 400, 429, …) included, so that a page can read why it failed."""

    async def wrapping(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not cors.on or not cors.applies(request.path):
            return await handler(request)
        origin = request.headers.get("Origin")
        if origin is None or not cors.allowed(origin):
            origin = None
        elif (request.method == "OPTIONS"
              and "Access-Control-Request-Method" in request.headers):
            return preflight(cors, origin)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _add(cors, exc.headers, origin)
            raise
        _add(cors, response.headers, origin)
        return response

    return http_only(wrapping)


def _add(cors: Cors, headers: CIMultiDict[str], origin: str | None) -> None:
    # Vary on every answer of the API, allowed or not: a cache must not hand an answer
    # without CORS headers to an allowed origin, nor one origin's to another.
    if not cors.any:
        headers.add("Vary", "Origin")
    if origin is not None:
        headers.update(cors.headers(origin))
