"""Both log formats keep every field and the context's ids; the handler scrubs credentials
from whatever a line holds (message, arguments, fields, traceback)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hubbub import logs

TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiZXhwIjoxfQ"
         ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
TICKET = "Qm9vbWJvb21ib29tYm9vbWJvb21ib29tYm9vbWJvb20"


@pytest.fixture
def written() -> Iterator[tuple[logging.Logger, io.StringIO, logs.RedactingHandler]]:
    """A logger writing through the redacting handler into a buffer."""
    buffer = io.StringIO()
    handler = logs.RedactingHandler(buffer)
    logger = logging.getLogger("tests.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, buffer, handler
    logger.handlers.clear()
    logger.propagate = True


def record(**fields: object) -> logging.LogRecord:
    entry = logging.LogRecord("hubbub.ws", logging.INFO, __file__, 1, "ws.open", (), None)
    entry.created, entry.msecs = 1796205600.0, 123.0  # 2026-12-02T10:00:00.123Z
    entry.__dict__.update(fields)
    return entry


def test_text_lines_keep_every_field() -> None:
    line = logs.TextFormatter().format(record(user_id="u-1", code=1000, reason="going away",
                                              closed=True, missing=None))
    assert line == ('2026-12-02T10:00:00.123Z info hubbub.ws ws.open user_id=u-1 code=1000 '
                    'reason="going away" closed=true missing=null')


def test_text_values_cannot_forge_a_line() -> None:
    line = logs.TextFormatter().format(record(user_name='x\n2026-12-02T10:00:00.000Z error forged'))
    assert "\n" not in line
    assert line.endswith(r'user_name="x\n2026-12-02T10:00:00.000Z error forged"')


def test_json_lines_keep_every_field() -> None:
    entry = json.loads(logs.JsonFormatter().format(record(user_id="u-1", code=1000)))
    assert entry == {"ts": "2026-12-02T10:00:00.123Z", "level": "info", "logger": "hubbub.ws",
                     "event": "ws.open", "user_id": "u-1", "code": 1000}


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_the_context_ids_join_every_line(formatter: logging.Formatter) -> None:
    connection = logs.connection_id.set("c-7")
    request = logs.request_id.set("r-9")
    try:
        line = formatter.format(record(user_id="u-1"))
    finally:
        logs.connection_id.reset(connection)
        logs.request_id.reset(request)
    assert "c-7" in line
    assert "r-9" in line
    assert "c-7" not in formatter.format(record(user_id="u-1"))


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_secret_named_fields_are_never_written(formatter: logging.Formatter) -> None:
    line = formatter.format(record(content="hello bob", token="abc", sdp="v=0"))
    assert "hello bob" not in line
    assert "abc" not in line
    assert "v=0" not in line


@pytest.mark.parametrize("text", [
    f"GET /ws?token={TOKEN} HTTP/1.1",
    f"b'GET /ws?token={TOKEN}\\xc3\\xa9 HTTP/1.1'",
    f"Got more than 8190 bytes when reading: b'{TOKEN[:100]}...'",
    f"b'{TOKEN} / HTTP/1.1'",
    f"b'Authorization: Bearer {TOKEN}\\x01'",
    f"{{'Authorization': 'Bearer {TOKEN}'}}",
    f"/ws?ticket={TICKET}&x=1",
    f"Authorization: Basic {TICKET}",
    f"token={TICKET}",
    f"TOKEN={TICKET}",
    f"AUTHORIZATION: BEARER {TICKET}",
    f"café ticket={TICKET}",  # not ASCII: every scan runs
    f"naïve Bearer {TOKEN}",
])
def test_credentials_are_scrubbed(text: str) -> None:
    scrubbed = logs.redact(text)
    assert TICKET not in scrubbed
    for part in TOKEN.split("."):
        assert part not in scrubbed
    assert logs.REDACTED in scrubbed


@pytest.mark.parametrize("text", [
    '{"event": "ws.open", "connection_id": "6f1c2a9e", "user_id": "alice"}',
    "2026-12-02T10:00:00.123Z info hubbub.ws ws.closed user_id=zoë code=1000",
])
def test_a_line_without_credentials_is_kept_as_it_is(text: str) -> None:
    assert logs.redact(text) == text


def test_scrubbing_leaves_json_valid() -> None:
    line = json.dumps({"event": f"Authorization: Bearer {TOKEN}\"\\", "exc": (
        f"b'GET /ws?token={TOKEN}\\\\x01 HTTP/1.1'\n  ^"), "path": f"/ws?ticket={TICKET}\""})
    scrubbed = logs.redact(line)
    assert TOKEN not in scrubbed
    assert TICKET not in scrubbed
    assert isinstance(json.loads(scrubbed), dict)


def test_the_handler_scrubs_messages_arguments_and_tracebacks(
        written: tuple[logging.Logger, io.StringIO, logs.RedactingHandler]) -> None:
    logger, buffer, handler = written
    for formatter in (logs.TextFormatter(), logs.JsonFormatter()):
        handler.setFormatter(formatter)
        try:
            raise ValueError(f"Invalid char in url: b'GET /ws?token={TOKEN}\\x01'")
        except ValueError:
            logger.exception("Error handling request from %s", f"Bearer {TOKEN}")
        logger.warning("ws.refused", extra={"url": f"/ws?ticket={TICKET}"})
    printed = buffer.getvalue()
    assert TICKET not in printed
    for part in TOKEN.split("."):
        assert part not in printed
    assert printed.count("Error handling request") == 2
