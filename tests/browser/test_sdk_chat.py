"""The browser client on the JavaScript SDK, in real headless Chromium: two users exchange
messages through the SDK in the page; a message written while the server is down waits,
shown as unsent, and is delivered once when it is back; a refused one shows as failed and
is sent by Retry (with the same client_message_id) once it may be. Conversations reach the
list by the inbox stream, with no refresh."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hubbub.domain.tokens import mint
from tests.browser.test_call import STEP_MS, chromium, require_browser, say, signed_in
from tests.support.process import ServerProcess, serving
from tests.support.server import User

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.browser]


def contents(page: Page, text: str) -> Locator:
    """The page's sent messages (not the unsent ones) showing `text`."""
    return page.locator("#messages li:not(.unsent) .content", has_text=text)


@asynccontextmanager
async def server_and_browser(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, Browser]]:
    """A `hubbub serve` process (restartable) on a SQLite file, and Chromium."""
    require_browser()
    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'hubbub.db'}",
                            workdir=tmp_path)
    async with serving(process) as server, chromium() as browser:
        yield server, browser


async def group_of(server: ServerProcess, owner: User, member: User) -> str:
    """A group `team` of the two, both known to the server; its id."""
    async with server.http(member) as http:
        assert (await http.get("/api/v1/users/me")).status_code == 200
    async with server.http(owner) as http:
        created = await http.post("/api/v1/conversations", json={
            "kind": "group", "name": "team", "member_ids": [member.id]})
    assert created.status_code == 201
    return str(created.json()["id"])


async def open_team(page: Page) -> None:
    from playwright.async_api import expect

    # No refresh: the conversation arrives in the list by the inbox stream.
    await page.locator("#conversation-list button", has_text="team").click()
    await expect(page.locator("#chat-title")).to_have_text("team")


@pytest.mark.timeout(300)
async def test_two_users_chat_through_the_sdk_across_a_restart(tmp_path: Path) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path) as (server, browser):
        alice, bob = server.user("alice"), server.user("bob")
        group = await group_of(server, alice, bob)
        a = await signed_in(browser, server, alice, errors)
        b = await signed_in(browser, server, bob, errors)
        for page in (a, b):
            assert await page.evaluate(
                "() => window.hubbub.client.constructor.name") == "HubbubClient"
            await open_team(page)

        await say(a, "hello bob")
        await expect(contents(b, "hello bob")).to_have_count(1)
        await say(b, "hi alice")
        await expect(contents(a, "hi alice")).to_have_count(1)

        # The server goes away; Alice writes meanwhile: her message waits, shown as unsent.
        await server.stop()
        await a.wait_for_selector("body[data-ws='closed']")
        await say(a, "written while away")
        unsent = a.locator("#messages li.unsent", has_text="written while away")
        await expect(unsent).to_have_attribute("data-state", "queued")
        await expect(unsent).to_contain_text("Waiting for the connection")

        # Back on the same port: the SDK reconnects, re-joins and sends it, once.
        await server.start(port=server.port)
        await expect(contents(b, "written while away")).to_have_count(1, timeout=STEP_MS * 2)
        await expect(contents(a, "written while away")).to_have_count(1)
        await expect(a.locator("#messages li.unsent")).to_have_count(0)

        # Made read-only in the group, Bob's message is refused: it shows as failed, said
        # in words (no error code), with Retry.
        async with server.http(alice) as http:
            demoted = await http.put(f"/api/v1/conversations/{group}/members/{bob.id}",
                                     json={"role": "read_only"})
            assert demoted.status_code == 200
        await say(b, "let me back in")
        failed = b.locator("#messages li.unsent", has_text="let me back in")
        await expect(failed).to_have_attribute("data-state", "failed")
        await expect(failed).to_contain_text("You are not allowed to do that here.")
        async with server.http(alice) as http:
            added = await http.put(f"/api/v1/conversations/{group}/members/{bob.id}",
                                   json={"role": "member"})
            assert added.status_code == 200
        await failed.get_by_role("button", name="Retry").click()
        await expect(contents(b, "let me back in")).to_have_count(1)
        await expect(b.locator("#messages li.unsent")).to_have_count(0)
        async with server.http(alice) as http:
            page = (await http.get(f"/api/v1/conversations/{group}/messages")).json()
        assert [m["content"] for m in page["messages"]] == [
            "hello bob", "hi alice", "written while away", "let me back in"]
    assert errors == []


@pytest.mark.timeout(300)
async def test_a_message_written_after_the_token_expired_goes_out_after_signing_in_again(
        tmp_path: Path) -> None:
    """The server closes the expired connection (4001); the message written meanwhile waits
    in the same SDK client and is sent, once, when the user pastes a fresh token."""
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path) as (server, browser):
        alice, bob = server.user("alice"), server.user("bob")
        # Long enough to sign in and open the conversation on a loaded machine.
        short = User(alice.id, alice.name,
                     mint(server.jwt_secret, alice.id, alice.name, now=time.time(), ttl_s=8))
        await group_of(server, bob, alice)
        a = await signed_in(browser, server, short, errors)
        b = await signed_in(browser, server, bob, errors)
        for page in (a, b):
            await open_team(page)

        await expect(a.locator("#login-error")).to_have_text(
            "Your token expired: paste a new one.", timeout=STEP_MS)
        await say(a, "written after expiry")
        unsent = a.locator("#messages li.unsent", has_text="written after expiry")
        await expect(unsent).to_have_attribute("data-state", "queued")

        await a.get_by_label("Access token (JWT)").fill(alice.token)
        await a.get_by_role("button", name="Sign in").click()
        await expect(contents(b, "written after expiry")).to_have_count(1)
        await expect(contents(a, "written after expiry")).to_have_count(1)
        await expect(a.locator("#messages li.unsent")).to_have_count(0)
        await expect(a.locator("#login")).to_be_hidden()
    assert errors == []
