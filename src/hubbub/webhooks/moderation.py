"""The moderation hook over HTTP: a signed POST per message, the verdict in the answer.

The request is signed like a webhook (Standard Webhooks headers, the same key) and its
body is `{"type": "message.review", "timestamp": …, "data": Review}`; the answer is a JSON
`Verdict` (`{"action": "allow"}`, `{"action": "reject", "reason": …}`,
`{"action": "replace", "content": …}`). A timeout, a refused connection, a non-2xx
answer or one that does not decode fail as the policy says: open (allow) or closed
(reject).
"""

from __future__ import annotations

import os
import time

import aiohttp
import msgspec

from hubbub import __version__
from hubbub.domain.clock import format_time
from hubbub.logs import get_logger
from hubbub.services.moderation import ALLOW, Review, Verdict
from hubbub.webhooks import signing

log = get_logger("hubbub.moderation")


class ReviewRequest(msgspec.Struct, frozen=True):
    type: str
    timestamp: str
    data: Review


_encode = msgspec.json.Encoder().encode
_verdict = msgspec.json.Decoder(Verdict)
CLOSED = Verdict("reject", reason="moderation is unavailable; try again later")


class HttpModerator:
    def __init__(self, url: str, key: bytes, timeout: float, fail_open: bool) -> None:
        self._url = url
        self._key = key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._on_failure = ALLOW if fail_open else CLOSED
        self._session: aiohttp.ClientSession | None = None

    async def review(self, review: Review) -> Verdict:
        now = time.time_ns() // 1000
        body = _encode(ReviewRequest("message.review", format_time(now), review))
        headers = signing.headers(self._key, "rev_" + os.urandom(12).hex(),
                                  now // 1_000_000, body)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": f"hubbub/{__version__}",
                                                "Content-Type": "application/json"})
        try:
            async with self._session.post(self._url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                answer = await response.read()
                if 200 <= response.status < 300:
                    return _verdict.decode(answer)
                error = f"HTTP {response.status}"
        except TimeoutError:
            error = "timeout"
        except (aiohttp.ClientError, OSError, msgspec.DecodeError) as exc:
            error = type(exc).__name__
        log.warning("moderation.unavailable", error=error,
                    verdict=self._on_failure.action, conversation_id=review.conversation_id)
        return self._on_failure

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
