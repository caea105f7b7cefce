"""What each client message of PROTOCOL.md §3 does: one row per type, one use case each.

The session decodes, rate-limits, awaits the row of the message's type (`ACTIONS`) and
sends what it returns; the rules are the services' (services/), the same ones the HTTP
handlers call. A row only translates: the message's fields in, the use case's result out
as the direct response of §3's table. A new message type without a row fails
tests/unit/test_actions.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from msgspec import UNSET

from hubbub.delivery.connection import Connection
from hubbub.delivery.hub import Hub
from hubbub.domain.clock import format_time
from hubbub.protocol import client as c
from hubbub.protocol.server import (
    ActionConfirmed,
    HistoryChunk,
    Pong,
    ServerMessage,
    SyncChunk,
)
from hubbub.services.context import Actor
from hubbub.services.search import search_results
from hubbub.services.usecases import UseCases
from hubbub.services.views import message_object, summary_object


class Actions:
    """The use cases behind the rows, and what the rows need besides: the hub (a join
    subscribes the connection there) and the histogram of send commit times."""

    __slots__ = ("cases", "hub", "observe_send")

    def __init__(self, cases: UseCases, hub: Hub,
                 observe_send: Callable[[float], None]) -> None:
        self.cases = cases
        self.hub = hub
        self.observe_send = observe_send


class HubSubscription:
    """A connection's subscriptions as `services.joining.Subscription`: kept by the hub."""

    __slots__ = ("_connection", "_hub")

    def __init__(self, hub: Hub, connection: Connection) -> None:
        self._hub = hub
        self._connection = connection

    def is_subscribed(self, conversation_id: str) -> bool:
        return conversation_id in self._connection.conversations

    async def subscribe(self, conversation_id: str) -> None:
        self._hub.join(self._connection, conversation_id)
        # Confirmed means subscribed on the bus: events after it reach us.
        await self._hub.conversation_ready(conversation_id)

    def baseline(self, conversation_id: str, version: int) -> None:
        self._hub.joined_at(conversation_id, version)

    def unsubscribe(self, conversation_id: str) -> None:
        self._hub.leave(self._connection, conversation_id)


def _confirmed(message: c.ClientMessage) -> ActionConfirmed:
    return ActionConfirmed(action=type(message).__name__, request_id=message.request_id)


async def send_message(a: Actions, actor: Actor, connection: Connection,
                       m: c.SendMessage) -> ServerMessage:
    started = time.perf_counter()
    sent = await a.cases.messages.send(actor, m.conversation_id, m.content, m.parent_id,
                                       m.attachments, m.client_message_id, m.mentions)
    a.observe_send(time.perf_counter() - started)
    return ActionConfirmed(action="SendMessage", request_id=m.request_id, message=sent.view)


async def edit_message(a: Actions, actor: Actor, connection: Connection,
                       m: c.EditMessage) -> ServerMessage:
    edited = await a.cases.messages.edit(actor, m.message_id, m.content)
    return ActionConfirmed(action="EditMessage", request_id=m.request_id,
                           message=message_object(edited))


async def delete_message(a: Actions, actor: Actor, connection: Connection,
                         m: c.DeleteMessage) -> ServerMessage:
    deleted = await a.cases.messages.delete(actor, m.message_id)
    return ActionConfirmed(action="DeleteMessage", request_id=m.request_id,
                           message_id=deleted.id)


async def join_conversation(a: Actions, actor: Actor, connection: Connection,
                            m: c.JoinConversation) -> ServerMessage:
    joined = await a.cases.joining.join(actor, m.conversation_id,
                                        HubSubscription(a.hub, connection))
    return ActionConfirmed(action="JoinConversation", request_id=m.request_id,
                           role=joined.role, conversation=joined.conversation)


async def leave_conversation(a: Actions, actor: Actor, connection: Connection,
                             m: c.LeaveConversation) -> ServerMessage:
    await a.cases.joining.leave(m.conversation_id, HubSubscription(a.hub, connection))
    return _confirmed(m)


async def fetch_history(a: Actions, actor: Actor, connection: Connection,
                        m: c.FetchHistory) -> ServerMessage:
    page = await a.cases.messages.history(actor, m.conversation_id, m.before, m.limit,
                                          m.parent_id)
    return HistoryChunk(conversation_id=m.conversation_id,
                        messages=[message_object(x) for x in page.messages],
                        has_more=page.has_more,
                        next_before=page.messages[0].seq if page.messages else None,
                        request_id=m.request_id,
                        parent_id=UNSET if m.parent_id is None else m.parent_id)


async def search_messages(a: Actions, actor: Actor, connection: Connection,
                          m: c.SearchMessages) -> ServerMessage:
    found = await a.cases.search.search(actor, m.query, m.conversation_id, m.limit,
                                        mode=m.mode, cursor=m.cursor)
    return search_results(m, found, m.request_id)


