"""The browser client on the inbox stream (PROTOCOL.md §4.1), in real headless Chromium
against `hubbub serve`: the list lives without polling or joining (a stranger's direct
message appears at once, with its badge, on a phone), reading clears the badge on the
user's other device too, mentions get an `@` badge, mute/pin/leave show in the list on
every device, and what the user types is never lost nor doubled: a fast burst, a burst
over the rate limit, and a message typed while the server is away and the page reloaded.

The screenshots of docs/screenshots/ are taken here: `HUBBUB_SCREENSHOTS=docs/screenshots`
writes them there (otherwise into the test's temporary directory, so that a test run leaves
the working tree alone)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_call import STEP_MS, chromium, require_browser, say, signed_in
from tests.support.process import ServerProcess, serving
from tests.support.server import User

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page, Route

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.browser]

PHONE = {"width": 390, "height": 844}


@asynccontextmanager
async def server_and_browser(tmp_path: Path, **env: str
                             ) -> AsyncIterator[tuple[ServerProcess, Browser]]:
    """A `hubbub serve` process on a SQLite file, with `HUBBUB_*` settings `env`, and
    Chromium; meanwhile `expect` waits up to a step (the machine is shared and loaded)."""
    require_browser()
    from playwright.async_api import expect

    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'hubbub.db'}",
                            workdir=tmp_path, extra_env=env)
    expect.set_options(timeout=STEP_MS)
    try:
        async with serving(process) as server, chromium() as browser:
            yield server, browser
    finally:
        expect.set_options(timeout=None)  # Playwright's default again


def screenshot_dir(tmp_path: Path) -> Path:
    """Where this run's screenshots go: `HUBBUB_SCREENSHOTS`, else the test's own directory."""
    directory = Path(os.environ.get("HUBBUB_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def entry(page: Page, title: str) -> Locator:
    """The list entry of the conversation called `title`."""
    return page.locator("#conversation-list button.conversation",
                        has=page.locator(".name", has_text=title))


def contents(page: Page) -> Locator:
    """The sent messages' texts of the open conversation (not the unsent ones)."""
    return page.locator("#messages li:not(.unsent) .content")


async def known(server: ServerProcess, *users: User) -> None:
    """Make the server know `users` (their first request), as a backend's users would be."""
    for user in users:
        async with server.http(user) as http:
            assert (await http.get("/api/v1/users/me")).status_code == 200


async def created(server: ServerProcess, owner: User, **body: object) -> str:
    async with server.http(owner) as http:
        response = await http.post("/api/v1/conversations", json=body)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


async def history(server: ServerProcess, user: User, conversation_id: str) -> list[str]:
    async with server.http(user) as http:
        page = (await http.get(f"/api/v1/conversations/{conversation_id}/messages",
                               params={"limit": 100})).json()
    return [message["content"] for message in page["messages"]]


async def type_burst(page: Page, texts: list[str]) -> float:
    """Type each text in the message box and press Enter, as fast as a user could; the
    seconds it took."""
    box = page.get_by_label("Message", exact=True)
    started = time.monotonic()
    for text in texts:
        await box.fill(text)
        await box.press("Enter")
    return time.monotonic() - started


