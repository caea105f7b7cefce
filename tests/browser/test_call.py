"""The browser client in real headless Chromium: two users chat and make a video call.

Both pages are driven through the UI only (labels, buttons, the keyboard); the page's state
is read from `window.hubbub` and DOM attributes. Media comes from Chromium's fake devices.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hubbub.config import Settings
from tests.support.server import OnLocalPort, User, run_server
from tests.support.services import unavailable

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.browser]

CHROMIUM = os.environ.get("HUBBUB_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    # Media without hardware or permission prompts.
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--no-sandbox", "--headless",
    # Nothing but the page under test talks to the network.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
]
# Per step; generous because the suite shares two cores with other work.
STEP_MS = 30_000
CONNECTED = ("() => { const c = window.hubbub.call; "
             "return !!(c && c.pc && c.pc.connectionState === 'connected'); }")


def require_browser() -> None:
    """Fail in CI, skip loudly elsewhere, when Chromium or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        unavailable("Chromium (`apt-get install chromium`, or HUBBUB_TEST_CHROMIUM=<path>)",
                    FileNotFoundError(CHROMIUM))
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as exc:
        unavailable("Playwright", exc)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                               headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, server: OnLocalPort, user: User,
                    errors: list[str], *, width: int = 1100, height: int = 900) -> Page:
    """A page of its own (a separate browser context) signed in as `user` by pasting its
    token, with its WebSocket open; `width` × `height` CSS pixels (390 × 844: a phone)."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(STEP_MS)
    page.on("pageerror", lambda error: errors.append(f"{user.name}: {error}"))
    await page.goto(server.base_url + "/")
    await page.get_by_label("Access token (JWT)").fill(user.token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("body[data-ws='open']")
    return page


async def say(page: Page, text: str) -> None:
    """Type a message in the open conversation and send it with Enter."""
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")


async def inbound_bytes(page: Page, track_id: str | None = None) -> int:
    """Bytes received so far over the page's inbound RTP streams (of one track, if given),
    from `RTCPeerConnection.getStats()`."""
    return int(await page.evaluate("(t) => window.hubbub.inboundBytes(t)", track_id))


async def grown_beyond(page: Page, floor: int, track_id: str | None = None) -> int:
    """Wait until more than `floor` bytes have arrived; return the count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_MS / 1000
    while (received := await inbound_bytes(page, track_id)) <= floor:
        assert loop.time() < deadline, f"inbound RTP stuck at {received} bytes"
        await asyncio.sleep(0.25)
    return received


@pytest.mark.timeout(300)
async def test_chat_and_video_call_between_two_pages(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """Two users exchange messages, place and answer a video call whose media flows, add a
    screen share mid-call (renegotiation), and hang up: all through the UI."""
    require_browser()
    from playwright.async_api import expect

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hubbub.db'}", log_format="text")
    errors: list[str] = []
    async with run_server(settings) as server, chromium() as browser:
        alice, bob = server.user("alice"), server.user("bob")
        await server.ensure_user(bob)
        a = await signed_in(browser, server, alice, errors)
        b = await signed_in(browser, server, bob, errors)

        # Alice starts a direct conversation with Bob by his id; it appears in Bob's list.
        await a.get_by_text("New conversation").click()
        await a.get_by_label("Kind").select_option("direct")
        await a.get_by_label("Member ids").fill(bob.id)
        await a.get_by_role("button", name="Create").click()
        await expect(a.locator("#chat-title")).to_have_text("bob")
        await b.locator("#conversation-list button", has_text="alice").click()
        await expect(b.locator("#chat-title")).to_have_text("alice")

        # Messages both ways.
        await say(a, "hello bob")
        await expect(b.locator("#messages .content", has_text="hello bob")).to_be_visible()
        await say(b, "hi alice")
        await expect(a.locator("#messages .content", has_text="hi alice")).to_be_visible()

        # Alice calls; Bob's page rings; Bob answers.
        await a.get_by_role("button", name="Video call").click()
        await expect(b.locator("#call-status")).to_have_text("Incoming video call from alice")
        await b.get_by_role("button", name="Answer").click()
        await a.wait_for_function(CONNECTED)
        await b.wait_for_function(CONNECTED)
        await expect(a.locator("body")).to_have_attribute("data-call-state", "active")
        await expect(b.locator("body")).to_have_attribute("data-call-state", "active")

        # Bob receives media, and keeps receiving it.
        first = await grown_beyond(b, 0)
        assert await grown_beyond(b, first) > first
        await b.wait_for_function(
            "() => [...document.querySelectorAll('#remote-media video')]"
            ".some(v => v.videoWidth > 0)")
        screenshot = tmp_path / "call.png"
        await b.screenshot(path=str(screenshot), full_page=True)
        with capsys.disabled():
            print(f"\nscreenshot of the callee mid-call: {screenshot}")

        # Alice shares her screen: a second video track, negotiated mid-call, reaches Bob.
        await a.get_by_role("button", name="Share screen").click()
        await b.wait_for_function(
            "() => window.hubbub.call.remoteTracks.filter(t => t.kind === 'video').length >= 2")
        screen_track = await b.evaluate(
            "() => window.hubbub.call.remoteTracks.filter(t => t.kind === 'video').at(-1).id")
        shared = await grown_beyond(b, 0, screen_track)
        assert await grown_beyond(b, shared, screen_track) > shared
        await expect(b.locator("#remote-media video")).to_have_count(2)
        await expect(a.get_by_role("button", name="Stop sharing")).to_be_visible()

        # Alice hangs up: the call ends on both sides.
        await a.get_by_role("button", name="Hang up").click()
        await expect(a.locator("body")).to_have_attribute("data-call-state", "ended")
        await expect(b.locator("body")).to_have_attribute("data-call-state", "ended")
        await expect(b.locator("#call-status")).to_have_text("alice hung up")
        for page in (a, b):
            assert await page.evaluate("() => window.hubbub.call.pc.connectionState") == "closed"
    assert errors == []
