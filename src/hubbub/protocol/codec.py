"""Decoding client frames and encoding server messages (PROTOCOL.md §2).

One `Decoder` for the whole client union, built once: msgspec validates types, lengths and
ranges in the same C pass that parses the JSON, and names the offending field.
"""

from __future__ import annotations

import json
import re
from typing import Any, AnyStr

import msgspec

from hubbub.protocol.client import AnyClientMessage
from hubbub.protocol.server import ServerMessage

_decoder = msgspec.json.Decoder(AnyClientMessage)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

# §5 of PROTOCOL.md bounds nothing about depth; a deep JSON nest is the cheapest way to make
# a parser work hard, so frames nested deeper than this are refused before decoding.
MAX_JSON_DEPTH = 32


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
    if _too_deep(data):
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                          _shallow_request_id(data))
    try:
        message: AnyClientMessage = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(_describe(str(exc)), _request_id(data)) from None
    except msgspec.DecodeError as exc:
        # Also valid JSON that msgspec cannot hold (e.g. `1e400`): still echo the request_id.
        raise DecodeError(f"invalid JSON: {exc}", _request_id(data)) from None
    except UnicodeDecodeError:
        # msgspec reports invalid UTF-8 inside a string this way (bytes input only: aiohttp
        # already refuses text frames that are not UTF-8).
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
    """Whether a JSON text spells U+0000 (only possible as the escape `\\u0000`); a fast scan
    that the rare hit confirms with `nul_path` on the decoded value."""
    if isinstance(data, bytes):
        return _escaped_nul(data, b"\\u0000", 0x5C)
    return _escaped_nul(data, "\\u0000", "\\")


def _escaped_nul(data: AnyStr, needle: AnyStr, backslash: object) -> bool:
    start = data.find(needle)
    while start >= 0:
        before = start - 1
        while before >= 0 and data[before] == backslash:
            before -= 1
        if (start - 1 - before) % 2 == 0:  # the backslash itself is not escaped
            return True
        start = data.find(needle, start + 1)
    return False


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
    return error


def _request_id(data: bytes | str) -> str | None:
    """The frame's string `request_id`, if it is a JSON object that has one (error path only)."""
    try:
        value = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        try:  # the lenient stdlib parser reads numbers msgspec refuses (`1e400`)
            value = json.loads(data)
        except (ValueError, RecursionError):
            return None
    if isinstance(value, dict):
        request_id = value.get("request_id")
        if isinstance(request_id, str):
            try:  # a lone surrogate could not be encoded back into the Error
                request_id.encode()
            except UnicodeEncodeError:
                return None
            return request_id
    return None


def _too_deep(data: bytes | str) -> bool:
    """Cheap upper bound on nesting: count brackets without parsing (strings may overcount)."""
    if isinstance(data, str):
        if data.count("[") + data.count("{") <= MAX_JSON_DEPTH:
            return False
        raw = data.encode()
    else:
        if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
            return False
        raw = data
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _shallow_request_id(data: bytes | str) -> str | None:
    """The top-level string `request_id` of a frame too deep to parse, found by a scan that
    only tracks strings and depth (no parser recursion)."""
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    depth, i, n = 0, 0, len(raw)
    while i < n:
        byte = raw[i]
        if byte == 0x22:
            end = _string_end(raw, i)
            if end < 0:
                return None
            if depth == 1 and raw[i:end + 1] == b'"request_id"':
                colon = _skip_space(raw, end + 1)
                if colon < n and raw[colon] == 0x3A:
                    start = _skip_space(raw, colon + 1)
                    if start >= n or raw[start] != 0x22:
                        return None
                    close = _string_end(raw, start)
                    try:
                        value = json.loads(raw[start:close + 1]) if close > 0 else None
                        if isinstance(value, str):
                            value.encode()  # a lone surrogate could not be echoed
                            return value
                    except (ValueError, UnicodeEncodeError):
                        pass
                    return None
            i = end + 1
            continue
        if byte in (0x5B, 0x7B):
            depth += 1
        elif byte in (0x5D, 0x7D):
            depth -= 1
        i += 1
    return None


def _string_end(raw: bytes, start: int) -> int:
    """Index of the quote closing the string that opens at `start`, or -1."""
    i = start + 1
    while i < len(raw):
        byte = raw[i]
        if byte == 0x5C:
            i += 2
            continue
        if byte == 0x22:
            return i
        i += 1
    return -1


def _skip_space(raw: bytes, i: int) -> int:
    while i < len(raw) and raw[i] in (0x20, 0x09, 0x0A, 0x0D):
        i += 1
    return i
