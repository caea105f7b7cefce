"""Structured logging: JSON lines or readable text, every field kept, never a credential.

Callers pass facts as keyword fields (`log.info("ws.closed", code=1000, user_id=...)`);
free text from clients is never logged. The id of the connection or HTTP request being
served rides in a context variable and joins every line logged on its behalf.

Whatever a library logs goes through the same handler, which scrubs JWT-shaped strings,
`token=`/`ticket=` values and `Authorization` values from the finished line (message,
arguments, fields and traceback alike): aiohttp, for one, logs a refused request line whole.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from hubbub.domain.clock import utc_second

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}
# Field names whose values are never written, whatever the caller passed.
_SECRET_KEYS = ("token", "ticket", "authorization", "secret", "content", "sdp", "candidate")
REDACTED = "[redacted]"

# What identifies the connection or request a line was logged for (see `bind`).
connection_id: ContextVar[str | None] = ContextVar("connection_id", default=None)
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_CONTEXT = (("connection_id", connection_id), ("request_id", request_id))
# What identifies this process among its siblings (`worker` under `serve --workers N`),
# written first on each of its lines; set by `configure`.
_process_fields: dict[str, Any] = {}

# A JWT's header is base64url JSON, so it starts with `eyJ` (`{"`); a cut-off token (aiohttp
# shortens long lines) is still caught by its first part.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*")
# Values end at a quote or a backslash, so a JSON line stays valid JSON once scrubbed.
_QUERY_CREDENTIAL = re.compile(r"(?i)((?:token|ticket)=)[^&\s'\"<>\\]+")
_AUTHORIZATION = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n\\]+")
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")


# What each pattern above starts with, in lower case. An ASCII line (every JSON line is)
# holding none of them has nothing to scrub, and is spared the four scans: 0.7 µs instead
# of 17, on every line (bench: the connect path logs one per connection).
_CLUES = ("eyj", "token=", "ticket=", "authorization", "bearer", "basic")


def redact(text: str) -> str:
    """`text` without anything that looks like a credential."""
    if text.isascii():
        lowered = text.lower()
        if not any(clue in lowered for clue in _CLUES):
            return text
    text = _JWT.sub(REDACTED, text)
    text = _QUERY_CREDENTIAL.sub(r"\1" + REDACTED, text)
    text = _AUTHORIZATION.sub(r"\1" + REDACTED, text)
    return _SCHEME_CREDENTIAL.sub(r"\1\2" + REDACTED, text)


def _timestamp(record: logging.LogRecord) -> str:
    # The second's text is formatted once and shared by the lines of that second
    # (`utc_second` keeps it, as it does for message times) instead of `strftime` per line.
    return f"{utc_second(int(record.created))}.{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The process's, the context's and the caller's fields, secret-named ones redacted."""
    found: dict[str, Any] = dict(_process_fields)
    for key, var in _CONTEXT:
        value = var.get()
        if value is not None:
            found[key] = value
    for key, value in record.__dict__.items():
        if key not in _RESERVED and not key.startswith("_"):
            found[key] = REDACTED if key.lower() in _SECRET_KEYS else value
    return found


# One encoder for every line: `json.dumps(..., default=str)` builds a new one per call.
_encode_json = json.JSONEncoder(default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encode_json(entry)


# A text value is written bare when nothing in it could be mistaken for the line's syntax.
_BARE = re.compile(r"[^\s\"=\\]+")


class TextFormatter(logging.Formatter):
    """`2026-12-02T10:00:00.123Z info hubbub.ws ws.closed connection_id=… code=1000`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        parts = [_timestamp(record), record.levelname.lower(), record.name,
                 message if message.isprintable() else json.dumps(message)]
        for key, value in _fields(record).items():
            parts.append(f"{key}={_text_value(value)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else json.dumps(value)
    return _encode_json(value)


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes formatted lines only after `redact`, for every logger of every library."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class Logger:
    """A thin wrapper so call sites read `log.info("event", field=value)`."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def debug(self, event: str, **fields: Any) -> None:
        self._logger.debug(event, extra=fields)

    def info(self, event: str, **fields: Any) -> None:
        self._logger.info(event, extra=fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._logger.warning(event, extra=fields)

    def error(self, event: str, **fields: Any) -> None:
        self._logger.error(event, extra=fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._logger.exception(event, extra=fields)


def get_logger(name: str) -> Logger:
    return Logger(name)


# Libraries whose debug lines carry data: aiosqlite logs every statement with its
# parameters, that is message content. They log at `info` at most.
_QUIET_BELOW_INFO = ("aiosqlite",)


def configure(level: str = "info", fmt: str = "json", **process: Any) -> None:
    """Send every log line of the process (hubbub's and every library's) to stderr, as
    JSON lines or text, through the redacting handler; uncaught exceptions and warnings
    too, so nothing reaches stderr around it. `process` fields join every line."""
    _process_fields.clear()
    _process_fields.update(process)
    # No line says which source line, thread or process wrote it (the worker field names the
    # process), so none of it is collected: the logging HOWTO's "Optimization" switches, a
    # third of a line's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = RedactingHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET_BELOW_INFO:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  traceback: TracebackType | None) -> None:
    logging.getLogger("hubbub").critical("process.crashed", exc_info=(kind, value, traceback))
