"""The bundled client in real headless Chromium under HUBBUB_BASE_PATH=/chat: the page at
/chat/ loads its files, signs in, opens /chat/ws and sends a message, and asks for nothing
outside the prefix (its scripts find the base from their own URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_call import chromium, require_browser, say, signed_in
from tests.support.server import on_sqlite, run_server

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.browser]


@pytest.mark.timeout(180)
async def test_the_client_works_under_a_prefix(tmp_path: Path) -> None:
    require_browser()
    from playwright.async_api import expect

    settings = on_sqlite(tmp_path, base_path="/chat")
    errors: list[str] = []
    async with run_server(settings) as server, chromium() as browser:
        assert server.base_url.endswith("/chat")
        alice = server.user("alice")
        page = await signed_in(browser, server, alice, errors)
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.on("websocket", lambda socket: asked.append(socket.url))

        await page.get_by_text("New conversation").click()
        await page.get_by_label("Kind").select_option("channel")
        await page.get_by_label("Name").fill("prefixed")
        await page.get_by_role("button", name="Create").click()
        await expect(page.locator("#chat-title")).to_have_text("#prefixed")
        await say(page, "hello from /chat/")
        await expect(page.locator("#messages .content",
                                  has_text="hello from /chat/")).to_be_visible()
        # A reload opens the page and the socket again (the tab keeps the token), every
        # request seen this time.
        await page.reload()
        await page.wait_for_selector("body[data-ws='open']")

    assert not errors, errors
    origin = f"127.0.0.1:{server.port}"
    assert any(url.startswith(f"ws://{origin}/chat/ws?") for url in asked), asked
    assert any(url == f"http://{origin}/chat/static/hubbub.js" for url in asked), asked
    assert any(url.startswith(f"http://{origin}/chat/api/v1/") for url in asked), asked
    outside = [url for url in asked if f"{origin}/chat/" not in url]
    assert not outside, outside