async def sync_messages(a: Actions, actor: Actor, connection: Connection,
                        m: c.SyncMessages) -> ServerMessage:
    changes = await a.cases.sync.sync(actor, m.conversation_id, m.since_version, m.since,
                                      m.limit)
    return SyncChunk(conversation_id=m.conversation_id,
                     messages=[message_object(x) for x in changes.messages],
                     has_more=changes.has_more, last_version=changes.last_version,
                     request_id=m.request_id)


async def typing(a: Actions, actor: Actor, connection: Connection,
                 m: c.Typing) -> ServerMessage:
    await a.cases.typing.update(actor, connection.id, m.conversation_id, m.is_typing)
    return _confirmed(m)


async def mark_as_read(a: Actions, actor: Actor, connection: Connection,
                       m: c.MarkAsRead) -> ServerMessage:
    await a.cases.receipts.mark_read(actor, m.conversation_id, m.message_id)
    return _confirmed(m)


async def mark_as_delivered(a: Actions, actor: Actor, connection: Connection,
                            m: c.MarkAsDelivered) -> ServerMessage:
    await a.cases.receipts.mark_delivered(actor, m.conversation_id, m.message_id)
    return _confirmed(m)


async def update_membership(a: Actions, actor: Actor, connection: Connection,
                            m: c.UpdateMembership) -> ServerMessage:
    summary = await a.cases.member_settings.update(actor, m.conversation_id, m.muted,
                                                   m.pinned, connection_id=connection.id)
    return ActionConfirmed(action="UpdateMembership", request_id=m.request_id,
                           conversation=summary_object(summary))


async def add_reaction(a: Actions, actor: Actor, connection: Connection,
                       m: c.AddReaction) -> ServerMessage:
    await a.cases.reactions.add(actor, m.message_id, m.emoji)
    return _confirmed(m)


async def remove_reaction(a: Actions, actor: Actor, connection: Connection,
                          m: c.RemoveReaction) -> ServerMessage:
    await a.cases.reactions.remove(actor, m.message_id, m.emoji)
    return _confirmed(m)


async def call_offer(a: Actions, actor: Actor, connection: Connection,
                     m: c.CallOffer) -> ServerMessage:
    await a.cases.calls.offer(actor, connection.id, m.conversation_id, m.call_id, m.sdp,
                              m.call_type, m.target_user_id)
    return _confirmed(m)


async def call_answer(a: Actions, actor: Actor, connection: Connection,
                      m: c.CallAnswer) -> ServerMessage:
    await a.cases.calls.answer(actor, connection.id, m.call_id, m.sdp)
    return _confirmed(m)


async def ice_candidate(a: Actions, actor: Actor, connection: Connection,
                        m: c.ICECandidate) -> ServerMessage:
    await a.cases.calls.candidate(actor, connection.id, m.call_id, m.candidate)
    return _confirmed(m)


async def call_hangup(a: Actions, actor: Actor, connection: Connection,
                      m: c.CallHangup) -> ServerMessage:
    await a.cases.calls.hangup(actor, connection.id, m.call_id, m.reason)
    return _confirmed(m)


async def call_reject(a: Actions, actor: Actor, connection: Connection,
                      m: c.CallReject) -> ServerMessage:
    await a.cases.calls.reject(actor, connection.id, m.call_id, m.reason)
    return _confirmed(m)


async def ping(a: Actions, actor: Actor, connection: Connection, m: c.Ping) -> ServerMessage:
    return Pong(timestamp=m.timestamp, server_time=format_time(time.time_ns() // 1000),
                request_id=m.request_id)


Row = Callable[[Actions, Actor, Connection, Any], Awaitable[ServerMessage]]

# PROTOCOL.md §3, in its order.
ACTIONS: Mapping[type[c.ClientMessage], Row] = {
    c.SendMessage: send_message,
    c.EditMessage: edit_message,
    c.DeleteMessage: delete_message,
    c.JoinConversation: join_conversation,
    c.LeaveConversation: leave_conversation,
    c.FetchHistory: fetch_history,
    c.SearchMessages: search_messages,
    c.SyncMessages: sync_messages,
    c.Typing: typing,
    c.MarkAsRead: mark_as_read,
    c.MarkAsDelivered: mark_as_delivered,
    c.UpdateMembership: update_membership,
    c.AddReaction: add_reaction,
    c.RemoveReaction: remove_reaction,
    c.CallOffer: call_offer,
    c.CallAnswer: call_answer,
    c.ICECandidate: ice_candidate,
    c.CallHangup: call_hangup,
    c.CallReject: call_reject,
    c.Ping: ping,
}
