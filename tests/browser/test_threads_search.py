"""The browser client's threads, mentions, search, image previews and channel directory, in
real headless Chromium against a `hubbub serve` process, driven through the UI (labels,
buttons, the keyboard). Screenshots of the thread panel, the search results and the
directory are written to $HUBBUB_SCREENSHOTS (docs/screenshots/ for the documentation)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from tests.browser.test_call import chromium, require_browser, say, signed_in
from tests.support.across import made_room
from tests.support.flows import send
from tests.support.process import ServerProcess, serving
from tests.support.server import User

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.browser]



def shot(name: str) -> str:
    """Where a screenshot goes: `HUBBUB_SCREENSHOTS=docs/screenshots` writes the
    documentation's; else a temporary directory (a test run changes no committed file)."""
    directory = Path(os.environ.get("HUBBUB_SCREENSHOTS") or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory / name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(tmp_path_factory: pytest.TempPathFactory
              ) -> AsyncIterator[tuple[ServerProcess, Browser]]:
    """One `hubbub serve` on SQLite and one Chromium for the module (each test makes its
    own users and conversations)."""
    require_browser()
    workdir = tmp_path_factory.mktemp("threads")
    process = ServerProcess(database_url=f"sqlite:///{workdir / 'hubbub.db'}", workdir=workdir)
    async with serving(process) as server, chromium() as browser:
        yield server, browser


async def open_named(page: Page, title: str) -> None:
    from playwright.async_api import expect

    # No refresh: the conversation arrives in the list by the inbox stream.
    await page.locator("#conversation-list button", has_text=title).click()
    await expect(page.locator("#chat-title")).to_have_text(title)


def timeline(page: Page, text: str) -> Any:
    return page.locator("#messages li.message:not(.unsent)", has_text=text)


async def history(server: ServerProcess, user: User, conversation_id: str) -> list[Any]:
    async with server.http(user) as http:
        page = await http.get(f"/api/v1/conversations/{conversation_id}/messages")
    assert page.status_code == 200
    messages: list[Any] = page.json()["messages"]
    return messages


@pytest.mark.timeout(120)
async def test_thread_reply_reaches_the_other_panel_and_mentions_autocomplete(
        env: tuple[ServerProcess, Browser]) -> None:
    from playwright.async_api import expect

    server, browser = env
    errors: list[str] = []
    alice, bob = server.user("alice"), server.user("bob")
    team = await made_room(server, alice, [bob], kind="group", name="team")
    a = await signed_in(browser, server, alice, errors)
    b = await signed_in(browser, server, bob, errors)
    for page in (a, b):
        await open_named(page, "team")

    await say(a, "plan for friday?")
    for page in (a, b):
        await timeline(page, "plan for friday?").get_by_role(
            "button", name="Reply in thread").click()
        await expect(page.locator("#thread-parent")).to_contain_text("plan for friday?")
    b_box = b.get_by_label("Reply", exact=True)
    await b_box.fill("friday works")
    await b_box.press("Enter")
    # Alice's panel shows Bob's reply live; her timeline's parent counts it; the reply
    # stays out of the timeline.
    await expect(a.locator("#thread-replies li", has_text="friday works")).to_have_count(1)
    await expect(timeline(a, "plan for friday?").locator(".thread-replies")).to_have_text(
        "1 reply · last reply " + await a.locator(
            "#thread-replies li time").first.inner_text())
    await expect(timeline(a, "friday works")).to_have_count(0)
    await a.screenshot(path=shot("thread-panel.png"))
    [parent, reply] = await history(server, alice, team)
    assert (parent["reply_count"], reply["parent_id"]) == (1, parent["id"])

    # A phone: the open panel takes the whole screen.
    await a.set_viewport_size({"width": 390, "height": 844})
    box = await a.locator("#thread").bounding_box()
    assert box is not None
    assert (box["x"], box["width"]) == (0, 390)
    # A small laptop: the list gives way, so that the timeline keeps a readable width
    # beside the panel, without overlapping it, and nothing overflows sideways.
    await a.set_viewport_size({"width": 800, "height": 900})
    await expect(a.locator("#sidebar")).to_be_hidden()
    chat = await a.locator("#chat").bounding_box()
    panel = await a.locator("#thread").bounding_box()
    assert chat is not None
    assert panel is not None
    assert chat["width"] >= 400, chat
    assert chat["x"] + chat["width"] <= panel["x"], (chat, panel)
    assert await a.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    await a.set_viewport_size({"width": 1100, "height": 900})
    await expect(a.locator("#sidebar")).to_be_visible()
    await a.get_by_role("button", name="Close the thread").click()
    await expect(a.locator("#thread")).to_be_hidden()

    # `@` opens the members; typing filters, Escape closes, Enter picks.
    box_a = a.get_by_label("Message", exact=True)
    await box_a.click()
    await box_a.press_sequentially("look @")
    options = a.locator("#composer [role=option]")
    # Alice owns the group: she may mention everyone too (moderate, §3).
    await expect(options).to_have_text(["@bob", "@here everyone here", "@all everyone here"])
    await box_a.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await box_a.press("Escape")
    await expect(options).to_have_count(0)
    await box_a.press_sequentially("bo")
    await expect(options).to_have_text(["@bob"])
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await box_a.press("Enter")
    await expect(box_a).to_have_value("look @bob ")
    await box_a.press_sequentially("at this")
    await box_a.press("Enter")
    mention = timeline(b, "look @bob at this")
    await expect(mention).to_have_class("message mentions-me")
    await expect(mention.locator(".mention.me")).to_have_text("@bob")
    await expect(timeline(a, "look @bob at this").locator(".mention")).to_have_text("@bob")
    sent = (await history(server, alice, team))[-1]
    assert (sent["content"], sent["mentions"]) == ("look @bob at this", [bob.id])
    assert errors == []


@pytest.mark.timeout(120)
async def test_search_finds_an_old_message_and_jumps_to_it(
        env: tuple[ServerProcess, Browser]) -> None:
    """The match is 120 messages back, three history pages of the client's 50: clicking the
    result loads them and shows the message, scrolled to and highlighted."""
    from playwright.async_api import expect

    server, browser = env
    errors: list[str] = []
    alice = server.user("alice")
    room = await made_room(server, alice, [], kind="group", name="archive")
    client = await server.connect(alice)
    await send(client, room, "the deploy key is in the blue binder")
    for start in range(0, 120, 40):
        await asyncio.gather(*(send(client, room, f"filler {n}")
                               for n in range(start, start + 40)))
    a = await signed_in(browser, server, alice, errors)
    await open_named(a, "archive")
    await expect(timeline(a, "filler 119")).to_have_count(1)
    await expect(timeline(a, "blue binder")).to_have_count(0)  # not loaded yet

    await a.get_by_label("Search messages").fill("blue binder")
    await a.get_by_role("button", name="Search", exact=True).click()
    result = a.locator("#search-results .search-result")
    await expect(result).to_have_count(1)
    await expect(result.locator("mark")).to_have_text(["blue", "binder"])
    await expect(result).to_contain_text("in archive")
    await a.screenshot(path=shot("search-results.png"))
    await result.click()
    found = timeline(a, "blue binder")
    await expect(found).to_be_in_viewport()
    await expect(found).to_have_class("message mine jumped")
    assert await a.locator("#messages li.message").count() == 121

    # 120 matches, 20 a page: "More results" follows `next_cursor`, each result once.
    await a.get_by_label("Search messages").fill("filler")
    await a.get_by_role("button", name="Search", exact=True).click()
    await expect(result).to_have_count(20)
    await a.get_by_role("button", name="More results").click()
    await expect(result).to_have_count(40)
    shown = await result.locator(".excerpt").all_inner_texts()
    assert len(set(shown)) == 40
    assert errors == []


@pytest.mark.timeout(120)
async def test_thread_pages_back_and_search_jumps_into_a_thread(
        env: tuple[ServerProcess, Browser]) -> None:
    """55 replies: the panel shows the newest 50 and loads the rest on demand; a search
    result that is a reply, in the older page, opens its thread, loads back to it and
    highlights it there."""
    from playwright.async_api import expect

    server, browser = env
    errors: list[str] = []
    alice = server.user("alice")
    room = await made_room(server, alice, [], kind="group", name="threads")
    client = await server.connect(alice)
    parent = await send(client, room, "release checklist")
    for n in range(55):  # one at a time: in this order
        text = "step 2: the rollback plan" if n == 2 else f"step {n}"
        await send(client, room, text, parent_id=parent["id"])
    a = await signed_in(browser, server, alice, errors)
    await open_named(a, "threads")
    await expect(timeline(a, "release checklist").locator(".thread-replies")).to_contain_text(
        "55 replies")
    await timeline(a, "release checklist").locator(".thread-replies").click()
    replies = a.locator("#thread-replies li")
    await expect(replies).to_have_count(50)
    await expect(replies.first).to_contain_text("step 5")
    await a.get_by_role("button", name="Load older replies").click()
    await expect(replies).to_have_count(55)
    await expect(replies.first).to_contain_text("step 0")
    await expect(a.get_by_role("button", name="Load older replies")).to_be_hidden()
    await a.get_by_label("Reply", exact=True).press("Escape")
    await expect(a.locator("#thread")).to_be_hidden()

    await a.reload()  # afresh: neither the thread nor its older page loaded
    await a.wait_for_selector("body[data-ws='open']")
    await open_named(a, "threads")
    await a.get_by_label("Search messages").fill("rollback")
    await a.get_by_label("In", exact=True).select_option(label="The open conversation")
    await a.get_by_role("button", name="Search", exact=True).click()
    # The status line first: a search that failed or found nothing says so there.
    await expect(a.locator("#search-status")).to_have_text("1 message")
    result = a.locator(".search-result")
    await expect(result).to_have_count(1)
    await result.click()
    found = a.locator("#thread-replies li", has_text="rollback")
    await expect(found).to_be_in_viewport()
    await expect(found).to_have_class("message mine jumped")
    assert errors == []


async def test_typing_into_the_search_box_while_a_conversation_opens_stays_there(
        env: tuple[ServerProcess, Browser]) -> None:
    """A conversation that finishes opening (its history arrives) gives the composer the
    focus only if the user did not go into another field meanwhile: the history request is
    held back until the user has typed into the search box."""
    from playwright.async_api import Route, expect

    server, browser = env
    errors: list[str] = []
    alice = server.user("alice")
    room = await made_room(server, alice, [], kind="group", name="held history")
    await send(await server.connect(alice), room, "an older message")
    page = await signed_in(browser, server, alice, errors)
    asked = asyncio.Event()
    typed = asyncio.Event()

    async def hold(route: Route) -> None:
        asked.set()
        await typed.wait()
        await route.continue_()

    await page.route(f"**/api/v1/conversations/{room}/messages?*", hold)
    await page.locator("#conversation-list button", has_text="held history").click()
    await expect(page.locator("#chat-title")).to_have_text("held history")
    await asyncio.wait_for(asked.wait(), 10)  # the conversation waits for its history
    search = page.get_by_label("Search messages")
    await search.fill("older")
    typed.set()  # the history goes on now, and the conversation finishes opening
    await expect(timeline(page, "an older message")).to_have_count(1)
    await expect(search).to_be_focused()
    await expect(search).to_have_value("older")
    await expect(page.get_by_label("Message", exact=True)).to_have_value("")
    assert errors == []


@pytest.mark.timeout(120)
async def test_image_thumbnail_and_joining_from_the_directory(
        env: tuple[ServerProcess, Browser]) -> None:
    from playwright.async_api import expect

    server, browser = env
    errors: list[str] = []
    alice, bob = server.user("alice"), server.user("bob")
    lobby = await made_room(server, alice, [], kind="channel", name="lobby")
    await made_room(server, alice, [], kind="group", name="lobby-private")
    image_url = server.base_url + "/static/file.svg"  # an image this origin serves
    async with server.http(alice) as http:
        posted = await http.post(f"/api/v1/conversations/{lobby}/messages", json={
            "content": "the floor plan", "attachments": [
                {"url": image_url, "name": "floor plan.svg", "mime_type": "image/svg+xml",
                 "size": 230, "width": 16, "height": 16},
                {"url": "https://files.example/notes.pdf", "name": "notes.pdf",
                 "mime_type": "application/pdf", "size": 20480}]})
    assert posted.status_code == 201, posted.text

    b = await signed_in(browser, server, bob, errors)
    await expect(b.locator("#no-conversations")).to_be_visible()
    await b.get_by_role("button", name="Browse channels").click()
    await b.get_by_label("Find a channel").fill("lob")
    channels = b.locator("#directory-list .channel")
    await expect(channels).to_have_count(1)  # the private group is not listed
    await expect(channels).to_contain_text("#lobby")
    await expect(channels).to_contain_text("1 member")
    await b.screenshot(path=shot("directory.png"))
    await b.get_by_role("button", name="Join #lobby").click()
    await expect(b.locator("#chat-title")).to_have_text("#lobby")
    await expect(b.locator("#directory")).to_be_hidden()
    await expect(b.locator("#conversation-list")).to_contain_text("#lobby")

    message = timeline(b, "the floor plan")
    thumbnail = message.locator("a.thumbnail")
    await expect(thumbnail).to_have_attribute("href", image_url)
    image = thumbnail.get_by_role("img", name="floor plan.svg")
    await expect(image).to_have_attribute("loading", "lazy")
    await b.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                              arg=await image.element_handle())  # it loaded
    chip = message.locator("a.file-chip")
    await expect(chip).to_have_attribute("href", "https://files.example/notes.pdf")
    await expect(chip).to_contain_text("notes.pdf")
    await expect(chip).to_contain_text("20.0 KB")
    async with server.http(bob) as http:
        members = (await http.get(f"/api/v1/conversations/{lobby}/members")).json()
    assert bob.id in {m["user_id"] for m in members["members"]}
    assert errors == []


