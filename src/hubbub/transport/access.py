"""Request ids and the access log (`HUBBUB_ACCESS_LOG`): what an operator needs to follow
one HTTP request through the logs, and nothing a client could sign in with.

Every HTTP request gets an id, in each line logged while it is handled and in its
`X-Request-Id` response header. A WebSocket's lines carry its `connection_id` instead
(transport/websocket/endpoint.py), the one its `Connected` frame names.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from hubbub import logs
from hubbub.transport.http.bodies import http_only

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's own id (a proxy's, say) is kept only when it is short and plain: it is written
# into every line of the request and sent back.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# 64 random bits: unique enough to find one request among a day's logs.
_ID_BYTES = 8


async def _identified(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Give the request an id (not `/ws`: its lines carry the connection's)."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if _SAFE_ID.fullmatch(incoming) else secrets.token_hex(_ID_BYTES)
    logs.request_id.set(rid)  # aiohttp runs each request in a task of its own
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect, say: it is the response
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


request_ids = http_only(_identified)


class AccessLogger(AbstractAccessLogger):
    """One `http.access` line per request: method, path without its query string (where
    `?token=` and `?ticket=` travel), status, duration and request id; no header at all."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("http.access", extra={
            "method": request.method, "path": request.path, "status": response.status,
            "duration_ms": round(time * 1000, 2),
            "request_id": response.headers.get(REQUEST_ID_HEADER),
        })

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def access_logger(enabled: bool) -> logging.Logger | None:
    """The logger aiohttp's runner takes for `access_log` (None: no access log)."""
    return logging.getLogger("hubbub.access") if enabled else None