@pytest.mark.timeout(120)
async def test_a_strangers_direct_message_reaches_the_phone_and_reading_clears_it_everywhere(
        tmp_path: Path) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path) as (server, browser):
        alice, bob = server.user("alice"), server.user("bob")
        await known(server, bob)
        a = await signed_in(browser, server, alice, errors)
        phone = await signed_in(browser, server, bob, errors, **PHONE)
        laptop = await signed_in(browser, server, bob, errors)  # Bob's second device
        await expect(phone.locator("#no-conversations")).to_contain_text(
            "No conversations yet — start one")
        listed_again: list[str] = []  # the list is fetched per connection, never polled
        phone.on("request", lambda request: listed_again.append(request.url)
                 if request.url.endswith("/api/v1/conversations") else None)

        # Alice, whom Bob has never talked to, writes to him: no reload, no refresh.
        await a.get_by_text("New conversation").click()
        await a.get_by_label("Kind").select_option("direct")
        await a.get_by_label("Member ids").fill(bob.id)
        await a.get_by_role("button", name="Create").click()
        await expect(a.locator("#chat-title")).to_have_text("bob")
        await expect(a.locator("#no-messages")).to_be_visible()
        await say(a, "hi bob, it's alice")
        await say(a, "are you there?")

        for page in (phone, laptop):
            badge = entry(page, "alice").locator(".badge.unread")
            await expect(badge).to_have_text("2")
            await expect(entry(page, "alice").locator(".preview")).to_have_text(
                "alice: are you there?")
            await expect(page).to_have_title("(2) hubbub")
            assert "data:image/svg+xml" in str(
                await page.locator("#favicon").get_attribute("href"))
        # Alice is online (she made the conversation): a green dot beside her name.
        await expect(entry(phone, "alice").locator(".presence")).to_have_attribute(
            "data-online", "true")
        await expect(phone.locator("#chat")).to_be_hidden()  # the phone shows the list
        await phone.screenshot(path=str(screenshot_dir(tmp_path) / "phone-list.png"))

        # Bob opens it on the phone: the conversation is a screen of its own.
        await entry(phone, "alice").click()
        await expect(phone.locator("#sidebar")).to_be_hidden()
        await expect(contents(phone)).to_have_text(["hi bob, it's alice", "are you there?"])
        await expect(phone.locator("#chat-members li", has_text="alice")).to_contain_text(
            "online")
        await say(phone, "hello alice 👋")
        await expect(contents(a).last).to_have_text("hello alice 👋")
        await phone.screenshot(path=str(screenshot_dir(tmp_path) / "phone-conversation.png"))

        # Read on the phone: the laptop's badge and title clear too (ReadStateChanged).
        await expect(entry(laptop, "alice").locator(".badge")).to_have_count(0)
        await expect(laptop).to_have_title("hubbub")
        await expect(phone).to_have_title("hubbub")
        async with server.http(bob) as http:
            listed = (await http.get("/api/v1/conversations")).json()["conversations"]
        assert [c["unread_count"] for c in listed] == [0]

        assert listed_again == []
        # Alice closes her page: her dot turns hollow, live (PresenceChanged).
        await a.context.close()
        await expect(phone.locator("#chat-members li", has_text="alice")).to_contain_text(
            "offline")
        # A group someone else starts with Bob appears too, at once.
        carol = server.user("carol")
        await created(server, carol, kind="group", name="weekend", member_ids=[bob.id])
        await expect(entry(laptop, "weekend")).to_have_count(1)
        # Only the open conversation is joined (its full event stream); the list is the inbox's.
        assert await phone.evaluate("() => window.hubbub.client.changes.ids()") == [
            await phone.evaluate("() => window.hubbub.current")]
        await phone.get_by_role("button", name="Back to conversations").click()
        await expect(phone.locator("#sidebar")).to_be_visible()
        await expect(entry(phone, "alice").locator(".preview")).to_have_text(
            "You: hello alice 👋")
        await expect(entry(phone, "alice").locator(".presence")).to_have_attribute(
            "data-online", "false")
        await expect(entry(phone, "weekend").locator(".preview")).to_have_text(
            "No messages yet")
        assert await phone.evaluate("() => window.hubbub.client.changes.ids()") == []
    assert errors == []


