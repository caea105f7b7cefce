"""Property-based fuzzing of the client-frame decoder (PROTOCOL.md §2).

Whatever arrives, `decode_client_message` returns a typed client message or raises
`DecodeError`; nothing else escapes, and what it accepts respects the limits of §2.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hubbub.protocol import client as c
from hubbub.protocol.codec import TOO_DEEP, DecodeError, decode_client_message

FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

TYPES = [t.__struct_config__.tag for t in c.AnyClientMessage.__args__]

ids = st.uuids().map(str)
big_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(
    [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1]))
scalars = st.one_of(st.none(), st.booleans(), big_ints,
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=50))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=25,
)
attachments = st.fixed_dictionaries(
    {"url": st.just("https://files.example/a.png"), "name": st.text(min_size=1, max_size=20),
     "mime_type": st.just("image/png"), "size": st.integers(0, 10**6)},
)
VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "SendMessage": st.fixed_dictionaries(
        {"conversation_id": ids, "content": st.text(max_size=200)},
        optional={"client_message_id": st.text(min_size=1, max_size=64),
                  "attachments": st.lists(attachments, max_size=10), "parent_id": ids}),
    "EditMessage": st.fixed_dictionaries({"message_id": ids, "content": st.text(max_size=200)}),
    "DeleteMessage": st.fixed_dictionaries({"message_id": ids}),
    "JoinConversation": st.fixed_dictionaries({"conversation_id": ids}),
    "FetchHistory": st.fixed_dictionaries(
        {"conversation_id": ids},
        optional={"before": st.integers(0, 2**40), "limit": st.integers(1, 100)}),
    "SearchMessages": st.fixed_dictionaries({"query": st.text(min_size=1, max_size=200)},
                                            optional={"conversation_id": ids}),
    "SyncMessages": st.fixed_dictionaries(
        {"conversation_id": ids},
        optional={"since_version": st.integers(0, 2**40), "limit": st.integers(1, 500)}),
    "Typing": st.fixed_dictionaries({"conversation_id": ids, "is_typing": st.booleans()}),
    "AddReaction": st.fixed_dictionaries({"message_id": ids,
                                          "emoji": st.text(min_size=1, max_size=32)}),
    "Ping": st.fixed_dictionaries({}, optional={"timestamp": st.integers(0, 2**40)}),
}


@st.composite
def valid_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A client message that satisfies every type and limit of §2 and §3."""
    kind = draw(st.sampled_from(sorted(VALID)))
    body = draw(VALID[kind])
    body["type"] = kind
    if draw(st.booleans()):
        body["request_id"] = draw(st.text(max_size=64))
    # U+0000 is refused in every string (docs/DECISIONS.md), so a valid message holds none.
    assume("\\u0000" not in json.dumps(body))
    return body


