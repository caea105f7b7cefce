"""Token verification (PROTOCOL.md §1): pinned algorithms, required claims, expiry against
the clock the caller passes in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hubbub.domain.errors import Unauthorized
from hubbub.domain.names import MAX_NAME_CHARS
from hubbub.domain.tokens import MAX_EPOCH_S, TokenVerifier, mint

SECRET = "a-shared-secret-that-is-long-enough-for-hs256"
SUB = "6f1c2a9e-3b7d-4c55-9a1e-0d2f4b6c8a10"
NOW = 1_800_000_000.0


def sign(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256",
         headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def valid(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": SUB, "exp": int(NOW) + 60, "iat": int(NOW)}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


VERIFIER = TokenVerifier(key=SECRET)


def refused(token: str, verifier: TokenVerifier = VERIFIER, now: float = NOW) -> str:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token, now=now)
    assert caught.value.code == "UNAUTHORIZED"
    assert caught.value.http_status == 401
    return caught.value.message


def test_a_valid_token_names_its_user() -> None:
    """`sub`, `name` and `exp` come back as the identity."""
    identity = VERIFIER.verify(sign(valid(name="alice")), now=NOW)
    assert identity.user_id == SUB
    assert identity.name == "alice"
    assert identity.expires_at == NOW + 60


def test_mint_makes_tokens_the_verifier_accepts() -> None:
    """`hubbub token` output verifies, with the name when one is given."""
    token = mint(SECRET, SUB, "bob", now=NOW, ttl_s=30)
    identity = VERIFIER.verify(token, now=NOW)
    assert (identity.user_id, identity.name, identity.expires_at) == (SUB, "bob", NOW + 30)
    assert VERIFIER.verify(mint(SECRET, SUB, None, now=NOW, ttl_s=30), now=NOW).name is None


def test_an_upper_case_sub_is_normalised() -> None:
    """Ids are lowercase on the wire (§2), whatever case the issuer used."""
    assert VERIFIER.verify(sign(valid(sub=SUB.upper())), now=NOW).user_id == SUB


def test_expiry_is_checked_against_the_given_clock() -> None:
    """A token is valid strictly before `exp` and refused from `exp` on."""
    token = sign(valid(exp=int(NOW) + 10))
    assert VERIFIER.verify(token, now=NOW + 9.999).user_id == SUB
    assert "expired" in refused(token, now=NOW + 10)
    assert "expired" in refused(token, now=NOW + 3600)


def test_leeway_extends_expiry() -> None:
    """A configured leeway tolerates clock skew past `exp`."""
    lenient = TokenVerifier(key=SECRET, leeway_s=30)
    token = sign(valid(exp=int(NOW)))
    identity = lenient.verify(token, now=NOW + 29)
    assert identity.user_id == SUB
    assert identity.expires_at == NOW + 30  # the connection is closed past the leeway too
    refused(token, lenient, now=NOW + 30)


def test_leeway_lets_an_early_nbf_in() -> None:
    """`nbf` a little ahead of our clock is the issuer's clock running fast."""
    lenient = TokenVerifier(key=SECRET, leeway_s=30)
    token = sign(valid(nbf=int(NOW) + 20))
    assert lenient.verify(token, now=NOW).user_id == SUB
    assert "nbf" in refused(token, now=NOW)
    assert "nbf" in refused(sign(valid(nbf=int(NOW) + 31)), lenient)


@pytest.mark.parametrize("claim", ["exp", "sub"])
def test_required_claims(claim: str) -> None:
    """`exp` and `sub` are required."""
    claims = valid()
    del claims[claim]
    refused(sign(claims))


@pytest.mark.parametrize("sub", ["", "x" * 129, "auth0|a b", "tab\tid", "nul\x00id", "é",
                                 "del\x7f", True, 4.5, None, ["a"], {"id": 1}])
def test_sub_must_be_a_user_id(sub: Any) -> None:
    """A `sub` that is no user id of §2 (1–128 printable ASCII characters without spaces,
    or an integer) is refused, naming the claim."""
    claims = valid()
    claims["sub"] = sub
    message = refused(sign(claims))
    assert "sub" in message, message


@pytest.mark.parametrize("sub", ["alice", "auth0|5f7c8ec7c33c6c004bbafe82",
                                 "Kq9sTlq0bXhYdZ3uVn1aR7cP2eW8", "user_2abcDEFghiJKL",
                                 "6f1c2a9e3b7d4c559a1e0d2f4b6c8a10", "x" * 128, "!~"])