async def mention_and_send(page: Page, box: Any, text: str, name: str) -> None:
    """Type `text`, pick `@name` in the autocomplete, and send with Enter."""
    from playwright.async_api import expect

    await box.click()
    await box.press_sequentially(f"{text} @{name[:3]}")
    await expect(page.locator("[role=option]", has_text=f"@{name}").first).to_be_visible()
    await box.press("Enter")  # picks the option
    await box.press("Enter")  # sends


@pytest.mark.timeout(120)
async def test_refused_reply_and_message_keep_thread_and_mentions_across_a_reload(
        env: tuple[ServerProcess, Browser]) -> None:
    """Bob, made read-only, sends a message mentioning Alice and a thread reply mentioning
    her: each shows as not sent with Retry (the reply in its thread's panel, not in the
    timeline), still after a reload; once he may write again, Retry stores each once with
    its thread, its mentions and its first client_message_id."""
    from playwright.async_api import expect

    server, browser = env
    errors: list[str] = []
    alice, bob = server.user("alice"), server.user("bob")
    crew = await made_room(server, alice, [bob], kind="group", name="crew")
    client = await server.connect(alice)
    parent = await send(client, crew, "who brings the cake?")
    b = await signed_in(browser, server, bob, errors)
    await open_named(b, "crew")
    await timeline(b, "who brings the cake?").get_by_role("button", name="Reply in thread").click()
    async with server.http(alice) as http:
        demoted = await http.put(f"/api/v1/conversations/{crew}/members/{bob.id}",
                                 json={"role": "read_only"})
        assert demoted.status_code == 200

    await mention_and_send(b, b.get_by_label("Reply", exact=True), "ask", "alice")
    reply = b.locator("#thread-replies li.unsent")
    await expect(reply).to_have_attribute("data-state", "failed")
    await expect(reply).to_contain_text("ask @alice")
    await expect(reply).to_contain_text("Not sent: You are not allowed to do that here.")
    await b.get_by_role("button", name="Close the thread").click()
    await mention_and_send(b, b.get_by_label("Message", exact=True), "hey", "alice")
    message = b.locator("#messages li.unsent")
    await expect(message).to_have_count(1)  # the reply is not in the timeline
    await expect(message).to_have_attribute("data-state", "failed")
    ids = {"reply": await reply.get_attribute("data-client-message-id"),
           "message": await message.get_attribute("data-client-message-id")}

    await b.reload()
    await b.wait_for_selector("body[data-ws='open']")
    await open_named(b, "crew")
    await expect(message).to_have_attribute("data-state", "failed")
    await expect(message).to_contain_text("hey @alice")
    await timeline(b, "who brings the cake?").get_by_role("button", name="Reply in thread").click()
    await expect(reply).to_have_attribute("data-state", "failed")
    await expect(reply).to_have_attribute("data-client-message-id", str(ids["reply"]))
    await b.screenshot(path=shot("thread-unsent-reply.png"))
    async with server.http(alice) as http:
        restored = await http.put(f"/api/v1/conversations/{crew}/members/{bob.id}",
                                  json={"role": "member"})
        assert restored.status_code == 200
    await reply.get_by_role("button", name="Retry").click()
    sent_reply = b.locator("#thread-replies li:not(.unsent)", has_text="ask @alice")
    await expect(sent_reply).to_have_count(1)
    await expect(reply).to_have_count(0)
    await message.get_by_role("button", name="Retry").click()
    await expect(timeline(b, "hey @alice")).to_have_count(1)
    await expect(message).to_have_count(0)
    assert await b.evaluate("() => localStorage.getItem('hubbub.unsent')") == "{}"

    stored = {m["content"]: m for m in await history(server, alice, crew)}
    assert sorted(stored) == ["ask @alice", "hey @alice", "who brings the cake?"]
    for content, kind, parent_id in (("ask @alice", "reply", parent["id"]),
                                     ("hey @alice", "message", None)):
        sent = stored[content]
        assert (sent["parent_id"], sent["mentions"], sent["client_message_id"]) == (
            parent_id, [alice.id], ids[kind])
    assert errors == []