@st.composite
def mutated_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one field dropped, retyped, oversized or an unknown one added."""
    body = draw(valid_messages())
    keys = sorted(body)
    how = draw(st.sampled_from(["drop", "retype", "oversize", "extra", "type"]))
    key = draw(st.sampled_from(keys))
    if how == "drop":
        body.pop(key)
    elif how == "retype":
        body[key] = draw(json_values)
    elif how == "oversize":
        body[key] = draw(st.sampled_from(["x" * 4001, "y" * 70, 2**64, -1, 10**30, [0] * 11]))
    elif how == "extra":
        body[draw(st.text(max_size=10))] = draw(json_values)
    else:
        body["type"] = draw(st.one_of(st.sampled_from(TYPES), st.text(max_size=20), json_values))
    return body


def check_decodes_or_rejects(data: str | bytes) -> c.ClientMessage | None:
    """The property: a typed message or a DecodeError naming the problem, nothing else."""
    try:
        message = decode_client_message(data)
    except DecodeError as exc:
        refused = exc
    else:
        assert isinstance(message, c.ClientMessage)
        return message
    assert refused.message
    assert refused.request_id is None or isinstance(refused.request_id, str)
    return None


def check_within_limits(message: c.ClientMessage) -> None:
    """What the decoder accepts is within the bounds the store can hold (§2, §3)."""
    for name in message.__struct_fields__:
        value = getattr(message, name)
        if isinstance(value, int) and not isinstance(value, bool) and name != "timestamp":
            assert 0 <= value < 2**63, (name, value)
        if isinstance(value, str):
            assert len(value) <= 65536, name
            assert "\x00" not in value or name in ("sdp", "candidate"), name


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_escape(data: bytes) -> None:
    """Arbitrary bytes decode to a message or raise DecodeError."""
    check_decodes_or_rejects(data)


@FUZZ
@given(st.text(max_size=300))
def test_random_text_never_escapes(data: str) -> None:
    """Arbitrary text decodes to a message or raises DecodeError."""
    check_decodes_or_rejects(data)


@FUZZ
@given(json_values)
def test_random_json_never_escapes(value: Any) -> None:
    """Arbitrary JSON values decode to a message or raise DecodeError."""
    check_decodes_or_rejects(json.dumps(value))


@FUZZ
@given(valid_messages())
def test_valid_messages_decode_to_their_type(body: dict[str, Any]) -> None:
    """Every message within the limits decodes, to the class its `type` names."""
    message = check_decodes_or_rejects(json.dumps(body))
    assert message is not None, body
    assert type(message).__name__ == body["type"]
    assert message.request_id == body.get("request_id")


@FUZZ
@given(mutated_messages())
def test_mutated_messages_are_rejected_or_within_limits(body: dict[str, Any]) -> None:
    """A mutated message is either refused or still respects every limit."""
    message = check_decodes_or_rejects(json.dumps(body))
    if message is not None:
        check_within_limits(message)


@FUZZ
@given(mutated_messages())
def test_rejections_echo_a_string_request_id(body: dict[str, Any]) -> None:
    """A refused frame that is an object with a string `request_id` gets it back (§2)."""
    try:
        decode_client_message(json.dumps(body))
    except DecodeError as exc:
        echoed = exc.request_id
    else:
        return
    rid = body.get("request_id")
    assert echoed == (rid if isinstance(rid, str) else None)


@FUZZ
@given(valid_messages(), st.binary(min_size=1, max_size=8), st.integers(0, 400))
def test_corrupted_bytes_never_escape(body: dict[str, Any], junk: bytes, at: int) -> None:
    """A valid frame with bytes spliced in (invalid UTF-8 included) never escapes."""
    raw = json.dumps(body).encode()
    at = min(at, len(raw))
    check_decodes_or_rejects(raw[:at] + junk + raw[at:])


@FUZZ
@given(st.integers(1, 5000), st.sampled_from(["[", "{\"a\":"]))
def test_an_unknown_field_is_skipped_or_refused_however_deep(depth: int, opener: str) -> None:
    """Nesting in a field the server does not know is skipped up to the parser's limit and
    refused past it, whatever the depth; nothing else escapes."""
    closer = "]" if opener == "[" else "}"
    frame = '{"type":"Ping","request_id":"r","x":' + opener * depth + "1" + closer * depth + "}"
    try:
        message: c.ClientMessage | DecodeError = decode_client_message(frame)
    except DecodeError as exc:
        message = exc
    if isinstance(message, DecodeError):
        assert depth > 500, depth
        assert (message.message, message.request_id) == (TOO_DEEP, "r")
    else:
        assert message == c.Ping(request_id="r")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Brackets in string values are text, not depth."""
    message = decode_client_message(json.dumps(
        {"type": "SendMessage", "conversation_id": str(uuid.uuid4()), "content": "[" * 3000}))
    assert isinstance(message, c.SendMessage)


def test_decoded_messages_round_trip() -> None:
    """A decoded message encodes back to an equal message (the codec loses nothing)."""
    body = {"type": "FetchHistory", "conversation_id": str(uuid.uuid4()), "before": 7,
            "limit": 3, "request_id": "r1"}
    message = decode_client_message(json.dumps(body))
    assert decode_client_message(msgspec.json.encode(message)) == message


@FUZZ
@given(st.sampled_from(["FetchHistory:before", "SyncMessages:since_version"]),
       st.one_of(st.integers(2**63, 2**80), st.integers(-(2**80), -1)))
def test_cursors_beyond_a_bigint_are_refused(where: str, value: int) -> None:
    """A `before` or `since_version` that no BIGINT column holds is a BAD_REQUEST, not a
    database error."""
    kind, field = where.split(":")
    frame = json.dumps({"type": kind, "conversation_id": str(uuid.uuid4()), field: value})
    with pytest.raises(DecodeError, match=re.escape(f"$.{field}")):
        decode_client_message(frame)


@FUZZ
@given(st.text(max_size=64), st.integers(2, 3000), st.booleans())
def test_too_deep_frames_still_echo_their_request_id(rid: str, depth: int, first: bool) -> None:
    """A frame refused for a nest carries its top-level string `request_id` back (§2): at
    any depth when it comes before the nest, within the parser's limit when after (past
    it, the frame is not parsed that far)."""
    deep = '"timestamp":' + "[" * depth + "]" * depth
    inner = '"y":{"request_id":"not this one"}'
    rid_field = '"request_id":' + json.dumps(rid)
    parts = [rid_field, inner, deep] if first else [inner, deep, rid_field]
    with pytest.raises(DecodeError) as refused:
        decode_client_message('{"type":"Ping",' + ",".join(parts) + "}")
    if first or depth < 500:
        assert refused.value.request_id == rid
