"""Structured logging: one JSON object per line, never a token and never message content.

Callers pass facts as keyword fields (`log.info("ws.closed", code=1000, user_id=...)`);
free text from clients is never logged. Query strings are dropped from logged paths, since
`?token=` and `?ticket=` carry credentials.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}
_SECRET_KEYS = ("token", "ticket", "authorization", "secret", "content", "sdp", "candidate")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = "[redacted]" if key.lower() in _SECRET_KEYS else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


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


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send hubbub's logs to stderr, as JSON lines (or plain text with fmt="text")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
