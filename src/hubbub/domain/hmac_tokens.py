"""HMAC-signed tokens (HS256/384/512) of the usual shape, verified in a few C calls.

PyJWT spends ~36 µs on one HS256 token: most of it checks every byte of each segment
against the base64url alphabet in a Python loop and screens the key for PEM, DER and JWK
shapes again on every call. That was a fifth of a connection's handshake (bench: the
connect path). Here the key is screened once, by PyJWT, when the verifier is built, and a
token is checked by one regular expression, one HMAC and its claims' small JSON document
(the header's, the same on every token of a backend, is read once): ~5 µs.

This path only ever says yes. A token it does not fully accept, for whatever reason (an
odd header, a bad signature, a claim missing or mismatched), gets None, and PyJWT then
decides and names the error, so a refusal reads exactly as before.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable
from typing import Any

import msgspec
from jwt.algorithms import HMACAlgorithm

_decode_json = msgspec.json.Decoder().decode
_HASHES = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}
HMAC_ALGORITHMS = frozenset(_HASHES)
# Three unpadded base64url segments and nothing else (ASCII only).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# How many distinct signed headers are remembered (one per `kid` and algorithm in use).
_SIGNED_HEADERS_KEPT = 64
# The header members a backend's HMAC token carries; any other (`crit`, `b64`, `jku`, …)
# is left to PyJWT's rules.
_PLAIN_HEADER = frozenset({"alg", "typ", "kid"})


class HmacTokens:
    """Accepts the tokens `key` signed with one of `algorithms` (the HMAC ones among them),
    whose claims hold `required`, and `issuer` and `audience` where they are set."""

    def __init__(self, key: str, algorithms: Iterable[str], *, required: Iterable[str],
                 issuer: str | None, audience: str | None) -> None:
        """Raises:
            jwt.InvalidKeyError: `key` is an asymmetric key, a certificate or a JWK (PyJWT's
                own screening), which must not serve as an HMAC secret.
        """
        secret = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
        # One keyed HMAC per algorithm, copied for each token: `hmac.digest` sets the key
        # up again every time and gives up the GIL, which is slow to get back while
        # another thread runs (aiosqlite's): ~1 ms a call beside a busy thread, 1.6 µs alone.
        self._macs = {alg: hmac.new(secret, digestmod=_HASHES[alg])
                      for alg in algorithms if alg in _HASHES}
        self._required = tuple(required)
        self._issuer = issuer
        self._audience = audience
        # Header segments already seen on a correctly signed token, with their `alg`: a
        # backend's tokens share one or a few, so each is parsed once. Only the key's
        # holder can add one, and no more than a handful are kept.
        self._signed_headers: dict[str, str] = {}

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token accepted outright; None leaves it to PyJWT."""
        if not _COMPACT.fullmatch(token):
            return None
        signing_input, _, signature = token.rpartition(".")
        header_segment, _, payload_segment = signing_input.partition(".")
        alg = known = self._signed_headers.get(header_segment)
        if alg is None and (alg := self._alg_of(header_segment)) is None:
            return None
        mac = self._macs[alg].copy()
        mac.update(signing_input.encode())
        if not hmac.compare_digest(_encode(mac.digest()), signature.encode()):
            return None
        if known is None and len(self._signed_headers) < _SIGNED_HEADERS_KEPT:
            self._signed_headers[header_segment] = alg
        claims = _json_object(payload_segment)
        if claims is None or not self._holds_claims(claims):
            return None
        return claims

    def _alg_of(self, header_segment: str) -> str | None:
        """A plain header's `alg`, if it is one of ours; else None."""
        header = _json_object(header_segment)
        if header is None or not header.keys() <= _PLAIN_HEADER:
            return None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._macs:
            return None
        return alg if isinstance(header.get("kid", ""), str) else None

    def _holds_claims(self, claims: dict[str, Any]) -> bool:
        """PyJWT's `require`, `iss` and `aud` rules, as `jwt.decode` applies them."""
        if any(claims.get(claim) is None for claim in self._required):
            return False
        if self._issuer is not None and claims.get("iss") != self._issuer:
            return False
        if self._audience is None:
            return True
        audience = claims.get("aud")
        if isinstance(audience, str):
            audience = [audience]
        return (isinstance(audience, list) and all(isinstance(a, str) for a in audience)
                and self._audience in audience)


def _encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json_object(segment: str) -> dict[str, Any] | None:
    """A segment's JSON object; None unless it is one, in canonical base64url."""
    if len(segment) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        # Spare bits set in the last character spell the same bytes another way; PyJWT
        # refuses such a segment, and so does this path.
        if _encode(data) != segment.encode():
            return None
        # msgspec reads what `json.loads` reads, ~7× faster; where the two differ it
        # refuses (NaN, Infinity, a UTF-8 BOM, surrogates), and PyJWT then decides.
        value = _decode_json(data)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
