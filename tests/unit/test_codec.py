"""The codec (PROTOCOL.md §2–§4): every client type round-trips, every kind of bad frame is
refused naming its field, and server messages encode as the protocol spells them."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, get_args

import msgspec
import pytest

from hubbub.protocol import client as c
from hubbub.protocol import server as s
from hubbub.protocol.codec import DecodeError, decode_client_message, encode
from hubbub.protocol.objects import Attachment, MessageObject

CONV = "6f1c2a9e-3b7d-4c55-9a1e-0d2f4b6c8a10"
MSG = "0b9a7c1e-2d3f-4e5a-8b6c-7d8e9f0a1b2c"
USER = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

# One valid frame per client type of §3, as a client would write it.
VALID: dict[str, dict[str, Any]] = {
    "SendMessage": {"conversation_id": CONV, "content": "hi", "parent_id": MSG,
                    "attachments": [{"url": "https://f.example/a.png", "name": "a.png",
                                     "mime_type": "image/png", "size": 1, "width": 2,
                                     "height": 3}],
                    "client_message_id": "c-1"},
    "EditMessage": {"message_id": MSG, "content": "edited"},
    "DeleteMessage": {"message_id": MSG},
    "JoinConversation": {"conversation_id": CONV},
    "LeaveConversation": {"conversation_id": CONV},
    "FetchHistory": {"conversation_id": CONV, "before": 41, "limit": 100},
    "SearchMessages": {"query": "hello", "conversation_id": CONV, "limit": 1},
    "SyncMessages": {"conversation_id": CONV, "since_version": 7, "limit": 500},
    "Typing": {"conversation_id": CONV, "is_typing": True},
    "MarkAsRead": {"conversation_id": CONV, "message_id": MSG},
    "MarkAsDelivered": {"conversation_id": CONV, "message_id": MSG},
    "UpdateMembership": {"conversation_id": CONV, "muted": True, "pinned": False},
    "AddReaction": {"message_id": MSG, "emoji": "👍"},
    "RemoveReaction": {"message_id": MSG, "emoji": "👍"},
    "CallOffer": {"conversation_id": CONV, "call_id": MSG, "sdp": "v=0", "call_type": "video",
                  "target_user_id": USER},
    "CallAnswer": {"call_id": MSG, "sdp": "v=0"},
    "ICECandidate": {"call_id": MSG, "candidate": {"candidate": "candidate:1", "sdpMid": "0"}},
    "CallHangup": {"call_id": MSG, "reason": "bye"},
    "CallReject": {"call_id": MSG, "reason": "busy"},
    "Ping": {"timestamp": 1732560058123},
}

CLIENT_TYPES = [
    "SendMessage", "EditMessage", "DeleteMessage", "JoinConversation", "LeaveConversation",
    "FetchHistory", "SearchMessages", "SyncMessages", "Typing", "MarkAsRead", "MarkAsDelivered",
    "UpdateMembership", "AddReaction", "RemoveReaction", "CallOffer", "CallAnswer",
    "ICECandidate", "CallHangup", "CallReject", "Ping",
]
SERVER_TYPES = [
    "Connected", "NewMessage", "MessageEdited", "MessageDeleted", "HistoryChunk",
    "SearchResults", "SyncChunk", "UserTyping", "MessageRead", "MessageDelivered",
    "ReactionAdded", "ReactionRemoved", "CallOffer", "CallAnswer", "ICECandidate",
    "CallHangup", "CallReject", "UserJoined", "MembershipUpdated", "ThreadUpdated",
    "PresenceChanged", "Pong",
    "ActionConfirmed", "Error",
    # The inbox (PROTOCOL.md §4.1).
    "ConversationAdded", "ConversationRemoved", "ConversationSummary", "ReadStateChanged",
]


def tags(union: Any) -> list[str]:
    return [str(member.__struct_config__.tag) for member in union.__args__]


def struct_of(type_: str) -> type[msgspec.Struct]:
    """The client Struct tagged `type_`."""
    found: type[msgspec.Struct] = next(
        m for m in get_args(c.AnyClientMessage) if m.__struct_config__.tag == type_)
    return found


def wire(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, **fields})


def refused(raw: str | bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode_client_message(raw)
    return caught.value


def test_the_unions_hold_exactly_the_protocol_types() -> None:
    """20 client types (§3) and 24 server types (§4), no more, no fewer."""
    assert sorted(tags(c.AnyClientMessage)) == sorted(CLIENT_TYPES)
    assert sorted(tags(s.AnyServerMessage)) == sorted(SERVER_TYPES)
    assert sorted(VALID) == sorted(CLIENT_TYPES)


@pytest.mark.parametrize("type_", CLIENT_TYPES)
def test_every_client_type_decodes_from_its_wire_form(type_: str) -> None:
    """A frame of each type decodes into its Struct with every field as sent."""
    fields = VALID[type_]
    message = decode_client_message(wire(type_, request_id="r-1", **fields))
    assert type(message).__name__ == type_
    assert message.request_id == "r-1"
    as_dict = msgspec.to_builtins(message)
    for name, value in fields.items():
        assert as_dict[name] == value, name


@pytest.mark.parametrize("type_", CLIENT_TYPES)
def test_every_client_type_round_trips(type_: str) -> None:
    """Decoding, encoding and decoding again gives an equal message (str and bytes input)."""
    message = decode_client_message(wire(type_, **VALID[type_]))
    encoded = msgspec.json.encode(message)
    assert decode_client_message(encoded) == message
    assert decode_client_message(encoded.decode()) == message
    assert json.loads(encoded)["type"] == type_


@pytest.mark.parametrize("type_", CLIENT_TYPES)
def test_every_required_field_is_required(type_: str) -> None:
    """Leaving out any required field is refused, naming it and echoing the request_id."""
    struct = struct_of(type_)
    required = [f.name for f in msgspec.structs.fields(struct) if f.required]
    for name in required:
        fields = {k: v for k, v in VALID[type_].items() if k != name}
        error = refused(wire(type_, request_id="r-miss", **fields))
        assert error.message.endswith(f"- at `$.{name}`"), error.message
        assert error.request_id == "r-miss"


@pytest.mark.parametrize("type_", CLIENT_TYPES)
def test_ids_must_be_lowercase_uuids(type_: str) -> None:
    """Every conversation, message and call id field refuses a non-UUID and an upper-case
    UUID."""
    id_fields = [k for k, v in VALID[type_].items() if v in (CONV, MSG)]
    for name in id_fields:
        for bad in ("general", CONV.upper(), CONV.replace("-", ""), 7):
            error = refused(wire(type_, **{**VALID[type_], name: bad}))
            assert error.message.endswith(f"- at `$.{name}`"), (name, bad, error.message)


BACKEND_USER_IDS = ["42", "auth0|5f7c8ec7c33c6c004bbafe82", "user_2abcDEF", "x" * 128,
                    "Kq9sTlq0bXhYdZ3uVn1aR7cP2eW8", USER.upper()]
BAD_USER_IDS = ["", "x" * 129, "a b", "tab\there", "new\nline", "trailing\n", "é", 7, None]


@pytest.mark.parametrize("bad", BAD_USER_IDS)
def test_user_ids_are_the_backend_s_but_bounded(bad: Any) -> None:
    """A user id field takes any 1–128 printable ASCII characters without spaces, and
    refuses the rest naming the field."""
    fields = {**VALID["CallOffer"], "target_user_id": bad}
    if bad is None:  # optional: null is no target
        assert decode_client_message(wire("CallOffer", **fields))
        return
    error = refused(wire("CallOffer", **fields))
    assert error.message.endswith("- at `$.target_user_id`"), error.message


@pytest.mark.parametrize("good", BACKEND_USER_IDS)
def test_backend_user_ids_decode(good: str) -> None:
    message = decode_client_message(wire("CallOffer", **{**VALID["CallOffer"],
                                                         "target_user_id": good}))
    assert msgspec.to_builtins(message)["target_user_id"] == good


DEFAULTS: dict[str, dict[str, Any]] = {
    "SendMessage": {"parent_id": None, "attachments": [], "client_message_id": None},
    "FetchHistory": {"before": None, "limit": 50},
    "SearchMessages": {"conversation_id": None, "limit": 50},
    "SyncMessages": {"since_version": None, "since": None, "limit": 100},
    "CallOffer": {"target_user_id": None},
    "CallHangup": {"reason": None},
    "CallReject": {"reason": None},
    "Ping": {"timestamp": None},
}


@pytest.mark.parametrize("type_", sorted(DEFAULTS))
def test_optional_fields_take_the_protocol_defaults(type_: str) -> None:
    """Optional fields left out get the defaults of §3 (limit 50 for history, 100 for sync)."""
    struct = struct_of(type_)
    required = {f.name for f in msgspec.structs.fields(struct) if f.required}
    fields = {k: v for k, v in VALID[type_].items() if k in required}
    message: dict[str, Any] = msgspec.to_builtins(decode_client_message(wire(type_, **fields)))
    for name, default in DEFAULTS[type_].items():
        assert message.get(name) == default, name


# (type, field overrides, JSONPath the error must name)
OUT_OF_RANGE: list[tuple[str, dict[str, Any], str]] = [
    ("SendMessage", {"content": "x" * 4001}, "$.content"),
    ("SendMessage", {"content": 5}, "$.content"),
    ("SendMessage", {"client_message_id": ""}, "$.client_message_id"),
    ("SendMessage", {"client_message_id": "c" * 65}, "$.client_message_id"),
    ("SendMessage", {"attachments": [VALID["SendMessage"]["attachments"][0]] * 11},
     "$.attachments"),
    ("SendMessage", {"attachments": [{"url": "", "name": "a", "mime_type": "a/b", "size": 1}]},
     "$.attachments[0].url"),
    ("SendMessage", {"attachments": [{"url": "https://a/" + "b" * 2048, "name": "a",
                                      "mime_type": "a/b", "size": 1}]},
     "$.attachments[0].url"),
    ("SendMessage", {"attachments": [{"url": "https://a/b", "name": "n" * 256,
                                      "mime_type": "a/b", "size": 1}]},
     "$.attachments[0].name"),
    ("SendMessage", {"attachments": [{"url": "https://a/b", "name": "b",
                                      "mime_type": "text", "size": 1}]},
     "$.attachments[0].mime_type"),
    ("SendMessage", {"attachments": [{"url": "https://a/b", "name": "b",
                                      "mime_type": "a/b", "size": -1}]},
     "$.attachments[0].size"),
    ("SendMessage", {"attachments": [{"url": "https://a/b", "name": "b",
                                      "mime_type": "a/b", "size": 1, "height": -1}]},
     "$.attachments[0].height"),
    ("EditMessage", {"content": "x" * 4001}, "$.content"),
    ("FetchHistory", {"limit": 0}, "$.limit"),
    ("FetchHistory", {"limit": 101}, "$.limit"),
    ("FetchHistory", {"limit": True}, "$.limit"),
    ("FetchHistory", {"before": -1}, "$.before"),
    ("FetchHistory", {"before": 1.5}, "$.before"),
    ("SearchMessages", {"query": ""}, "$.query"),
    ("SearchMessages", {"query": "q" * 201}, "$.query"),
    ("SearchMessages", {"limit": 101}, "$.limit"),
    ("SyncMessages", {"limit": 501}, "$.limit"),
    ("SyncMessages", {"limit": 0}, "$.limit"),
    ("SyncMessages", {"since_version": -1}, "$.since_version"),
    ("Typing", {"is_typing": "yes"}, "$.is_typing"),
    ("AddReaction", {"emoji": ""}, "$.emoji"),
    ("AddReaction", {"emoji": "x" * 33}, "$.emoji"),
    ("RemoveReaction", {"emoji": None}, "$.emoji"),
    ("CallOffer", {"call_type": "fax"}, "$.call_type"),
    ("CallOffer", {"sdp": None}, "$.sdp"),
    ("ICECandidate", {"candidate": "c" * 4097}, "$.candidate"),
    ("ICECandidate", {"candidate": 5}, "$.candidate"),
    ("CallHangup", {"reason": "r" * 201}, "$.reason"),
    ("Ping", {"timestamp": {"t": 1}}, "$.timestamp"),
    ("Ping", {"request_id": "r" * 65}, "$.request_id"),
    ("Ping", {"request_id": 5}, "$.request_id"),
]


@pytest.mark.parametrize(("type_", "overrides", "path"), OUT_OF_RANGE,
                         ids=[f"{t}-{p}-{i}" for i, (t, _, p) in enumerate(OUT_OF_RANGE)])
def test_values_outside_the_limits_are_refused(type_: str, overrides: dict[str, Any],
                                               path: str) -> None:
    """Each wrong type or out-of-range value is refused with the path of its field."""
    error = refused(wire(type_, **{**VALID[type_], **overrides}))
    assert error.message.endswith(f"- at `{path}`"), error.message


def test_limits_at_the_edge_are_accepted() -> None:
    """The largest allowed values pass: 4000 characters, 10 attachments, limit 100/500."""
    attachment = VALID["SendMessage"]["attachments"][0]
    send = decode_client_message(wire("SendMessage", conversation_id=CONV, content="é" * 4000,
                                      attachments=[attachment] * 10, client_message_id="c" * 64))
    assert isinstance(send, c.SendMessage)
    assert len(send.attachments) == 10
    history = decode_client_message(wire("FetchHistory", conversation_id=CONV, limit=1,
                                         before=0))
    assert isinstance(history, c.FetchHistory)
    assert (history.limit, history.before) == (1, 0)
    sync = decode_client_message(wire("SyncMessages", conversation_id=CONV, limit=500))
    assert isinstance(sync, c.SyncMessages)
    assert sync.limit == 500
    ping = decode_client_message(wire("Ping", request_id="r" * 64))
    assert ping.request_id == "r" * 64


@pytest.mark.parametrize(("raw", "path"), [
    ("[]", "$"), ("1", "$"), ('"Ping"', "$"), ("null", "$"), ("true", "$"),
    ("{}", "$.type"), ('{"type": "Shout"}', "$.type"), ('{"type": 1}', "$.type"),
    ('{"type": null}', "$.type"), ('{"type": "ping"}', "$.type"),
])
def test_frames_that_are_not_typed_objects_are_refused(raw: str, path: str) -> None:
    """A non-object, a missing or unknown `type` each name where the problem is."""
    assert refused(raw).message.endswith(f"- at `{path}`")


@pytest.mark.parametrize("raw", ['{"type": "Ping"', '{"type": "Ping"} x', "", "{'a': 1}",
                                 '{"type": "Ping",}', b"\xff\xfe"])
def test_invalid_json_is_refused(raw: str | bytes) -> None:
    """Text that is not one JSON document is refused as invalid JSON."""
    error = refused(raw)
    assert error.message.startswith("invalid JSON")
    assert error.request_id is None


def test_the_request_id_is_echoed_from_refused_objects() -> None:
    """A frame that fails validation still yields its string `request_id`."""
    assert refused(wire("Shout", request_id="r-9")).request_id == "r-9"
    assert refused(wire("FetchHistory", conversation_id=CONV, limit=0,
                        request_id="r-10")).request_id == "r-10"
    overflow = ('{"type": "FetchHistory", "conversation_id": "' + CONV
                + '", "limit": 1e400, "request_id": "r-11"}')
    assert refused(overflow).request_id == "r-11"
    assert refused(wire("Shout", request_id=11)).request_id is None
    assert refused('[{"request_id": "r-12"}]').request_id is None


def test_a_request_id_that_cannot_be_encoded_is_not_echoed() -> None:
    """A lone surrogate could not be written back into an `Error`, so it is dropped."""
    assert refused('{"type": "Shout", "request_id": "\\ud800"}').request_id is None


def test_unknown_fields_are_ignored() -> None:
    """Extra fields are skipped, so newer clients work with this server (§2)."""
    message = decode_client_message(wire("Ping", request_id="r", shiny={"new": [1, 2]}))
    assert message == c.Ping(request_id="r")


def test_nesting_where_a_field_is_flat_is_refused_naming_the_field() -> None:
    """No field takes nesting beyond its shape: the parser stops at the first bracket too
    many and names the field, echoing the request_id."""
    deep = "[" * 5000 + "]" * 5000
    timestamp = refused('{"type": "Ping", "request_id": "r-deep", "timestamp": ' + deep + "}")
    assert timestamp.message.endswith("- at `$.timestamp`")
    assert timestamp.request_id == "r-deep"
    attachments = refused(wire("SendMessage", conversation_id=CONV, request_id="r-att",
                               attachments=[[[[]]]]))
    assert attachments.message.endswith("- at `$.attachments[0]`")
    assert attachments.request_id == "r-att"


def test_an_ice_candidate_object_is_flat() -> None:
    """A candidate object holds strings, numbers, booleans and nulls, as an
    RTCIceCandidateInit does; a nested value in it is refused naming the candidate."""
    init = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0",
            "sdpMLineIndex": 0, "usernameFragment": None}
    message = decode_client_message(wire("ICECandidate", call_id=MSG, candidate=init))
    assert isinstance(message, c.ICECandidate)
    assert message.candidate == init
    error = refused(wire("ICECandidate", call_id=MSG, request_id="r-ice",
                         candidate={"candidate": "c", "extra": {"deeper": [1]}}))
    assert "`$.candidate" in error.message
    assert error.request_id == "r-ice"


def test_nesting_past_the_parsers_limit_is_refused() -> None:
    """An unknown field is skipped however it nests, up to the parser's own limit (about
    a thousand levels); deeper is refused, echoing a request_id that comes before it."""
    skipped = decode_client_message(
        '{"type": "Ping", "request_id": "r", "x": ' + "[" * 500 + "]" * 500 + "}")
    assert skipped == c.Ping(request_id="r")
    deep = "[" * 5000 + "]" * 5000
    before = refused('{"type": "Ping", "request_id": "r-deep", "x": ' + deep + "}")
    assert before.message == "JSON nested too deeply - at `$`"
    assert before.request_id == "r-deep"
    assert refused('{"type": "Ping", "x": ' + deep + ', "request_id": "r"}').request_id is None


HOSTILE = {
    "brackets": "[" * 65536,
    "a deep unknown field": '{"type": "Ping", "request_id": "r", "x": ' + "[" * 65000,
    "a deep candidate": '{"type": "ICECandidate", "call_id": "' + MSG + '", "candidate": '
                        + '{"a": ' + "[" * 65000,
    "brackets in a string": '{"type": "Ping", "x": "' + "[" * 65000 + '"}',
    "escaped backslashes": '{"type": "Ping", "x": "' + "\\\\u0000" * 9000 + '"}',
    "not JSON": "x" * 65536,
}


@pytest.mark.parametrize("frame", HOSTILE.values(), ids=HOSTILE.keys())
def test_no_python_runs_per_byte_of_a_frame(frame: str) -> None:
    """A 64 KiB frame built to be expensive costs a few lines of Python, whatever it holds:
    the work per byte is the parser's, in C (docs/DECISIONS.md "JSON nesting")."""
    lines = 0

    def count(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        lines += event == "line"
        return count

    sys.settrace(count)
    try:
        with contextlib.suppress(DecodeError):
            decode_client_message(frame)
    finally:
        sys.settrace(None)
    assert lines < 100, lines


# -- server messages ------------------------------------------------------------------------


def message_object(**overrides: Any) -> MessageObject:
    fields: dict[str, Any] = {
        "id": MSG, "conversation_id": CONV, "sender_id": USER, "sender_name": "alice",
        "seq": 41, "version": 57, "content": "hello", "parent_id": None,
        "attachments": [Attachment(url="https://f.example/a.png", name="a.png",
                                   mime_type="image/png", size=5123)],
        "reactions": [], "client_message_id": "c-123",
        "created_at": "2026-11-25T18:40:58.123456Z", "edited_at": None, "deleted_at": None,
    }
    fields.update(overrides)
    return MessageObject(**fields)


def test_server_messages_carry_their_type_tag() -> None:
    """Each server message encodes with `type` first-class, as a client dispatches on it."""
    encoded = json.loads(encode(s.NewMessage(message=message_object())))
    assert encoded["type"] == "NewMessage"
    assert encoded["message"]["seq"] == 41
    assert encoded["message"]["attachments"] == [
        {"url": "https://f.example/a.png", "name": "a.png", "mime_type": "image/png",
         "size": 5123}]


def test_action_confirmed_leaves_out_what_does_not_apply() -> None:
    """Unset optional fields are absent, never null; `request_id` is always present."""
    assert json.loads(encode(s.ActionConfirmed(action="LeaveConversation"))) == {
        "type": "ActionConfirmed", "action": "LeaveConversation", "request_id": None}
    deleted = json.loads(encode(s.ActionConfirmed(action="DeleteMessage", request_id="r",
                                                  message_id=MSG)))
    assert deleted == {"type": "ActionConfirmed", "action": "DeleteMessage", "request_id": "r",
                       "message_id": MSG}


def test_errors_carry_retry_after_only_when_rate_limited() -> None:
    """`retry_after_ms` appears on RATE_LIMITED errors and nowhere else."""
    plain = json.loads(encode(s.Error(code="BAD_REQUEST", message="m", request_id="r")))
    assert plain == {"type": "Error", "code": "BAD_REQUEST", "message": "m", "request_id": "r"}
    limited = json.loads(encode(s.Error(code="RATE_LIMITED", message="m", retry_after_ms=200)))
    assert limited["retry_after_ms"] == 200


def test_direct_responses_echo_request_ids_and_broadcasts_have_none() -> None:
    """HistoryChunk and Pong carry `request_id`; a broadcast such as UserJoined does not."""
    chunk = json.loads(encode(s.HistoryChunk(conversation_id=CONV, messages=[], has_more=False,
                                             next_before=None, request_id="h")))
    assert chunk["request_id"] == "h"
    pong = json.loads(encode(s.Pong(timestamp=5, server_time="t", request_id="p")))
    assert (pong["timestamp"], pong["request_id"]) == (5, "p")
    joined = json.loads(encode(s.UserJoined(conversation_id=CONV, user_id=USER,
                                            user_name="bob")))
    assert "request_id" not in joined


@pytest.mark.parametrize(("type_", "overrides", "path"), [
    ("SendMessage", {"content": "a\u0000b"}, "$.content"),
    ("SendMessage", {"client_message_id": "\u0000"}, "$.client_message_id"),
    ("SendMessage", {"attachments": [{"url": "https://a/b", "name": "x\u0000",
                                      "mime_type": "a/b", "size": 1}]},
     "$.attachments[0].name"),
    ("EditMessage", {"content": "\u0000"}, "$.content"),
    ("AddReaction", {"emoji": "\u0000"}, "$.emoji"),
    ("SearchMessages", {"query": "a\u0000"}, "$.query"),
    ("ICECandidate", {"candidate": {"candidate": "\u0000"}}, "$.candidate.candidate"),
])
def test_a_nul_in_any_string_is_refused(type_: str, overrides: dict[str, Any],
                                        path: str) -> None:
    """U+0000 cannot be stored by PostgreSQL, so every backend refuses it, naming the field
    and echoing the request_id."""
    error = refused(wire(type_, request_id="r-nul", **{**VALID[type_], **overrides}))
    assert error.message == f"strings may not contain U+0000 - at `{path}`"
    assert error.request_id == "r-nul"


def test_an_escaped_backslash_before_u0000_is_plain_text() -> None:
    """`\\\\u0000` in JSON is a backslash and five characters, not U+0000."""
    prefix = '{"type": "EditMessage", "message_id": "' + MSG + '", "content": '
    message = decode_client_message(prefix + '"a\\\\u0000"}')
    assert isinstance(message, c.EditMessage)
    assert message.content == "a\\u0000"
    refused(prefix + '"a\\\\\\u0000"}')


def test_a_nul_in_an_ignored_field_is_ignored() -> None:
    """Unknown fields are never stored, so what they hold does not matter."""
    assert decode_client_message('{"type": "Ping", "extra": "\\u0000"}') == c.Ping()
