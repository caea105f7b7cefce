"""One delivery attempt over aiohttp's client: a signed POST, 2xx or a reason why not."""

from __future__ import annotations

import time

import aiohttp

from hubbub import __version__
from hubbub.storage.outbox import OutboxRow
from hubbub.webhooks import signing
from hubbub.webhooks.body import body


class Delivery:
    """POSTs events to one URL, signed with one key. `send` answers None when the receiver
    took the event (any 2xx), else the reason for the log and the dead letter."""

    def __init__(self, url: str, key: bytes, timeout: float, concurrency: int) -> None:
        self._url = url
        self._key = key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._concurrency),
                headers={"User-Agent": f"hubbub/{__version__}",
                         "Content-Type": "application/json"})
        return self._session

    async def send(self, row: OutboxRow) -> str | None:
        payload = body(row)
        headers = signing.headers(self._key, row.id, int(time.time()), payload)
        try:
            async with self._client().post(self._url, data=payload, headers=headers,
                                           allow_redirects=False) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            return type(exc).__name__

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

