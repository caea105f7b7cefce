"""The change events a repair rebuilds from sync pages (services/changes.py `Replay`)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from hubbub.domain.models import Message, ReactionSummary, SyncPage
from hubbub.services.changes import Replay


def message(seq: int, version: int | None = None, **fields: Any) -> Message:
    base = Message(id=f"m{seq}", conversation_id="c", seq=seq, version=version or seq,
                   sender_id="s", sender_name="s", content=f"content {seq}", parent_id=None,
                   attachments=(), client_message_id=None, created_at=seq)
    return msgspec.structs.replace(base, **fields)


def page(*messages: Message, has_more: bool = False) -> SyncPage:
    return SyncPage(list(messages), has_more, messages[-1].version if messages else 0)


def events(replay: Replay, sync_page: SyncPage) -> list[dict[str, Any]]:
    return [json.loads(e.payload) for e in replay.take(sync_page)]


def test_each_stored_state_becomes_the_event_a_subscriber_needs() -> None:
    """After version 10: a new message is `NewMessage`, an edited or reacted one
    `MessageEdited` with the whole message, a deleted one `MessageDeleted`, and one created
    and deleted meanwhile a tombstone `NewMessage`."""
    replay = Replay(start=10)
    found = events(replay, page(
        message(3, 11, content="edited", edited_at=11),
        message(4, 12, reactions=(ReactionSummary("👍", ("u",)),)),
        message(5, 13, deleted_at=13, deleted_by="mod"),
        message(14),
        message(15, 16, deleted_at=16, deleted_by="s"),
    ))
    assert [(e["type"], e["message"]["id"] if "message" in e else e["message_id"])
            for e in found] == [
        ("MessageEdited", "m3"), ("MessageEdited", "m4"), ("MessageDeleted", "m5"),
        ("NewMessage", "m14"), ("NewMessage", "m15")]
    assert found[0]["message"]["content"] == "edited"
    assert found[1]["message"]["reactions"][0]["user_ids"] == ["u"]
    assert found[2]["version"] == 13
    assert found[2]["deleted_by"] == "mod"
    assert found[4]["message"]["content"] == ""
    assert found[4]["message"]["deleted_at"] is not None


def test_a_message_announced_on_one_page_is_an_edit_on_the_next() -> None:
    """Changed while the replay ran, a new message is listed again: `MessageEdited` then,
    never a second `NewMessage`."""
    replay = Replay(start=0)
    assert [e["type"] for e in events(replay, page(message(1), message(2), has_more=True))
            ] == ["NewMessage", "NewMessage"]
    assert replay.after == 2
    again = events(replay, page(message(1, 3, content="later", edited_at=3)))
    assert [e["type"] for e in again] == ["MessageEdited"]
    assert again[0]["message"]["content"] == "later"


def test_a_new_message_first_listed_on_a_later_page_is_still_new() -> None:
    """A message created in the range whose creating version was superseded before the
    page covering it was read appears once, as `NewMessage`, at its latest version."""
    replay = Replay(start=0)
    events(replay, page(message(2), has_more=True))
    assert [e["type"] for e in events(replay, page(message(1, 3, edited_at=3)))] == [
        "NewMessage"]


def test_versions_already_covered_are_skipped_and_the_cursor_moves() -> None:
    """Nothing at or below the cursor is announced twice; an empty page keeps it."""
    replay = Replay(start=5)
    assert events(replay, page(message(4), message(6))) == events(Replay(5), page(message(6)))
    assert replay.after == 6
    assert events(replay, SyncPage([], False, 6)) == []
    assert replay.after == 6
