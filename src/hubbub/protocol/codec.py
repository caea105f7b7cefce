"""Decoding client frames and encoding server messages (PROTOCOL.md §2).

One `Decoder` for the whole client union, built once: msgspec validates types, lengths and
ranges in the same C pass that parses the JSON, and names the offending field.

A frame costs that one pass (plus one more on the error path, for its `request_id`), and
no Python runs per byte of it: invalid input is refused about as cheaply as it arrives. No
field type takes nesting beyond its own shape, so nested input where a type wants something
flat is refused in that pass, naming the field; unknown fields are skipped in C without
building anything (docs/DECISIONS.md "JSON nesting").
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from hubbub.protocol.client import AnyClientMessage
from hubbub.protocol.objects import explain
from hubbub.protocol.server import ServerMessage

_decoder = msgspec.json.Decoder(AnyClientMessage)
_encoder = msgspec.json.Encoder()


class _RequestId(msgspec.Struct):
    """What a refused frame is still read for: the parser skips every other field."""

    request_id: str | None = None


_request_id_decoder = msgspec.json.Decoder(_RequestId)

# msgspec recurses once per level, so past the interpreter's recursion limit (~1000 levels)
# it gives up; only an unknown field can hold such a nest, since no field type does.
TOO_DEEP = "JSON nested too deeply - at `$`"


class DecodeError(Exception):
    """A frame that is not a valid client message; `request_id` is echoed when readable."""

    def __init__(self, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def decode_client_message(data: bytes | str) -> AnyClientMessage:
    """Decode one text frame into its typed client message.

    Raises:
        DecodeError: invalid JSON, not an object, unknown `type`, a wrong field type or a value
            out of range. The message names the field, e.g. "... - at `$.content`".
    """
    try:
        message: AnyClientMessage = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(_describe(str(exc)), _request_id(data)) from None
    except msgspec.DecodeError as exc:
        # Also valid JSON that msgspec cannot hold (e.g. `1e400`): still echo the request_id.
        raise DecodeError(f"invalid JSON: {exc}", _request_id(data)) from None
    except RecursionError:
        raise DecodeError(TOO_DEEP, _request_id_ahead(data)) from None
    except UnicodeError:
        # Invalid UTF-8 inside a string (bytes input only: aiohttp already refuses text
        # frames that are not UTF-8), or a lone surrogate in a str.
        raise DecodeError("invalid JSON: not UTF-8", None) from None
    if has_nul_escape(data):
        path = nul_path(msgspec.to_builtins(message))
        if path is not None:
            raise DecodeError(f"{NUL_REFUSED} - at `{path}`", message.request_id)
    return message


# PostgreSQL cannot store U+0000 in text, so no client string may hold it: refusing it here
# keeps bad input a BAD_REQUEST (not a database error) on every backend alike.
NUL_REFUSED = "strings may not contain U+0000"


def has_nul_escape(data: bytes | str) -> bool:
    """Whether a JSON text may spell U+0000 (only possible as the escape `\\u0000`): one
    search in C. A hit that is really an escaped backslash before `u0000` (plain text) is
    told apart by `nul_path` on the decoded value, which only holds the known fields."""
    if isinstance(data, bytes):
        return b"\\u0000" in data
    return "\\u0000" in data


def nul_path(value: Any, path: str = "$") -> str | None:
    """The JSONPath of the first string holding U+0000 in a decoded value, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = nul_path(key, path) or nul_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def encode(message: ServerMessage) -> bytes:
    """Encode a server message to its JSON text."""
    return _encoder.encode(message)


def encode_json(value: Any) -> bytes:
    """Encode any JSON-able value (REST bodies) with the same fast encoder."""
    return _encoder.encode(value)


_MISSING = re.compile(r"^Object missing required field `([^`]+)`(?: - at `(\$[^`]*)`)?$")


def _describe(error: str) -> str:
    """msgspec's message, made to end with the JSONPath at fault (docs/DECISIONS.md)."""
    if error.startswith("Invalid value") and "`$.type`" in error:
        return "unknown message type - at `$.type`"
    missing = _MISSING.match(error)
    if missing is not None:
        name, parent = missing.group(1), missing.group(2) or "$"
        return f"missing field `{name}` - at `{parent}.{name}`"
    if " - at `" not in error:  # the frame itself is wrong, e.g. an array instead of an object
        return f"{error} - at `$`"
    return explain(error)


def _request_id(data: bytes | str) -> str | None:
    """The frame's string `request_id`, if it is a JSON object that has one (error path only):
    one more pass of the parser, which skips every other field in C."""
    try:
        return _request_id_decoder.decode(data).request_id
    except (msgspec.DecodeError, UnicodeError):
        return None
    except RecursionError:  # a field nests too deeply even to skip
        return _request_id_ahead(data)


# A frame too deep to parse is searched for its request_id this far only (a request_id is
# at most 64 characters, and clients put it near the start, beside `type`).
_AHEAD_CHARS = 1024
# The members of a JSON object before its first nested value, each `"key": scalar,`
# (strings matched whole, so brackets and commas inside them are text). Every step of it is
# determined by the next character, so it runs in linear time, in C.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_FLAT_MEMBERS = re.compile(rf'\s*\{{(?:\s*{_STRING}\s*:\s*(?:{_STRING}|[^"\[\]{{}},\s]*)\s*,)*')


def _request_id_ahead(data: bytes | str) -> str | None:
    """The `request_id` of a frame too deep to parse, when it is among the flat members at
    its head (before the first nested value, within its first KiB)."""
    head = data[:_AHEAD_CHARS]
    text = head.decode(errors="replace") if isinstance(head, bytes) else head
    members = _FLAT_MEMBERS.match(text)
    if members is None or not members.group().endswith(","):
        return None
    try:
        return _request_id_decoder.decode(members.group()[:-1] + "}").request_id
    except (msgspec.DecodeError, UnicodeError):
        return None