@pytest.mark.timeout(120)
async def test_mentions_mute_pin_and_leave_show_in_the_list_on_every_device(
        tmp_path: Path) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path) as (server, browser):
        alice, bob, carol = server.user("alice"), server.user("bob"), server.user("carol")
        await known(server, bob, carol)
        team = await created(server, alice, kind="group", name="team",
                             member_ids=[bob.id, carol.id])
        general = await created(server, carol, kind="channel", name="general",
                                member_ids=[bob.id])
        await created(server, carol, kind="direct", member_ids=[bob.id])
        b = await signed_in(browser, server, bob, errors)
        other = await signed_in(browser, server, bob, errors)  # Bob's second device
        await expect(b.locator("#conversation-list li")).to_have_count(3)

        async with server.http(carol) as http:
            for text in ("standup at 10", "who has the keys?", "coffee?"):
                sent = await http.post(f"/api/v1/conversations/{general}/messages",
                                       json={"content": text})
                assert sent.status_code == 201
        async with server.http(alice) as http:
            sent = await http.post(f"/api/v1/conversations/{team}/messages", json={
                "content": "@bob can you review this?", "mentions": [bob.id]})
            assert sent.status_code == 201
            sent = await http.post(f"/api/v1/conversations/{team}/messages",
                                   json={"content": "no rush"})
            assert sent.status_code == 201

        # A mention shows as `@`, beside the unread count; a plain unread has no `@`.
        await expect(entry(b, "team").locator(".badge.mention")).to_have_text("@")
        await expect(entry(b, "team").locator(".badge.unread")).to_have_text("2")
        await expect(entry(b, "#general").locator(".badge.unread")).to_have_text("3")
        await expect(entry(b, "#general").locator(".badge.mention")).to_have_count(0)
        await expect(b).to_have_title("(5) hubbub")
        # Newest activity first.
        await expect(b.locator("#conversation-list .name")).to_have_text(
            ["team", "#general", "carol"])

        # Mute #general: a muted look, a quiet badge, out of the title's total; the other
        # device follows.
        await entry(b, "#general").click()
        await b.get_by_role("button", name="Mute conversation").click()
        await entry(b, "carol").click()
        for page in (b, other):
            await expect(entry(page, "#general")).to_have_attribute("data-muted", "true")
        async with server.http(carol) as http:
            await http.post(f"/api/v1/conversations/{general}/messages",
                            json={"content": "lunch?"})
        await expect(entry(b, "#general").locator(".badge.unread.quiet")).to_have_text("1")
        await expect(other).to_have_title("(2) hubbub")  # team's 2; #general is muted
        await b.screenshot(path=str(screenshot_dir(tmp_path) / "desktop-inbox.png"))

        # Pin the direct conversation with carol: first in the list, on both devices.
        await b.get_by_role("button", name="Pin", exact=True).click()
        for page in (b, other):
            await expect(page.locator("#conversation-list .name").first).to_have_text("carol")
            await expect(entry(page, "carol").locator(".marker.pin")).to_have_count(1)
        await b.get_by_role("button", name="Unpin").click()
        await expect(other.locator("#conversation-list .name")).to_have_text(
            ["#general", "team", "carol"])

        # Leave team, after saying yes: gone from the list on both devices; the other
        # device, which had it open, says so.
        await entry(other, "team").click()
        await entry(b, "team").click()
        await expect(b.locator("#messages .content").first).to_have_text(
            "@bob can you review this?")
        await b.get_by_role("button", name="Leave…").click()
        await b.get_by_role("button", name="Stay").click()
        await expect(entry(b, "team")).to_have_count(1)
        await b.get_by_role("button", name="Leave…").click()
        await b.get_by_role("button", name="Leave", exact=True).click()
        for page in (b, other):
            await expect(entry(page, "team")).to_have_count(0)
        await expect(b.locator("#chat-title")).to_have_text("No conversation open")
        await expect(other.locator("#gone")).to_have_text(
            "You are no longer a member of this conversation.")
        await expect(other.get_by_label("Message", exact=True)).to_be_hidden()
        async with server.http(bob) as http:
            listed = (await http.get("/api/v1/conversations")).json()["conversations"]
        assert team not in {c["id"] for c in listed}

        # Added back by alice: listed again at once, and the open view is live again.
        async with server.http(alice) as http:
            added = await http.put(f"/api/v1/conversations/{team}/members/{bob.id}",
                                   json={"role": "member"})
            assert added.status_code in (200, 201)
        await expect(entry(b, "team")).to_have_count(1)
        await expect(other.locator("#gone")).to_be_hidden()
        await say(other, "back again")
        await expect(contents(other).last).to_have_text("back again")
    assert errors == []


