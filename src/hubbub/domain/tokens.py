"""JWT checks of PROTOCOL.md §1, with the algorithms pinned (RFC 8725)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import jwt

from hubbub.domain.errors import Unauthorized

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_NAME_CHARS = 100


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
        expires_at = claims["exp"]
        if not isinstance(expires_at, int | float) or expires_at + self.leeway_s <= now:
            raise Unauthorized("invalid token: expired")
        not_before = claims.get("nbf")
        if not_before is not None and (not isinstance(not_before, int | float)
                                       or not_before > now + self.leeway_s):
            raise Unauthorized("invalid token: not valid yet (nbf)")
        subject = claims["sub"]
        if not isinstance(subject, str) or not _UUID.match(subject.lower()):
            raise Unauthorized("invalid token: sub must be a UUID")
        name = claims.get("name")
        if name is not None and not isinstance(name, str):
            raise Unauthorized("invalid token: name must be a string")
        if name is not None:
            # U+0000 cannot be stored by PostgreSQL; a display name has no use for it.
            name = name.replace("\x00", "").strip()[:MAX_NAME_CHARS] or None
        return Identity(user_id=subject.lower(), name=name, expires_at=float(expires_at))


def mint(secret: str, user_id: str, name: str | None, *, now: float, ttl_s: int,
         algorithm: str = "HS256") -> str:
    """Sign a development token, as `hubbub token` prints it."""
    claims: dict[str, object] = {"sub": user_id, "iat": int(now), "exp": int(now) + ttl_s}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=algorithm)
