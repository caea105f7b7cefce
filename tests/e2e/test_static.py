"""The browser client's files, served by hubbub itself at `/` (docs/DECISIONS.md)."""

from __future__ import annotations

import re

import pytest

from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_page_is_served_at_the_root(server: RunningServer) -> None:
    """`GET /` is the client's HTML, loading its module script, under a strict CSP."""
    async with server.http() as http:
        response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="static/app.js">' in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("name", "kind"), [("app.js", "text/javascript"),
                                            ("call.js", "text/javascript"),
                                            ("hubbub.js", "text/javascript"),
                                            ("changes.js", "text/javascript"),
                                            ("outbox.js", "text/javascript"),
                                            ("unsent.js", "text/javascript"),
                                            ("inbox.js", "text/javascript"),
                                            ("errors.js", "text/javascript"),
                                            ("favicon.svg", "image/svg+xml"),
                                            ("dom.js", "text/javascript"),
                                            ("thread.js", "text/javascript"),
                                            ("mentions.js", "text/javascript"),
                                            ("search.js", "text/javascript"),
                                            ("directory.js", "text/javascript"),
                                            ("attachments.js", "text/javascript"),
                                            ("app.css", "text/css"),
                                            ("features.css", "text/css"),
                                            ("file.svg", "image/svg+xml")])
async def test_assets_are_served_with_their_type(server: RunningServer, name: str,
                                                 kind: str) -> None:
    """Each script and style sheet comes with its content type (modules need it)."""
    async with server.http() as http:
        response = await http.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(kind)
    assert response.content


async def test_an_unchanged_asset_is_not_sent_again(server: RunningServer) -> None:
    """A request with the asset's ETag gets `304` and no body."""
    async with server.http() as http:
        first = await http.get("/static/app.js")
        again = await http.get("/static/app.js",
                               headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2Fapp.py",
                                  "/static/%2E%2E%2F__init__.py"])
async def test_only_the_shipped_files_are_served(server: RunningServer, path: str) -> None:
    """Unknown names, and paths that try to leave the folder, are `404`."""
    async with server.http() as http:
        response = await http.get(path)
    assert response.status_code == 404


async def test_the_client_uses_only_the_public_protocol(server: RunningServer) -> None:
    """The scripts reach the server only under `/api/v1/` (§7) and `/ws` (§1)."""
    async with server.http() as http:
        scripts = [(await http.get(f"/static/{name}")).text
                   for name in ("app.js", "call.js", "hubbub.js", "changes.js", "outbox.js",
                                "unsent.js", "inbox.js", "errors.js", "dom.js", "thread.js",
                                "mentions.js", "search.js", "directory.js", "attachments.js")]
    paths = {match for text in scripts for match in re.findall(r'["`](/[a-z][^"`?$]*)', text)}
    assert paths, "no server paths found in the scripts"
    assert all(p.startswith(("/api/v1/", "/ws")) for p in paths), paths
