"""Who a bearer token speaks for (PROTOCOL.md §1): one use case for every door.

The token is checked against the shared secret or public key of the settings, or against
the key its `kid` names in the backend's JWKS (adapters/jwks.py), so that the backend can
rotate its keys without hubbub restarting.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Protocol

import jwt

from hubbub.domain.errors import Unauthorized
from hubbub.domain.tokens import Identity, TokenVerifier, VerifyingKey

# A `kid` longer than this names no key anyone publishes; it is refused unread.
MAX_KID_CHARS = 256
# Tokens verified lately, remembered so that a reconnect (a storm of them after a restart)
# skips the signature check: ~250 bytes each, forgotten all at once when this many are held.
# As many as one process holds connections (its open-file limit), so that a storm of all of
# them reconnecting is a storm of hits: 8 MB at most.
RECENT_TOKENS = 32768


class SigningKeys(Protocol):
    """The backend's published verification keys, by key id."""

    async def key_for(self, kid: str | None) -> VerifyingKey:
        """The key `kid` names (None: the set's only key).

        Raises:
            Unauthorized: no such key, even after a refresh of the set (rate-limited).
        """


class Authenticator:
    def __init__(self, verifier: TokenVerifier, keys: SigningKeys | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        """`keys`: the JWKS to pick each token's key from; None verifies with the
        verifier's own key (a shared secret or a public key)."""
        self._verifier = verifier
        self._keys = keys
        self._clock = clock
        # By a digest of the token, so that no token is kept. Only with a fixed key: a key
        # of the JWKS may be withdrawn, and a token it signed must then be refused.
        self._recent: dict[bytes, Identity] = {}

    async def authenticate(self, token: str | None) -> Identity:
        """The identity a valid token speaks for.

        Raises:
            Unauthorized: no token, or one that does not verify (§1).
        """
        if not token:
            raise Unauthorized("missing token")
        now = self._clock()
        if self._keys is not None:
            key = await self._keys.key_for(_kid(token))
            return self._verifier.verify(token, now=now, key=key)
        digest = hashlib.blake2b(token.encode(), digest_size=16).digest()
        known = self._recent.get(digest)
        # The signature and every claim were checked; only the time can have run out (a
        # token valid once is past its `nbf` for good).
        if known is not None and now < known.expires_at:
            return known
        identity = self._verifier.verify(token, now=now)
        if len(self._recent) >= RECENT_TOKENS:
            self._recent.clear()
        self._recent[digest] = identity
        return identity


def _kid(token: str) -> str | None:
    """The `kid` header, read before the signature is checked (it only picks the key)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
    if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_CHARS):
        raise Unauthorized("invalid token: kid must be a string")
    return kid
