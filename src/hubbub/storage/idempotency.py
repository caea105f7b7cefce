"""Idempotency keys of the server API: which resource a request with a key created, so
that a retry with the same key and body finds it instead of creating another."""

from __future__ import annotations

from typing import Protocol


class IdempotencyStore(Protocol):
    """All times are UTC microseconds."""

    async def claim_key(self, key: str, fingerprint: str, resource_id: str,
                        now: int) -> tuple[str, str]:
        """Record that `key` creates `resource_id` unless the key is taken; returns the
        `(fingerprint, resource_id)` stored for the key — this call's when it won."""

    async def release_key(self, key: str, resource_id: str) -> None:
        """Forget a claim whose creation failed, so that a retry may create it."""