def test_backend_subjects_are_user_ids_as_they_are(sub: str) -> None:
    """Auth0, Firebase and Clerk subjects, and any other id, are kept exactly (case too)."""
    assert VERIFIER.verify(sign(valid(sub=sub)), now=NOW).user_id == sub


def test_an_integer_user_id_becomes_its_decimal_string() -> None:
    """Django's primary keys: `{"user_id": 42}` is the user "42"."""
    django = TokenVerifier(key=SECRET, user_claim="user_id")
    claims = valid(user_id=42, sub=None)
    assert django.verify(sign(claims), now=NOW).user_id == "42"
    assert VERIFIER.verify(sign(valid(sub=10**30)), now=NOW).user_id == str(10**30)
    assert VERIFIER.verify(sign(valid(sub=0)), now=NOW).user_id == "0"


def test_the_user_and_name_claims_are_configurable() -> None:
    """The claims named by the settings are read, and the user claim is then required."""
    verifier = TokenVerifier(key=SECRET, user_claim="uid", name_claim="username")
    identity = verifier.verify(sign(valid(uid="u-1", username="carol", sub=None)), now=NOW)
    assert (identity.user_id, identity.name) == ("u-1", "carol")
    assert "uid" in refused(sign(valid()), verifier)
    assert "username" in refused(sign(valid(uid="u-1", username=5)), verifier)


@pytest.mark.parametrize("token_type", ["refresh", "Access", "", 1, "sliding"])
def test_a_token_type_other_than_access_is_refused(token_type: Any) -> None:
    """SimpleJWT marks its tokens: a refresh token must not open a connection."""
    assert "token_type" in refused(sign(valid(token_type=token_type)))


def test_an_access_token_type_is_accepted() -> None:
    assert VERIFIER.verify(sign(valid(token_type="access")), now=NOW).user_id == SUB


@pytest.mark.parametrize("exp", ["tomorrow", None])
def test_exp_must_be_a_number(exp: Any) -> None:
    """A non-numeric `exp` is refused, as is a missing one."""
    claims = valid()
    claims["exp"] = exp
    if exp is None:
        del claims["exp"]
    refused(sign(claims))


def test_a_wrong_signature_is_refused() -> None:
    """A token signed with another secret is refused."""
    refused(sign(valid(), key="another-secret-that-is-long-enough-for-hs256"))


def test_a_tampered_payload_is_refused() -> None:
    """Changing the payload after signing breaks the signature."""
    header, _, signature = sign(valid()).split(".")
    other = sign(valid(sub="11111111-2222-4333-8444-555555555555")).split(".")[1]
    refused(f"{header}.{other}.{signature}")


def test_alg_none_is_refused() -> None:
    """An unsigned token is never accepted (RFC 8725 §3.1)."""
    refused(jwt.encode(valid(), "", algorithm="none"))


def test_an_algorithm_off_the_list_is_refused() -> None:
    """Only the configured algorithms verify: HS512 is refused when HS256 is pinned."""
    long_secret = SECRET * 2
    refused(sign(valid(), key=long_secret, algorithm="HS512"),
            TokenVerifier(key=long_secret))


def test_an_issued_at_in_the_future_is_accepted() -> None:
    """`iat` is informational: an issuer whose clock runs ahead still mints usable tokens."""
    assert VERIFIER.verify(sign(valid(iat=int(NOW) + 5)), now=NOW).user_id == SUB


def test_only_the_given_clock_counts() -> None:
    """Verification uses `now` alone, never the machine's clock: a token valid in 2027 is
    valid when `now` says 2027, and expired when `now` is past its `exp`."""
    token = sign(valid(iat=int(NOW), nbf=int(NOW)))
    assert VERIFIER.verify(token, now=NOW).user_id == SUB
    refused(token, now=NOW + 61)


def test_not_before_is_honoured_against_the_given_clock() -> None:
    """A token used before its `nbf` is refused; from `nbf` on (or within leeway) it is
    valid."""
    token = sign(valid(nbf=int(NOW) + 10))
    assert "nbf" in refused(token, now=NOW)
    assert VERIFIER.verify(token, now=NOW + 10).user_id == SUB
    assert TokenVerifier(key=SECRET, leeway_s=15).verify(token, now=NOW).user_id == SUB
    refused(sign(valid(nbf="soon")))


