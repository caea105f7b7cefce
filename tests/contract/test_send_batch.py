"""Sends that share a group commit (adapters/sql/sends.py), on SQLite and PostgreSQL alike:
nothing lost, nothing duplicated, versions gapless and in arrival order."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from hubbub.domain.errors import NotFound
from hubbub.domain.models import MessageDraft, SendOutcome
from hubbub.storage.errors import StoreUnavailable
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

_clock = itertools.count(1_900_000_000_000_000)


def new_id() -> str:
    return str(uuid.uuid4())


async def user(store: SqlStores) -> str:
    user_id = new_id()
    await store.upsert_user(user_id, "sender", next(_clock))
    return user_id


async def channel(store: SqlStores, owner: str) -> str:
    conversation_id = new_id()
    await store.create_conversation(conversation_id, "channel", "room", owner, [],
                                    next(_clock))
    return conversation_id


def draft(conversation_id: str, sender: str, client_id: str | None = None,
          message_id: str | None = None) -> MessageDraft:
    return MessageDraft(
        id=message_id or new_id(), conversation_id=conversation_id, sender_id=sender,
        sender_name="sender", content="hello", parent_id=None, attachments=(),
        client_message_id=client_id, created_at=next(_clock),
    )


async def together(store: SqlStores, drafts: list[MessageDraft]
                   ) -> list[SendOutcome | BaseException]:
    """Send all drafts at once, so that they share one writer batch."""
    batches = store.writer.batches
    outcomes = await asyncio.gather(*(store.send(d) for d in drafts), return_exceptions=True)
    assert store.writer.batches - batches >= 1
    return outcomes


def stored(outcome: SendOutcome | BaseException) -> SendOutcome:
    assert isinstance(outcome, SendOutcome), outcome
    return outcome


async def test_sends_of_one_batch_take_gapless_versions_in_arrival_order(
        store: SqlStores) -> None:
    """Interleaved sends to two conversations get 1..n in each, in the order they came."""
    sender = await user(store)
    a, b = await channel(store, sender), await channel(store, sender)
    drafts = [draft(a if i % 3 else b, sender) for i in range(30)]
    outcomes = [stored(o) for o in await together(store, drafts)]
    for conversation_id in (a, b):
        versions = [o.message.version for o, d in zip(outcomes, drafts, strict=True)
                    if d.conversation_id == conversation_id]
        assert versions == list(range(1, len(versions) + 1))
    assert all(o.created and o.message.seq == o.message.version for o in outcomes)
    page = await store.history(a, None, 100)
    assert [m.id for m in page.messages] == [d.id for d in drafts if d.conversation_id == a]


async def test_a_client_id_repeated_within_a_batch_is_stored_once(store: SqlStores) -> None:
    """The second send of a key in the same batch returns the first one's message."""
    sender = await user(store)
    room = await channel(store, sender)
    first, again, other = (draft(room, sender, "c-1"), draft(room, sender, "c-1"),
                           draft(room, sender, "c-2"))
    outcomes = [stored(o) for o in await together(store, [first, again, other])]
    assert outcomes[0].created
    assert not outcomes[1].created
    assert outcomes[1].message.id == first.id
    assert [o.message.version for o in outcomes] == [1, 1, 2]
    assert len((await store.history(room, None, 100)).messages) == 2


async def test_a_retry_of_a_stored_client_id_takes_no_version(store: SqlStores) -> None:
    """A later retry gets the stored message; the next new message continues the count."""
    sender = await user(store)
    room = await channel(store, sender)
    original = stored((await together(store, [draft(room, sender, "c-1")]))[0])
    retry, fresh = await together(store, [draft(room, sender, "c-1"), draft(room, sender)])
    assert not stored(retry).created
    assert stored(retry).message.id == original.message.id
    assert stored(fresh).message.version == 2


async def test_an_unknown_conversation_fails_only_its_own_send(store: SqlStores) -> None:
    """NotFound for the send to a missing conversation; its neighbours are stored."""
    sender = await user(store)
    room = await channel(store, sender)
    outcomes = await together(store, [draft(room, sender), draft(new_id(), sender),
                                      draft(room, sender)])
    assert isinstance(outcomes[1], NotFound)
    assert [stored(outcomes[i]).message.version for i in (0, 2)] == [1, 2]


async def test_a_failing_send_is_retried_alone_and_fails_alone(store: SqlStores) -> None:
    """A driver error aborts the shared transaction; every send is retried on its own,
    so only the bad one fails and the others keep gapless versions."""
    sender = await user(store)
    room = await channel(store, sender)
    taken = stored((await together(store, [draft(room, sender)]))[0]).message.id
    outcomes = await together(store, [draft(room, sender), draft(room, sender, message_id=taken),
                                      draft(room, sender)])
    assert isinstance(outcomes[1], StoreUnavailable)
    assert [stored(outcomes[i]).message.version for i in (0, 2)] == [2, 3]


async def test_an_edit_among_sends_shares_the_count_without_gaps(store: SqlStores) -> None:
    """A plain job queued among sends splits them; together they take 2, 3, 4, and the
    sends keep their order."""
    sender = await user(store)
    room = await channel(store, sender)
    target = stored((await together(store, [draft(room, sender)]))[0]).message
    first, later = draft(room, sender), draft(room, sender)
    results = await asyncio.gather(store.send(first),
                                   store.edit(target.id, "edited", next(_clock)),
                                   store.send(later))
    sends = [stored(results[0]).message.version, stored(results[2]).message.version]
    assert sends[0] < sends[1]
    assert sorted([*sends, results[1].version]) == [2, 3, 4]