@pytest.mark.timeout(120)
async def test_the_thread_panel_closes_when_another_conversation_opens(
        env: tuple[ServerProcess, Browser]) -> None:
    """On a desktop, picking another conversation in the list closes the open thread; on a
    phone, so does going back to the list. The conversation opened shows no thread."""
    from playwright.async_api import expect

    server, browser = env
    errors: list[str] = []
    alice = server.user("alice")
    first = await made_room(server, alice, [], kind="group", name="first room")
    await made_room(server, alice, [], kind="group", name="second room")
    client = await server.connect(alice)
    await send(client, first, "a topic")
    for width, height in ((1100, 900), (390, 844)):
        a = await signed_in(browser, server, alice, errors, width=width, height=height)
        await open_named(a, "first room")
        await timeline(a, "a topic").get_by_role("button", name="Reply in thread").click()
        await expect(a.locator("#thread")).to_be_visible()
        if width < 400:  # the panel covers the phone's screen: Close shows the timeline
            await a.get_by_role("button", name="Close the thread").click()
            await a.get_by_role("button", name="Back to conversations").click()
        await open_named(a, "second room")
        await expect(a.locator("#thread")).to_be_hidden()
        assert await a.evaluate("() => document.body.dataset.thread") is None
        await expect(a.get_by_label("Message", exact=True)).to_be_in_viewport()
    assert errors == []
