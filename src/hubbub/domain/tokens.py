"""JWT checks of PROTOCOL.md §1, with the algorithms pinned (RFC 8725).

Tokens are the backend's own: the user id may sit in any claim (`sub` by default, `user_id`
for Django SimpleJWT) as a string or an integer, and a `token_type` claim, where the backend
writes one, must say `access` (a refresh token must not open a connection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from hubbub.domain.errors import Unauthorized
from hubbub.domain.hmac_tokens import HMAC_ALGORITHMS, HmacTokens
from hubbub.domain.limits import MAX_USER_ID_CHARS
from hubbub.domain.names import display_name
from hubbub.protocol.objects import canonical_user_id, is_user_id

# `exp` and `nbf` are epoch seconds up to 9999-12-31T23:59:59Z: the last instant an RFC 3339
# time can spell, far inside what a float holds exactly (2**53). Anything larger, negative,
# infinite, NaN or not a number is refused rather than carried into timers and sums.
MAX_EPOCH_S = 253_402_300_799

# What the backend's key may be handed as: a PEM or shared secret, or one key of a JWKS.
VerifyingKey = str | jwt.PyJWK


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token speaks for, and until when (epoch seconds)."""

    user_id: str
    name: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """Verifies bearer tokens against a fixed list of algorithms, and reads their claims.

    `key` is the shared secret or public key; None when every key comes from a JWKS, and is
    then handed to `verify` per token.
    """

    key: str | None
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str | None = None
    audience: str | None = None
    leeway_s: float = 0.0
    user_claim: str = "sub"
    name_claim: str = "name"
    # The quick path for the fixed key's HMAC tokens (hmac_tokens.py); None without one.
    _hmac: HmacTokens | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.key is None or HMAC_ALGORITHMS.isdisjoint(self.algorithms):
            return
        try:
            quick = HmacTokens(self.key, self.algorithms, required=("exp", self.user_claim),
                               issuer=self.issuer, audience=self.audience)
        except jwt.InvalidKeyError:
            return  # not an HMAC secret: PyJWT says so of every token
        object.__setattr__(self, "_hmac", quick)

    def verify(self, token: str, *, now: float, key: VerifyingKey | None = None) -> Identity:
        """Check signature, algorithm, `exp` (required), `nbf`, the user claim, `token_type`
        if present, `iss`/`aud` if configured.

        Raises:
            Unauthorized: the token is missing a claim, expired, wrongly signed, not an
                access token, or uses an algorithm not on the list (including `none`).
        """
        if key is None and self._hmac is not None:
            claims = self._hmac.claims(token) or self._decode(token, self.key)
        else:
            claims = self._decode(token, self.key if key is None else key)
        expires_at = self._check_times(claims, now)
        token_type = claims.get("token_type")
        if token_type is not None and token_type != "access":
            raise Unauthorized("invalid token: token_type must be `access`")
        name = claims.get(self.name_claim)
        if name is not None and not isinstance(name, str):
            raise Unauthorized(f"invalid token: {self.name_claim} must be a string")
        # The leeway that let an expired token in also keeps its connection that long.
        return Identity(user_id=user_id_claim(claims[self.user_claim], self.user_claim),
                        name=display_name(name), expires_at=expires_at + self.leeway_s)

    def _decode(self, token: str, key: VerifyingKey | None) -> dict[str, Any]:
        """The claims of a token PyJWT verified: signature, algorithm, required claims,
        `iss` and `aud`."""
        if key is None:
            raise Unauthorized("invalid token: no key to verify it")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=list(self.algorithms), issuer=self.issuer,
                audience=self.audience, leeway=self.leeway_s,
                # PyJWT compares exp, nbf and iat with the wall clock; `verify` checks them
                # against `now` instead, so the caller's clock is the only one. `iat` is not
                # checked at all: an issuer whose clock runs a moment ahead would otherwise
                # mint tokens that are refused as "not yet valid". `sub` is read by `verify`,
                # where an integer is accepted too.
                options={
                    "require": ["exp", self.user_claim],
                    "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                    "verify_sub": False, "verify_jti": False,
                    "verify_aud": self.audience is not None,
                    "verify_iss": self.issuer is not None,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"invalid token: the {exc.claim} claim is required") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
        return claims

    def _check_times(self, claims: Mapping[str, Any], now: float) -> float:
        """`exp` (returned) and `nbf`, each with the leeway on its side."""
        expires_at = _epoch(claims["exp"], "exp")
        if expires_at + self.leeway_s <= now:
            raise Unauthorized("invalid token: expired")
        not_before = claims.get("nbf")
        if not_before is not None and _epoch(not_before, "nbf") > now + self.leeway_s:
            raise Unauthorized("invalid token: not valid yet (nbf)")
        return expires_at


def user_id_claim(value: object, claim: str) -> str:
    """The user id a claim holds: a user id of §2, or an integer as its decimal string
    (Django's primary keys); a UUID in lowercase.

    Raises:
        Unauthorized: naming the claim.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not is_user_id(value):
        raise Unauthorized(f"invalid token: {claim} must be a user id: 1-{MAX_USER_ID_CHARS} "
                           "printable ASCII characters without spaces, or an integer")
    return canonical_user_id(value)


def _epoch(value: object, claim: str) -> float:
    """A time claim as a float, or Unauthorized naming the claim.

    JSON numbers reach here as ints of any size and floats including inf and NaN (Python's
    parser reads `NaN` and `Infinity`); `true` is an int to Python but not a time.
    """
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 <= value <= MAX_EPOCH_S):  # NaN fails every comparison
        raise Unauthorized(f"invalid token: {claim} must be a number of seconds up to "
                           f"{MAX_EPOCH_S}")
    return float(value)


def mint(secret: str, user_id: str, name: str | None, *, now: float, ttl_s: int,
         algorithm: str = "HS256", user_claim: str = "sub", name_claim: str = "name") -> str:
    """Sign a development token, as `hubbub token` prints it (in the configured claims)."""
    claims: dict[str, object] = {user_claim: user_id, "iat": int(now),
                                 "exp": int(now) + ttl_s}
    if name:
        claims[name_claim] = name
    return jwt.encode(claims, secret, algorithm=algorithm)
