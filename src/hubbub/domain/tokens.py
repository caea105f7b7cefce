"""JWT checks of PROTOCOL.md §1, with the algorithms pinned (RFC 8725)."""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from hubbub.domain.errors import Unauthorized
from hubbub.domain.names import display_name
from hubbub.protocol.objects import is_id

# `exp` and `nbf` are epoch seconds up to 9999-12-31T23:59:59Z: the last instant an RFC 3339
# time can spell, far inside what a float holds exactly (2**53). Anything larger, negative,
# infinite, NaN or not a number is refused rather than carried into timers and sums.
MAX_EPOCH_S = 253_402_300_799


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token speaks for, and until when (epoch seconds)."""

    user_id: str
    name: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """Verifies bearer tokens against one key and a fixed list of algorithms."""

    key: str
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str | None = None
    audience: str | None = None
    leeway_s: float = 0.0

    def verify(self, token: str, *, now: float) -> Identity:
        """Check signature, algorithm, `exp` (required), `sub` (a UUID), `iss`/`aud` if configured.

        Raises:
            Unauthorized: the token is missing a claim, expired, wrongly signed or uses an
                algorithm not on the list (including `none`).
        """
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                # PyJWT compares exp, nbf and iat with the wall clock; they are checked below
                # against `now` instead, so the caller's clock is the only one. `iat` is not
                # checked at all: an issuer whose clock runs a moment ahead would otherwise
                # mint tokens that are refused as "not yet valid".
                options={
                    "require": ["exp", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": self.audience is not None,
                    "verify_iss": self.issuer is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
        expires_at = _epoch(claims["exp"], "exp")
        if expires_at + self.leeway_s <= now:
            raise Unauthorized("invalid token: expired")
        not_before = claims.get("nbf")
        if not_before is not None and _epoch(not_before, "nbf") > now + self.leeway_s:
            raise Unauthorized("invalid token: not valid yet (nbf)")
        subject = claims["sub"]
        if not isinstance(subject, str) or not is_id(subject.lower()):
            raise Unauthorized("invalid token: sub must be a UUID")
        name = claims.get("name")
        if name is not None and not isinstance(name, str):
            raise Unauthorized("invalid token: name must be a string")
        return Identity(user_id=subject.lower(), name=display_name(name),
                        expires_at=expires_at)


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
         algorithm: str = "HS256") -> str:
    """Sign a development token, as `hubbub token` prints it."""
    claims: dict[str, object] = {"sub": user_id, "iat": int(now), "exp": int(now) + ttl_s}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=algorithm)
