"""CORS as a real browser enforces it: a page on another origin (another port) calls the
REST API with `fetch`, preflighted (bearer token, JSON, Idempotency-Key), reads answers and
errors; a page on an origin not on the list cannot read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.browser.test_call import chromium, require_browser
from tests.support.server import on_sqlite, run_server

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.browser]

# Runs in the other origin's page: each call's status and body, or the error fetch threw.
CALLS = """async ([api, token]) => {
  const call = async (path, init) => {
    try {
      const response = await fetch(api + path, init);
      return { status: response.status, body: await response.json(),
               request_id: response.headers.get("X-Request-Id") };
    } catch (error) { return { error: String(error) }; }
  };
  const auth = { Authorization: `Bearer ${token}` };
  return {
    me: await call("/api/v1/users/me", { headers: auth }),
    created: await call("/api/v1/conversations", { method: "POST",
      headers: { ...auth, "Content-Type": "application/json", "Idempotency-Key": "k-1" },
      body: JSON.stringify({ kind: "channel", name: "from elsewhere" }) }),
    unauthorized: await call("/api/v1/users/me", {}),
    bad: await call("/api/v1/conversations", { method: "POST",
      headers: { ...auth, "Content-Type": "application/json" }, body: "{nope" }),
  };
}"""


@asynccontextmanager
async def other_origin() -> AsyncIterator[str]:
    """A blank page on a port of its own: another origin than hubbub's."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>app</title>", content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def calls_from(origin: str, api: str, token: str) -> dict[str, Any]:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(origin + "/")
        result: dict[str, Any] = await page.evaluate(CALLS, [api, token])
        return result


@pytest.mark.timeout(120)
async def test_a_page_on_a_listed_origin_reads_answers_and_errors(tmp_path: Path) -> None:
    require_browser()
    async with other_origin() as origin, \
            run_server(on_sqlite(tmp_path, allowed_origins=(origin,))) as server:
        user = server.user("alice")
        result = await calls_from(origin, server.base_url, user.token)
    assert result["me"]["status"] == 200, result
    assert result["me"]["body"]["id"] == user.id
    assert result["me"]["request_id"]  # X-Request-Id is exposed to the page
    assert result["created"]["status"] == 201, result
    assert result["created"]["body"]["name"] == "from elsewhere"
    assert result["unauthorized"]["status"] == 401, result
    assert result["unauthorized"]["body"]["error"]["code"] == "UNAUTHORIZED"
    assert result["bad"]["status"] == 400, result
    assert result["bad"]["body"]["error"]["code"]


@pytest.mark.timeout(120)
async def test_a_page_on_another_origin_reads_nothing(tmp_path: Path) -> None:
    require_browser()
    async with other_origin() as origin, \
            run_server(on_sqlite(tmp_path, allowed_origins=("https://app.example.com",))
                       ) as server:
        result = await calls_from(origin, server.base_url, server.user().token)
    assert all("error" in call for call in result.values()), result
