"""One delivery attempt: a signed POST (webhooks/http.py), 2xx or a reason why not."""

from __future__ import annotations

import asyncio
import time

from hubbub import __version__
from hubbub.storage.outbox import OutboxRow
from hubbub.webhooks import signing
from hubbub.webhooks.body import body
from hubbub.webhooks.http import Poster, ProtocolError


class Delivery:
    """POSTs events to one URL, signed with one key. `send` answers None when the receiver
    took the event (any 2xx), else the reason for the log and the dead letter."""

    def __init__(self, url: str, key: bytes, timeout: float, concurrency: int) -> None:
        self._key = key
        self._timeout = timeout
        self._poster = Poster(url, {"User-Agent": f"hubbub/{__version__}",
                                    "Content-Type": "application/json"}, keep=concurrency)

    async def send(self, row: OutboxRow) -> str | None:
        payload = body(row)
        headers = signing.headers(self._key, row.id, int(time.time()), payload)
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._poster.post(payload, headers)
        except TimeoutError:
            return "timeout"
        except asyncio.IncompleteReadError:
            return "connection closed before the answer"
        except ProtocolError as exc:
            return f"unreadable answer: {exc}"
        except OSError as exc:
            return type(exc).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"

    async def close(self) -> None:
        await self._poster.close()
