"""The Authenticator (services/authentication.py): one way to read a token for every door,
with the key from the settings or, by `kid`, from a key set."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hubbub.domain.errors import Unauthorized
from hubbub.domain.tokens import TokenVerifier, VerifyingKey
from hubbub.services.authentication import Authenticator

NOW = 1_800_000_000.0
SECRET = "a-shared-secret-that-is-long-enough-for-hs256"


class KeySet:
    """A key set held in memory, as a JWKS endpoint would publish it; records lookups."""

    def __init__(self, keys: dict[str, VerifyingKey]) -> None:
        self.keys = keys
        self.asked: list[str | None] = []

    async def key_for(self, kid: str | None) -> VerifyingKey:
        self.asked.append(kid)
        if kid not in self.keys:
            raise Unauthorized("invalid token: no key in the JWKS for its kid")
        return self.keys[kid]


def es256_pair() -> tuple[ec.EllipticCurvePrivateKey, jwt.PyJWK]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = jwt.PyJWK.from_json(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()),
                                 algorithm="ES256")
    return private, public


def es256(keys: KeySet, *algorithms: str) -> Authenticator:
    verifier = TokenVerifier(key=None, algorithms=algorithms or ("ES256",))
    return Authenticator(verifier, keys, clock=lambda: NOW)


async def refused(authenticator: Authenticator, token: str | None) -> str:
    with pytest.raises(Unauthorized) as caught:
        await authenticator.authenticate(token)
    return caught.value.message


async def test_a_secret_verifies_without_a_key_set() -> None:
    authenticator = Authenticator(TokenVerifier(key=SECRET), clock=lambda: NOW)
    token = jwt.encode({"sub": "auth0|1", "exp": int(NOW) + 60}, SECRET)
    assert (await authenticator.authenticate(token)).user_id == "auth0|1"
    assert await refused(authenticator, None) == "missing token"
    assert await refused(authenticator, "") == "missing token"


async def test_the_kid_picks_the_key_from_the_set() -> None:
    private, public = es256_pair()
    keys = KeySet({"k1": public})
    authenticator = es256(keys)
    token = jwt.encode({"sub": "42", "exp": int(NOW) + 60}, private, algorithm="ES256",
                       headers={"kid": "k1"})
    assert (await authenticator.authenticate(token)).user_id == "42"
    assert keys.asked == ["k1"]
    unknown = jwt.encode({"sub": "42", "exp": int(NOW) + 60}, private, algorithm="ES256",
                         headers={"kid": "k9"})
    assert "kid" in await refused(authenticator, unknown)


async def test_a_borrowed_kid_or_a_bad_header_is_refused() -> None:
    """A token from another key naming a published kid fails its signature; a `kid` that
    is not a string, or a header that is no JSON, is refused before any lookup."""
    _, public = es256_pair()
    stranger, _ = es256_pair()
    keys = KeySet({"k1": public})
    authenticator = es256(keys)
    forged = jwt.encode({"sub": "42", "exp": int(NOW) + 60}, stranger, algorithm="ES256",
                        headers={"kid": "k1"})
    assert "InvalidSignatureError" in await refused(authenticator, forged)
    keys.asked.clear()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "kid": 7}).encode())
    odd_kid = header.decode().rstrip("=") + "." + forged.split(".", 1)[1]
    assert "invalid token" in await refused(authenticator, odd_kid)
    assert "invalid token" in await refused(authenticator, "not-a-jwt")
    assert keys.asked == []


async def test_an_hs256_token_cannot_use_a_key_set_key_as_its_secret() -> None:
    """The key's own algorithm binds it: HS256 `signed` with the public key is refused."""
    _, public = es256_pair()
    authenticator = es256(KeySet({"k1": public}), "ES256", "HS256")
    token = jwt.encode({"sub": "42", "exp": int(NOW) + 60}, SECRET, headers={"kid": "k1"})
    assert "invalid token" in await refused(authenticator, token)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def test_a_token_verified_once_is_known_again_until_it_expires() -> None:
    """A reconnect skips the signature check, never the expiry (with the leeway)."""
    clock = Clock()
    authenticator = Authenticator(TokenVerifier(key=SECRET, leeway_s=5), clock=clock)
    token = jwt.encode({"sub": "u1", "name": "Una", "exp": int(NOW) + 60}, SECRET)
    first = await authenticator.authenticate(token)
    assert await authenticator.authenticate(token) is first  # remembered, not re-read
    clock.now = NOW + 64.9
    assert (await authenticator.authenticate(token)).user_id == "u1"
    clock.now = NOW + 65
    assert await refused(authenticator, token) == "invalid token: expired"


async def test_a_remembered_token_vouches_for_no_other() -> None:
    """Another signature, another claim or a token that failed once is checked in full."""
    authenticator = Authenticator(TokenVerifier(key=SECRET), clock=lambda: NOW)
    token = jwt.encode({"sub": "u1", "exp": int(NOW) + 60}, SECRET)
    await authenticator.authenticate(token)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await refused(authenticator, forged)).startswith("invalid token")
    other = jwt.encode({"sub": "u2", "exp": int(NOW) + 60}, "another-secret-long-enough-for-hs256")
    assert (await refused(authenticator, other)).startswith("invalid token")
    early = jwt.encode({"sub": "u3", "exp": int(NOW) + 60, "nbf": int(NOW) + 30}, SECRET)
    assert await refused(authenticator, early) == "invalid token: not valid yet (nbf)"
    assert await refused(authenticator, early) == "invalid token: not valid yet (nbf)"


async def test_tokens_from_a_key_set_are_checked_every_time() -> None:
    """A key withdrawn from the JWKS refuses the tokens it signed at once."""
    private, public = es256_pair()
    keys = KeySet({"k1": public})
    authenticator = es256(keys)
    token = jwt.encode({"sub": "42", "exp": int(NOW) + 60}, private, algorithm="ES256",
                       headers={"kid": "k1"})
    await authenticator.authenticate(token)
    del keys.keys["k1"]
    assert await refused(authenticator, token) == "invalid token: no key in the JWKS for its kid"
