"""The rate-limit seam (PROTOCOL.md §6): token buckets, in process memory or in Redis."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.ratelimit import BucketRule


class RateLimiter(Protocol):
    async def hit(self, key: str, rule: BucketRule) -> None:
        """Take a token from bucket `key`.

        Raises:
            RateLimited: with the time until a token is back.
        """
