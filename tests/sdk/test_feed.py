"""The feed's rules (pure): duplicates dropped, a gap held until a sync, synced messages
rebuilt as the server rebuilds them, and the backoff's full jitter."""

from __future__ import annotations

import random

from hubbub.client import Backoff
from hubbub.client.feed import Feed
from hubbub.protocol.objects import MessageObject
from hubbub.protocol.server import (
    MessageDeleted,
    MessageEdited,
    NewMessage,
    ReactionAdded,
    SyncChunk,
)

ROOM = "c0000000-0000-4000-8000-000000000000"


def message(seq: int, version: int, deleted: bool = False) -> MessageObject:
    return MessageObject(id=f"m{seq}", conversation_id=ROOM, sender_id="u", sender_name="u",
                         seq=seq, version=version, content="" if deleted else "hi",
                         parent_id=None, attachments=[], reactions=[], client_message_id=None,
                         created_at="t", edited_at=None,
                         deleted_at="t" if deleted else None)


def started(at: int) -> Feed:
    feed = Feed()
    feed.track(ROOM)
    feed.set_start(ROOM, at)
    feed.begin_sync(ROOM)
    assert feed.end_sync(ROOM) == ([], False)
    return feed


def test_in_order_events_pass_and_repeats_are_dropped() -> None:
    feed = started(3)
    first = NewMessage(message=message(4, 4))
    assert feed.live(first) == ([first], False)
    assert feed.live(first) == ([], False)
    assert feed.live(NewMessage(message=message(2, 2))) == ([], False)
    assert feed.last_version(ROOM) == 4


def test_a_gap_holds_until_the_sync_fills_it() -> None:
    """v6 after v4: held, a sync asked for; the sync brings v5 and v6 (as stored); the held
    v6 is then a duplicate and v7 follows."""
    feed = started(4)
    later = ReactionAdded(conversation_id=ROOM, message_id="m5", version=6, user_id="u",
                          emoji="👍")
    assert feed.live(later) == ([], True)
    assert feed.begin_sync(ROOM) == 4
    after = NewMessage(message=message(7, 7))
    assert feed.live(after) == ([], False)  # held while syncing
    synced = feed.synced(SyncChunk(conversation_id=ROOM, messages=[message(5, 6)],
                                   has_more=False, last_version=6))
    assert synced == [NewMessage(message=message(5, 6))]
    assert feed.end_sync(ROOM) == ([after], False)


def test_synced_messages_are_rebuilt_as_the_server_does() -> None:
    """Created after the sync's start: NewMessage; known and deleted: MessageDeleted;
    known and changed: MessageEdited with the whole message."""
    feed = started(10)
    feed.begin_sync(ROOM)
    events = feed.synced(SyncChunk(conversation_id=ROOM, has_more=False, last_version=14,
                                   messages=[message(3, 11, deleted=True),
                                             message(4, 12), message(12, 14)]))
    assert [type(e) for e in events] == [MessageDeleted, MessageEdited, NewMessage]


def test_events_before_the_start_is_known_are_held_then_judged() -> None:
    feed = Feed()
    feed.track(ROOM)
    early, late = NewMessage(message=message(5, 5)), NewMessage(message=message(6, 6))
    assert feed.live(early) == ([], False)
    assert feed.live(late) == ([], False)
    feed.set_start(ROOM, 5)  # the join said 5: `early` is in the start state already
    feed.begin_sync(ROOM)
    assert feed.end_sync(ROOM) == ([late], False)


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, random=random.Random(1))
    assert [backoff.cap(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert min(delays) < 1.0 < 3.0 < max(delays)  # spread over the range, not fixed
    assert backoff.cap(10_000) == 8.0


def test_a_shutdown_spreads_reconnects_over_seconds() -> None:
    """After 1001 the first delay is drawn from [0, after_shutdown], not [0, initial]."""
    backoff = Backoff(initial=0.1, after_shutdown=3.0, random=random.Random(2))
    delays = [backoff.delay(0, close_code=1001) for _ in range(200)]
    assert all(0 <= d <= 3.0 for d in delays)
    assert max(delays) > 1.0
    assert all(backoff.delay(0, close_code=4008) <= 0.1 for _ in range(50))