@pytest.mark.timeout(120)
async def test_thirty_messages_typed_in_three_seconds_arrive_once_in_order_and_edits_show(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path) as (server, browser):
        alice, bob = server.user("alice"), server.user("bob")
        await known(server, alice, bob)
        direct = await created(server, alice, kind="direct", member_ids=[bob.id])
        a = await signed_in(browser, server, alice, errors)
        b = await signed_in(browser, server, bob, errors)
        await entry(b, "alice").click()
        await expect(b.locator("#no-messages")).to_be_visible()

        # Alice starts typing at once, while her history is still on its way (held back
        # here): what is confirmed meanwhile is kept, and merged with the history.
        async def slowly(route: Route) -> None:
            response = await route.fetch()  # the server's answer now, handed over later
            await asyncio.sleep(1.0)
            await route.fulfill(response=response)

        await a.route("**/messages?*", slowly)
        await entry(a, "bob").click()
        texts = [f"message {n:02}" for n in range(30)]
        took = await type_burst(a, texts)
        with capsys.disabled():
            print(f"\n30 messages typed in {took:.2f} s")
        # As fast as a person types and presses Enter, on a loaded two-core machine too.
        assert took < 3.0 * 2, took
        await expect(contents(b)).to_have_text(texts)
        await expect(contents(a)).to_have_text(texts)
        await expect(a.locator("#messages li.unsent")).to_have_count(0)
        assert await history(server, bob, direct) == texts

        # Edit in place (Enter saves): the other side sees the new text, marked edited.
        last = a.locator("#messages li:not(.unsent)").last
        await last.get_by_role("button", name="Edit").click()
        await last.get_by_label("Edit message").fill("message 29, corrected")
        await last.get_by_label("Edit message").press("Enter")
        theirs = b.locator("#messages li:not(.unsent)").last
        await expect(theirs.locator(".content")).to_have_text("message 29, corrected")
        await expect(theirs.locator(".meta")).to_contain_text("edited")
        # Delete asks first; then both sides show a tombstone.
        await last.get_by_role("button", name="Delete").click()
        await last.get_by_role("button", name="Keep").click()
        await expect(last.locator(".content")).to_have_text("message 29, corrected")
        await last.get_by_role("button", name="Delete").click()
        await last.get_by_role("button", name="Delete").click()
        for page in (a, b):
            await expect(page.locator("#messages li:not(.unsent)").last).to_contain_text(
                "This message was deleted.")
        assert (await history(server, bob, direct))[-1] == ""
    assert errors == []


