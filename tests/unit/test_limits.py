"""The bounds of domain/limits.py are the ones the wire types enforce and PROTOCOL.md
states: one home for each number, checked against its readers."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from hubbub.domain import limits
from hubbub.protocol import client as c
from hubbub.protocol.codec import DecodeError, decode_client_message

PROTOCOL = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
ROOM = "00000000-0000-7000-8000-000000000001"


@pytest.mark.parametrize("text", [
    f"`content`: at most {limits.MAX_CONTENT_CHARS} characters",
    f"`attachments`: at most {limits.MAX_ATTACHMENTS}; `url` http(s), at most "
    f"{limits.MAX_URL_CHARS} chars",
    f"`client_message_id` (at most {limits.MAX_ID_CHARS} chars)",
    f"`request_id` (string, at most {limits.MAX_ID_CHARS} chars)",
    f"(1–{limits.MAX_NAME_CHARS} characters otherwise)",
    f"`limit?` (1–{limits.HISTORY_LIMIT_MAX}, default {limits.HISTORY_LIMIT_DEFAULT})",
    f"`query` (1–{limits.MAX_QUERY_CHARS} chars)",
    f"`limit?` (1–{limits.SEARCH_LIMIT_MAX}, default {limits.SEARCH_LIMIT_DEFAULT})",
    f"`limit?` (1–{limits.SYNC_LIMIT_MAX}, default {limits.SYNC_LIMIT_DEFAULT})",
    f"`emoji` (1–{limits.MAX_EMOJI_CHARS} chars)",
    f"`limits.max_reaction_emoji_per_message` ({limits.MAX_EMOJI_PER_MESSAGE})",
    f"`limits.max_reactions_per_user_per_message` ({limits.MAX_REACTIONS_PER_USER})",
    f"(added) `mentions?` (at most {limits.MAX_MENTIONS})",
    f"`limits.max_mentions` ({limits.MAX_MENTIONS})",
])
def test_the_protocol_states_each_bound(text: str) -> None:
    """PROTOCOL.md says the number the code enforces (whitespace aside)."""
    assert " ".join(text.split()) in " ".join(PROTOCOL.split())


def test_the_defaults_are_the_wire_types_defaults() -> None:
    """A request without `limit` gets the default of domain/limits.py."""
    assert c.FetchHistory(conversation_id=ROOM).limit == limits.HISTORY_LIMIT_DEFAULT
    assert c.SearchMessages(query="x").limit == limits.SEARCH_LIMIT_DEFAULT
    assert c.SyncMessages(conversation_id=ROOM).limit == limits.SYNC_LIMIT_DEFAULT


@pytest.mark.parametrize(("kind", "field", "largest"), [
    ("FetchHistory", "limit", limits.HISTORY_LIMIT_MAX),
    ("SearchMessages", "limit", limits.SEARCH_LIMIT_MAX),
    ("SyncMessages", "limit", limits.SYNC_LIMIT_MAX),
])
def test_the_codec_refuses_one_past_each_page_bound(kind: str, field: str,
                                                   largest: int) -> None:
    """The largest allowed value decodes; one more is BAD_REQUEST naming the field."""
    base = {"type": kind, "conversation_id": ROOM, "query": "x"}
    decode_client_message(msgspec.json.encode({**base, field: largest}).decode())
    with pytest.raises(DecodeError, match=f"\\$.{field}"):
        decode_client_message(msgspec.json.encode({**base, field: largest + 1}).decode())


def test_the_codec_refuses_content_one_past_the_bound() -> None:
    """Content of MAX_CONTENT_CHARS characters decodes, one more does not."""
    frame = {"type": "SendMessage", "conversation_id": ROOM}
    decode_client_message(msgspec.json.encode(
        {**frame, "content": "x" * limits.MAX_CONTENT_CHARS}).decode())
    with pytest.raises(DecodeError, match="content"):
        decode_client_message(msgspec.json.encode(
            {**frame, "content": "x" * (limits.MAX_CONTENT_CHARS + 1)}).decode())