@pytest.mark.parametrize("claim", ["exp", "nbf"])
@pytest.mark.parametrize("value", [1e308, float("nan"), float("inf"), float("-inf"),
                                   10**400, 2**53, -1, True, "soon"], ids=repr)
def test_a_time_claim_out_of_range_is_refused_naming_it(claim: str, value: object) -> None:
    """`exp` and `nbf` are numbers from 0 to 9999-12-31: NaN, infinities, huge integers
    and floats, negatives, booleans and strings are refused, naming the claim."""
    assert refused(sign(valid(**{claim: value}))).startswith(f"invalid token: {claim} ")


def test_the_last_time_claim_in_range_is_accepted() -> None:
    """`exp` at 9999-12-31T23:59:59Z is far off but valid."""
    identity = VERIFIER.verify(sign(valid(exp=MAX_EPOCH_S)), now=NOW)
    assert identity.expires_at == MAX_EPOCH_S


def test_a_sub_is_matched_whole() -> None:
    """A user id followed by a newline is refused (`$` alone would match before it)."""
    assert "sub" in refused(sign(valid(sub=SUB + "\n")))


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "a.b", "....."])
def test_malformed_tokens_are_refused(token: str) -> None:
    """Garbage is Unauthorized, never another exception."""
    refused(token)


def test_the_name_is_trimmed_and_bounded() -> None:
    """Display names are stripped, cut to 100 characters, and blank means none."""
    long = VERIFIER.verify(sign(valid(name="  " + "n" * 150 + "  ")), now=NOW)
    assert long.name == "n" * MAX_NAME_CHARS
    assert VERIFIER.verify(sign(valid(name="   ")), now=NOW).name is None


def test_a_name_that_is_not_a_string_is_refused() -> None:
    """`name` must be a string when present."""
    refused(sign(valid(name=["alice"])))


def test_issuer_and_audience_are_checked_when_configured() -> None:
    """With `iss`/`aud` configured, tokens must carry the matching claims."""
    strict = TokenVerifier(key=SECRET, issuer="https://auth.example", audience="hubbub")
    good = sign(valid(iss="https://auth.example", aud="hubbub"))
    assert strict.verify(good, now=NOW).user_id == SUB
    refused(sign(valid(iss="https://evil.example", aud="hubbub")), strict)
    refused(sign(valid(iss="https://auth.example", aud="other")), strict)
    refused(sign(valid(aud="hubbub")), strict)
    refused(sign(valid(iss="https://auth.example")), strict)


def test_issuer_and_audience_are_ignored_when_not_configured() -> None:
    """Without configuration, `iss` and `aud` claims do not matter."""
    assert VERIFIER.verify(sign(valid(iss="x", aud="y")), now=NOW).user_id == SUB


def _pem_public(private: Any) -> str:
    public: bytes = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public.decode()


def test_rs256_with_a_public_key() -> None:
    """RS256 tokens verify against the issuer's public key; other keys are refused."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = TokenVerifier(key=_pem_public(private), algorithms=("RS256",))
    assert verifier.verify(sign(valid(), key=private, algorithm="RS256"), now=NOW).user_id == SUB
    refused(sign(valid(), key=stranger, algorithm="RS256"), verifier)


def test_es256_with_a_public_key() -> None:
    """ES256 tokens verify against the issuer's public key."""
    private = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier(key=_pem_public(private), algorithms=("ES256",))
    assert verifier.verify(sign(valid(), key=private, algorithm="ES256"), now=NOW).user_id == SUB


def test_an_hmac_token_signed_with_the_public_key_is_refused() -> None:
    """Algorithm confusion: an HS256 token keyed with the RSA public key is refused."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = _pem_public(private)
    verifier = TokenVerifier(key=public, algorithms=("RS256",))
    header = base64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = base64url(json.dumps(valid()).encode())
    signature = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    refused(f"{header}.{payload}.{base64url(signature.digest())}", verifier)


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_nul_in_the_name_is_dropped() -> None:
    """U+0000 cannot be stored; it is removed from the display name."""
    assert VERIFIER.verify(sign(valid(name="al\u0000ice")), now=NOW).name == "alice"
    assert VERIFIER.verify(sign(valid(name="\u0000")), now=NOW).name is None