@pytest.mark.timeout(120)
async def test_a_burst_over_the_rate_limit_is_delivered_once_each_in_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two sends a second after a burst of three: the SDK's queue waits out each
    RATE_LIMITED (its `retry_after_ms`) and sends again with the same client_message_id."""
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path, HUBBUB_RATE_LIMITS="on", HUBBUB_SEND_RATE="2",
                                  HUBBUB_SEND_BURST="3") as (server, browser):
        alice, bob = server.user("alice"), server.user("bob")
        await known(server, alice, bob)
        direct = await created(server, alice, kind="direct", member_ids=[bob.id])
        a = await signed_in(browser, server, alice, errors)
        b = await signed_in(browser, server, bob, errors)
        await entry(a, "bob").click()
        await entry(b, "alice").click()
        await a.evaluate("() => { window.states = []; window.hubbub.client.on('outbox', "
                         "(e) => window.states.push([e.state, e.error && e.error.code])); }")

        texts = [f"burst {n}" for n in range(10)]
        started = time.monotonic()
        await type_burst(a, texts)
        await expect(contents(b)).to_have_text(texts)
        with capsys.disabled():  # at least (10 - 3) / 2 = 3.5 s: the limit's own pace
            print(f"\n10 messages over a 2/s limit delivered in {time.monotonic() - started:.2f} s")
        await expect(contents(a)).to_have_text(texts)
        await expect(a.locator("#messages li.unsent")).to_have_count(0)
        assert await history(server, bob, direct) == texts
        states = await a.evaluate("() => window.states")
        assert ["waiting", "RATE_LIMITED"] in states, states
        assert not any(state == "failed" for state, _ in states), states
    assert errors == []


@pytest.mark.timeout(120)
async def test_unsent_messages_survive_a_closed_tab_and_a_reload(tmp_path: Path) -> None:
    """Typed while the server is away, then the tab closed: the next page of the user sends
    it, once (after signing in waited for the server), and a thread reply typed meanwhile
    with it, in its thread. Refused (read-only), then the page
    reloaded: still shown, with Retry. A draft, typed and not sent, survives a reload."""
    from playwright.async_api import expect

    errors: list[str] = []
    async with server_and_browser(tmp_path) as (server, browser):
        alice, bob = server.user("alice"), server.user("bob")
        await known(server, alice, bob)
        team = await created(server, alice, kind="group", name="team", member_ids=[bob.id])
        b = await signed_in(browser, server, bob, errors)
        await entry(b, "team").click()
        await say(b, "before")
        await expect(contents(b)).to_have_text(["before"])

        await server.stop()
        await b.wait_for_selector("body[data-ws='closed']")
        await say(b, "typed while away")
        unsent = b.locator("#messages li.unsent", has_text="typed while away")
        await expect(unsent).to_have_attribute("data-state", "queued")
        await contents(b).filter(has_text="before").locator("..").get_by_role(
            "button", name="Reply in thread").click()
        await b.get_by_label("Reply", exact=True).fill("replied while away")
        await b.get_by_label("Reply", exact=True).press("Enter")
        await expect(b.locator("#thread-replies li.unsent", has_text="replied while away")
                     ).to_have_attribute("data-state", "queued")
        await expect(b.locator("#messages li.unsent")).to_have_count(1)  # not the reply
        context = b.context
        await b.close()
        await server.start(port=server.port)

        b = await context.new_page()
        b.on("pageerror", lambda error: errors.append(f"bob: {error}"))
        await b.goto(server.base_url + "/")
        # The server cannot be reached for a moment: signing in waits and tries again.
        await b.route("**/api/v1/users/me", lambda route: route.abort())
        await b.get_by_label("Access token (JWT)").fill(bob.token)
        await b.get_by_role("button", name="Sign in").click()
        await expect(b.locator("#login-error")).to_have_text(
            "Could not reach the server: trying again…")
        await b.unroute("**/api/v1/users/me")
        await b.wait_for_selector("body[data-ws='open']")
        await entry(b, "team").click()
        await expect(contents(b)).to_have_text(["before", "typed while away"])
        await expect(b.locator("#messages li.unsent")).to_have_count(0)
        sent = ["before", "typed while away", "replied while away"]
        assert await history(server, bob, team) == sent
        async with server.http(bob) as http:
            [parent, *_] = (await http.get(f"/api/v1/conversations/{team}/messages")
                            ).json()["messages"]
            replies = (await http.get(f"/api/v1/conversations/{team}/messages",
                                      params={"parent_id": parent["id"]})).json()["messages"]
        assert [reply["content"] for reply in replies] == ["replied while away"]

        async with server.http(alice) as http:
            demoted = await http.put(f"/api/v1/conversations/{team}/members/{bob.id}",
                                     json={"role": "read_only"})
            assert demoted.status_code == 200
        await say(b, "refused at first")
        failed = b.locator("#messages li.unsent", has_text="refused at first")
        await expect(failed).to_have_attribute("data-state", "failed")
        await b.reload()  # the tab keeps the token: signed in again by itself
        await entry(b, "team").click()
        await expect(failed).to_have_attribute("data-state", "failed")
        await expect(failed).to_contain_text("Not sent: You are not allowed to do that here.")
        async with server.http(alice) as http:
            restored = await http.put(f"/api/v1/conversations/{team}/members/{bob.id}",
                                      json={"role": "member"})
            assert restored.status_code == 200
        await failed.get_by_role("button", name="Retry").click()
        await expect(contents(b)).to_have_text(
            ["before", "typed while away", "refused at first"])
        await expect(b.locator("#messages li.unsent")).to_have_count(0)
        assert await b.evaluate("() => localStorage.getItem('hubbub.unsent')") == "{}"
        await b.reload()  # nothing is sent again
        await entry(b, "team").click()
        await expect(contents(b)).to_have_count(3)
        assert await history(server, bob, team) == [*sent, "refused at first"]

        # Typed but not sent: the draft is back in the box after a reload; signing out
        # forgets it.
        await b.get_by_label("Message", exact=True).fill("half-written")
        await b.reload()
        await entry(b, "team").click()
        await expect(b.get_by_label("Message", exact=True)).to_have_value("half-written")
        await b.get_by_role("button", name="Sign out").click()
        await expect(b.locator("#login")).to_be_visible()
        assert await b.evaluate("() => localStorage.getItem('hubbub.drafts')") == "{}"
    assert errors == []
