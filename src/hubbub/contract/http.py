"""`GET /asyncapi.json` and `GET /openapi.json`: the documents this build was made with,
so a client generator can point at a running server. No credentials: they describe the
API, they hold no data."""

from __future__ import annotations

import functools

from aiohttp import web

from hubbub.contract.documents import documents

PATHS = {"/asyncapi.json": "asyncapi.json", "/openapi.json": "openapi.json"}


@functools.cache
def _body(name: str) -> bytes:
    """Built once per process, on first request (the types do not change while it runs)."""
    return documents()[name]


async def _serve(name: str, request: web.Request) -> web.Response:
    response = web.Response(body=_body(name), content_type="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def routes(app: web.Application, base: str = "") -> None:
    """The documents under `base` (HUBBUB_BASE_PATH), like every other route."""
    for path, name in PATHS.items():
        app.router.add_get(base + path, functools.partial(_serve, name))
