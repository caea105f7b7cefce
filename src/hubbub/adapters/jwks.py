"""`SigningKeys` from a JWKS endpoint, with PyJWT's PyJWKClient behind it.

PyJWKClient caches the set (`lifespan`), fetches it again when a token names a key it does
not have, at most once per `cooldown` (so a stream of made-up `kid`s costs one fetch per
cooldown, not one each), and keeps a rotated-in key working without a restart. Its fetch
is blocking urllib: it runs in a thread, one at a time, and a token whose key is in the
cached set is answered without leaving the event loop. When the endpoint is down, the
keys of the last set read keep verifying.
"""

from __future__ import annotations

import asyncio
import math
import time

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKClientError

from hubbub.domain.errors import Unauthorized
from hubbub.logs import get_logger

log = get_logger("hubbub.jwks")


class JwksKeys:
    def __init__(self, url: str, *, lifespan_s: float = 300.0, cooldown_s: float = 30.0,
                 timeout_s: float = 5.0) -> None:
        self._client = PyJWKClient(url, cache_jwk_set=True, lifespan=lifespan_s,
                                   cooldown_duration=cooldown_s, timeout=timeout_s)
        self._lock = asyncio.Lock()
        self._cooldown_s = cooldown_s
        # When a lookup last failed (monotonic): within the cooldown the next ones are
        # answered from `_last` without a thread, so an endpoint that hangs costs one
        # timeout per cooldown, not one per handshake.
        self._failed_at = -math.inf
        # The last set read, for when the endpoint is down once the cache has expired:
        # the keys it had still verify (a fetch that fails must not log everyone out).
        self._last: list[PyJWK] = []

    async def key_for(self, kid: str | None) -> PyJWK:
        """The key `kid` names; without a `kid`, the set's only signing key.

        Raises:
            Unauthorized: no such key, or the endpoint could not be read and no cached
                set has it.
        """
        cached = self._cached(kid)
        if cached is not None:
            return cached
        if time.monotonic() - self._failed_at >= self._cooldown_s:
            async with self._lock:
                cached = self._cached(kid)  # fetched meanwhile by the lookup we waited on
                if cached is not None:
                    return cached
                try:
                    return await asyncio.to_thread(self._lookup, kid)
                except (PyJWKClientError, jwt.PyJWTError) as exc:
                    self._failed_at = time.monotonic()
                    log.warning("jwks.no_key", kid=kid, error=str(exc)[:200])
                finally:
                    self._cached(kid)  # keeps `_last` up to date
        key = _pick(self._last, kid)
        if key is None:
            raise Unauthorized("invalid token: no key in the JWKS for its kid")
        return key

    def _cached(self, kid: str | None) -> PyJWK | None:
        """The key from the cached set, if the set is fresh and has it (no I/O)."""
        cache = self._client.jwk_set_cache
        jwk_set = None if cache is None else cache.get()
        if jwk_set is None:
            return None
        self._last = _signing(jwk_set.keys)
        return _pick(self._last, kid)

    def _lookup(self, kid: str | None) -> PyJWK:
        """In a thread: PyJWKClient's lookup (cached set, else one rate-limited fetch)."""
        if kid is not None:
            return self._client.get_signing_key(kid)
        key = _pick(self._client.get_signing_keys(), None)
        if key is None:
            raise PyJWKClientError("a token without kid needs a JWKS of exactly one key")
        return key


def _signing(keys: list[PyJWK]) -> list[PyJWK]:
    return [key for key in keys if key.public_key_use in ("sig", None) and key.key_id]


def _pick(keys: list[PyJWK], kid: str | None) -> PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)
