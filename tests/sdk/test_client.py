"""The SDK against a real server: every request resolves to its typed answer, refusals
raise RequestError with the wire code, and events arrive typed and in order."""

from __future__ import annotations

import pytest

from hubbub.client import AuthenticationError, Client, Event, RequestError
from hubbub.protocol.server import (
    Connected,
    MessageDeleted,
    MessageEdited,
    MessageRead,
    NewMessage,
    ReactionAdded,
    UserTyping,
)
from tests.sdk.support import FAST, next_event, next_of
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_requests_resolve_to_typed_answers_and_events_follow(
        server: RunningServer) -> None:
    """send/edit/react/delete/typing/mark_read over the SDK; the other member's client sees
    each change as a typed event, in version order."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, "group", "sdk", members=[bob])
    async with Client(server.ws_url, alice.token, backoff=FAST) as a, \
            Client(server.ws_url, bob.token, backoff=FAST) as b:
        assert a.user_id == alice.id
        bob_events = b.events()
        assert isinstance(await next_event(bob_events), Connected)
        await a.join(room["id"])
        await b.join(room["id"])
        sent = await a.send(room["id"], "hello", client_message_id="c-1")
        assert (sent.content, sent.sender_id, sent.client_message_id) == ("hello", alice.id,
                                                                          "c-1")
        again = await a.send(room["id"], "hello", client_message_id="c-1")
        assert again.id == sent.id  # the server's idempotency, through the SDK
        edited = await a.edit(sent.id, "hello!")
        assert edited.content == "hello!"
        assert edited.version > sent.version
        await b.react(sent.id, "👍")
        await a.typing(room["id"])
        await b.mark_read(room["id"], sent.id)
        await a.delete(sent.id)
        seen: list[Event] = []
        while not any(isinstance(e, MessageDeleted) for e in seen):
            seen.append(await next_event(bob_events))
        kinds = [type(e) for e in seen]
        assert kinds[0] is NewMessage
        assert MessageEdited in kinds
        assert ReactionAdded in kinds
        assert UserTyping in kinds
        assert MessageRead in kinds
        versions = [e.version if isinstance(e, ReactionAdded | MessageDeleted)
                    else e.message.version for e in seen
                    if isinstance(e, NewMessage | MessageEdited | ReactionAdded
                                  | MessageDeleted)]
        assert versions == sorted(versions)
        assert len(set(versions)) == len(versions)
        history = await b.history(room["id"])
        assert [m.id for m in history.messages] == [sent.id]
        assert history.messages[0].deleted_at is not None


async def test_a_refusal_raises_the_wire_code_and_the_client_goes_on(
        server: RunningServer) -> None:
    """NOT_FOUND, FORBIDDEN and BAD_REQUEST reach the caller as RequestError.code; the
    connection survives them."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, "group", "closed")
    async with Client(server.ws_url, bob.token, backoff=FAST) as b:
        with pytest.raises(RequestError) as refused:
            await b.join(room["id"])
        assert refused.value.code == "FORBIDDEN"
        with pytest.raises(RequestError) as missing:
            await b.edit("00000000-0000-4000-8000-000000000000", "x")
        assert missing.value.code == "NOT_FOUND"
        with pytest.raises(RequestError) as bad:
            await b.send(room["id"], "x" * 4001)
        assert bad.value.code == "BAD_REQUEST"
        assert "content" in bad.value.message
        assert (await b.ping()).server_time
        assert b.connections == 1


async def test_ticket_auth_and_the_token_callback(server: RunningServer) -> None:
    """With use_ticket the client buys a ticket with the token the callback returns (called
    before the connect) and connects with ?ticket=."""
    alice = server.user("alice")
    calls: list[int] = []

    async def token() -> str:
        calls.append(1)
        return alice.token

    async with Client(server.ws_url, token, use_ticket=True, backoff=FAST) as a:
        assert a.user_id == alice.id
    assert calls == [1]


async def test_a_refused_token_is_an_authentication_error(server: RunningServer) -> None:
    """A 401 at the handshake is not retried: start() raises."""
    client = Client(server.ws_url, "not-a-jwt", backoff=FAST)
    with pytest.raises(AuthenticationError) as refused:
        await client.start()
    assert refused.value.status == 401
    await client.close()


async def test_a_handler_may_await_requests(server: RunningServer) -> None:
    """on_event handlers run beside the reader: one that awaits a send (a bot) gets its
    answer. search, sync and mark_delivered answer typed too."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, "group", "handler", members=[bob]))["id"]
    replies: list[str] = []

    async with Client(server.ws_url, bob.token, backoff=FAST) as b:
        async def handler(event: Event) -> None:
            if isinstance(event, NewMessage) and event.message.sender_id == alice.id:
                replied = await b.send(room, f"re: {event.message.content}")
                replies.append(replied.content)

        async with Client(server.ws_url, alice.token, backoff=FAST, on_event=handler) as a:
            await a.join(room)
            await b.join(room)
            sent = await b.send(room, "ping")
            events = b.events()
            first = await a.send(room, "hello")
            await until(lambda: replies == ["re: hello"], "the handler's send was answered")
            assert isinstance(await next_event(events), Connected)
            await b.mark_delivered(room, first.id)
            changes = await b.sync(room, since_version=0)
            assert [m.id for m in changes.messages][:2] == [sent.id, first.id]
            found = await b.search("hello", conversation_id=room)
            assert sorted(m.content for m in found.messages) == ["hello", "re: hello"]


async def test_join_since_a_version_delivers_what_came_after(server: RunningServer) -> None:
    """join(since_version=0) syncs first: the messages sent before the join arrive as
    NewMessage, in order, then live ones follow, each once."""
    alice = server.user("alice")
    room = (await server.create_conversation(alice, "group", "since"))["id"]
    async with Client(server.ws_url, alice.token, backoff=FAST) as writer:
        before = [await writer.send(room, f"early {i}") for i in range(3)]
        async with Client(server.ws_url, alice.token, backoff=FAST) as reader:
            events = reader.events()
            await reader.join(room, since_version=0)
            after = await writer.send(room, "late")
            heard = [(await next_of(events, NewMessage)).message.id for _ in range(4)]
    assert heard == [m.id for m in [*before, after]]
