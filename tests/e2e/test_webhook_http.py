"""The webhook sender's HTTP/1.1 client (webhooks/http.py) against real sockets: receivers
that answer with a length, in chunks, or to the connection's end, that close kept
connections, send 1xx first, answer garbage or too much, and over TLS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hubbub.storage.outbox import OutboxRow
from hubbub.webhooks.delivery import Delivery
from hubbub.webhooks.http import MAX_BODY, Poster, ProtocolError
from tests.support.tls import self_signed

pytestmark = pytest.mark.asyncio(loop_scope="session")

OK = b"HTTP/1.1 204 No Content\r\n\r\n"
# The n-th request's answer: None closes the connection unanswered, b"" never answers.
Answer = Callable[[int], bytes | None]


class Receiver:
    """A raw HTTP server: reads each request whole, answers `answer(n)`; counts
    connections and keeps the requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)

    async def handle(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                self.requests.append((head, await reader.readexactly(length)))
                reply = self.answer(len(self.requests))
                if reply is None:
                    break
                if not reply:  # keep the sender waiting
                    await asyncio.sleep(5)
                    break
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply or (b"Content-Length" not in reply \
                        and b"chunked" not in reply and b" 204 " not in reply):
                    break
        writer.close()


@contextlib.asynccontextmanager
async def receiver(answer: Answer, tls: Path | None = None) -> AsyncIterator[
        tuple[Receiver, str, object]]:
    """A running Receiver, its URL and (for TLS) a client context trusting it."""
    import ssl

    server_tls = client_tls = None
    if tls is not None:
        certificate = self_signed(tls)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(certificate.certificate, certificate.key)
        client_tls = certificate.client_context()
    state = Receiver(answer)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    try:
        yield state, f"{scheme}://127.0.0.1:{port}/hooks?x=1", client_tls
    finally:
        server.close()
        await server.wait_closed()


async def test_kept_connections_carry_the_next_requests() -> None:
    """A 204 then a 200 with a length and one in chunks: one connection carries all; the
    request is a POST of the body to the URL's path and query, with the headers."""
    answers = {1: OK, 2: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
               3: b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n"}
    async with receiver(answers.get) as (state, url, _):
        poster = Poster(url, {"User-Agent": "test"}, keep=2)
        statuses = [await poster.post(b'{"n":%d}' % i, {"webhook-id": f"msg_{i}"})
                    for i in (1, 2, 3)]
        await poster.close()
    assert statuses == [204, 200, 202]
    assert state.connections == 1
    head, body = state.requests[0]
    assert head.startswith(b"POST /hooks?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"User-Agent: test\r\n" in head
    assert b"webhook-id: msg_1\r\n" in head
    assert body == b'{"n":1}'


async def test_the_request_line_escapes_what_the_url_holds_outside_its_characters() -> None:
    """A space in the configured URL's path or query is escaped and a line break dropped
    (`urlsplit` drops them): the request stays one request."""
    async with receiver(lambda n: OK) as (state, url, _):
        poster = Poster(url.replace("/hooks?x=1", "/my hooks\r\nX-Evil: 1?q=a b"), {}, keep=1)
        assert await poster.post(b"x", {}) == 204
        await poster.close()
    head, _ = state.requests[0]
    assert head.startswith(b"POST /my%20hooksX-Evil:%201?q=a%20b HTTP/1.1\r\n")
    assert b"\r\nX-Evil" not in head


async def test_a_connection_closed_by_the_receiver_is_replaced() -> None:
    """`Connection: close`, an answer without a length (to the connection's end), and a
    kept connection the receiver dropped while idle: each next request gets a new
    connection, and none fails."""
    answers = {1: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
               2: b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
               3: b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 4: OK}
    async with receiver(answers.get) as (state, url, _):
        poster = Poster(url, {}, keep=1)
        assert [await poster.post(b"x", {}) for _ in range(4)] == [200, 200, 200, 204]
        assert state.connections == 4
        # The receiver drops the kept connection; the next post still gets through.
        state.answer = lambda n: OK if n != 5 else None
        assert await poster.post(b"x", {}) == 204
        await poster.close()
    assert len(state.requests) == 6  # the fifth, dropped, was sent again


async def test_informational_answers_are_skipped_and_long_bodies_not_kept() -> None:
    big = MAX_BODY + 1
    answers = {1: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
               2: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (big, b"x" * big),
               3: OK}
    async with receiver(answers.get) as (state, url, _):
        poster = Poster(url, {}, keep=4)
        assert [await poster.post(b"x", {}) for _ in range(3)] == [201, 200, 204]
        await poster.close()
    assert state.connections == 2  # the long answer's connection was not kept


@pytest.mark.parametrize("answer", [b"SMTP ready\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
                                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
async def test_an_unreadable_answer_is_an_error_and_its_connection_is_dropped(
        answer: bytes) -> None:
    async with receiver(lambda n: answer if n == 1 else OK) as (state, url, _):
        poster = Poster(url, {}, keep=2)
        with pytest.raises(ProtocolError):
            await poster.post(b"x", {})
        assert await poster.post(b"x", {}) == 204
        await poster.close()
    assert state.connections == 2


async def test_delivery_reports_each_failure_in_words() -> None:
    """Through `Delivery`: a 2xx is None; a 500, a redirect, a timeout, an early close and a
    refused connection each a reason."""
    row = OutboxRow(seq=1, id="msg_1", type="message.created", conversation_id="c",
                    version=1, data=b"{}", created_at=0, attempts=0, retry_from=0,
                    last_error=None)
    answers = {1: OK, 2: b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
               3: b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
               4: None}
    async with receiver(answers.get) as (_, url, _tls):
        delivery = Delivery(url, b"k" * 24, timeout=0.5, concurrency=2)
        assert [await delivery.send(row) for _ in range(3)] == [None, "HTTP 500", "HTTP 301"]
        assert await delivery.send(row) == "connection closed before the answer"
        await delivery.close()
    async with receiver(lambda n: b"") as (_, url, _tls):  # reads, never answers
        slow = Delivery(url, b"k" * 24, timeout=0.3, concurrency=2)
        assert await slow.send(row) == "timeout"
        await slow.close()
    refused = Delivery(url, b"k" * 24, timeout=1.0, concurrency=2)  # that server is gone
    assert await refused.send(row) == "ConnectionRefusedError"


async def test_tls_receivers_are_verified(tmp_path: Path) -> None:
    async with receiver(lambda n: OK, tls=tmp_path) as (state, url, trusted):
        poster = Poster(url, {}, keep=1, tls=trusted)  # type: ignore[arg-type]
        assert [await poster.post(b"x", {}) for _ in range(2)] == [204, 204]
        await poster.close()
        assert state.connections == 1
        untrusted = Delivery(url, b"k" * 24, timeout=2.0, concurrency=1)
        row = OutboxRow(seq=1, id="msg_1", type="t", conversation_id="c", version=1,
                        data=b"{}", created_at=0, attempts=0, retry_from=0, last_error=None)
        assert await untrusted.send(row) == "SSLCertVerificationError"
        await untrusted.close()
