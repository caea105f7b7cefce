"""Errors of the HTTP doors as §7 JSON bodies: a ChatError its code and status, anything
unexpected a 500 without details (logged with its traceback)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hubbub.domain.errors import ChatError, Code
from hubbub.logs import get_logger
from hubbub.transport.http.bodies import error_for, error_response, http_only
from hubbub.transport.metrics import METRICS, Metrics

log = get_logger("hubbub.http")


async def _errors(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """ChatErrors become §7 JSON bodies; anything unexpected is a 500 without details
    (`/ws` does this itself, with `failure_response`)."""
    metrics = request.app[METRICS]
    try:
        return await handler(request)
    except Exception as exc:
        return failure_response(metrics, request, exc)


errors_middleware = http_only(_errors)


def failure_response(metrics: Metrics, request: web.Request,
                     exc: Exception) -> web.StreamResponse:
    """The §7 response for an exception a handler let through (call it in `except`).

    Raises:
        web.HTTPException: `exc` itself when it is not an error (a redirect, say).
    """
    if isinstance(exc, ChatError):
        metrics.count_error(exc.code)
        return error_for(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status >= 400:
            code = {404: Code.NOT_FOUND, 405: Code.BAD_REQUEST,
                    413: Code.PAYLOAD_TOO_LARGE}.get(exc.status, Code.BAD_REQUEST)
            return error_response(exc.status, code, exc.reason)
        raise exc
    log.exception("http.failed", method=request.method, path=request.path)
    metrics.count_error(Code.INTERNAL_ERROR)
    return error_response(500, Code.INTERNAL_ERROR, "internal error")
