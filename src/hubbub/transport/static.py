"""The browser client at `/`: the files of `hubbub/static/`, shipped in the package as they
are (no build step), read once at start and served from memory.

Under HUBBUB_BASE_PATH (`/chat`) the page is `/chat/` (`/chat` redirects there) and its
files `/chat/static/…`. Nothing is rewritten: the page names its files relatively
(`static/app.js`) and the scripts find the API and `/ws` from their own URL
(`import.meta.url`), so the same files work at the root and under any prefix.

The page talks only the public protocol (§7 REST and `/ws`), so it needs no privilege of
its own. A strict Content-Security-Policy keeps it to its own scripts and its own origin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# 'self' covers the page's own ws:/wss: origin as well; media from peers arrives as
# MediaStreams (srcObject), which no directive restricts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file of `directory`, by name."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()):
        content_type = _TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = Asset(body, content_type, etag)
    return assets


def routes(app: web.Application, base: str = "") -> None:
    """`GET {base}/` (the page) and `GET {base}/static/{name}` (its scripts and styles)."""
    assets = load_assets()

    async def index(request: web.Request) -> web.Response:
        return _serve(request, assets["index.html"])

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return _serve(request, found)

    async def to_index(request: web.Request) -> web.Response:
        # The page's relative links need the trailing slash to resolve under `base`.
        raise web.HTTPPermanentRedirect(f"{base}/")

    app.router.add_get(f"{base}/", index)
    app.router.add_get(f"{base}/static/{{name}}", asset)
    if base:
        app.router.add_get(base, to_index)


def _serve(request: web.Request, asset: Asset) -> web.Response:
    # no-cache: revalidate every time (a 304 costs no body), so an upgrade shows at once.
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})
