"""The HTTP side of metrics: counting requests, and serving `/metrics`.

`/metrics` is served on the main port, or on a listener of its own when `metrics_port` is
set (so that only the scraper's network reaches it), and asks for
`Authorization: Bearer <metrics_token>` when that is set — either, both, or neither.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from hubbub.domain.errors import Code
from hubbub.transport.auth import bearer_token
from hubbub.transport.http.bodies import error_response, http_only
from hubbub.transport.metrics import METRICS, Metrics

METRICS_PATH = "/metrics"
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A path no route matches: one label for all of them, whatever a scanner asks for.
UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class Scrape:
    """What `/metrics` serves, and the token it asks for (None: none)."""

    metrics: Metrics
    token: str | None


SCRAPE = web.AppKey("scrape", Scrape)


def route_of(request: web.Request) -> str:
    """The route template that served a request, or `unmatched`."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


async def count_response(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` signal: counts every response when its headers go out,
    the `/ws` handshake's 101 and its refusals included (no middleware frame needed)."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.http_requests.labels(route_of(request), request.method,
                                            str(response.status)).inc()


async def _timed(request: web.Request,
                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    """Time each HTTP request by route (not `/ws`: a connection's life is not a request's
    latency)."""
    metrics = request.app.get(METRICS)
    if metrics is None:
        return await handler(request)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        return await handler(request)
    finally:
        metrics.http_seconds.labels(route_of(request)).observe(loop.time() - started)


time_requests = http_only(_timed)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition; 401 without the right token when one is set."""
    scrape = request.app[SCRAPE]
    wanted = scrape.token
    if wanted is not None:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), wanted.encode()):
            response = error_response(401, Code.UNAUTHORIZED, "metrics need the metrics token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return web.Response(body=scrape.metrics.render(), headers={"Content-Type": _CONTENT_TYPE})


async def serve_apart(scrape: Scrape, host: str, port: int) -> web.AppRunner:
    """Serve `/metrics` alone on `host:port`; the caller cleans the runner up."""
    app = web.Application()
    app[SCRAPE] = scrape
    app.router.add_get(METRICS_PATH, metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
