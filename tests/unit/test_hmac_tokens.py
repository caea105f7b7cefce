"""The quick path for HMAC tokens (domain/hmac_tokens.py) is never looser than PyJWT: what
it accepts, PyJWT accepts with the same claims; whatever PyJWT refuses, it leaves alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hubbub.domain.errors import Unauthorized
from hubbub.domain.hmac_tokens import HmacTokens
from hubbub.domain.tokens import TokenVerifier

SECRET = "a-shared-secret-that-is-long-enough-for-hs512-signatures-too-0123456789"
CLAIMS: dict[str, Any] = {"sub": "alice", "exp": 1_900_000_000, "name": "Alice"}
ALGORITHMS = ("HS256", "HS384")


def quick(issuer: str | None = None, audience: str | None = None) -> HmacTokens:
    return HmacTokens(SECRET, ALGORITHMS, required=("exp", "sub"), issuer=issuer,
                      audience=audience)


def pyjwt_claims(token: str, issuer: str | None = None,
                 audience: str | None = None) -> dict[str, Any] | None:
    """What PyJWT makes of a token under the verifier's options; None if it refuses."""
    try:
        decoded: dict[str, Any] = jwt.decode(
            token, SECRET, algorithms=list(ALGORITHMS), issuer=issuer, audience=audience,
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False, "verify_aud": audience is not None,
                     "verify_iss": issuer is not None})
    except jwt.PyJWTError:
        return None
    return decoded


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_signed(header: Any, claims: Any, key: str = SECRET) -> str:
    """A token built by hand, so that headers and payloads PyJWT would not write are possible."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    digest = hmac.digest(key.encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{segment(digest)}"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_plain_token_is_accepted_with_pyjwts_claims(algorithm: str) -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm=algorithm, headers={"kid": "k1"})
    assert quick().claims(token) == pyjwt_claims(token) == CLAIMS


def test_an_algorithm_off_the_list_is_left_to_pyjwt() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS512")
    assert quick().claims(token) is None
    assert pyjwt_claims(token) is None


def test_no_single_character_change_gets_through() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    checker = quick()
    assert checker.claims(token) == CLAIMS  # its header is remembered from here on
    for position in range(len(token)):
        for replacement in ("A", "B", "_", "-", ".", "=", "é"):
            if token[position] != replacement:
                changed = token[:position] + replacement + token[position + 1:]
                assert checker.claims(changed) is None, changed
                assert pyjwt_claims(changed) is None, changed


def test_spare_bits_in_the_signature_are_refused_as_pyjwt_refuses_them() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    # A 32-byte HMAC spells 43 characters whose last carries 2 spare bits.
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    changed = token[:-1] + twin
    assert quick().claims(changed) is None
    assert pyjwt_claims(changed) is None


@pytest.mark.parametrize(("header", "claims"), [
    ({"alg": "HS256", "crit": ["exp"]}, CLAIMS),
    ({"alg": "HS256", "b64": False, "crit": ["b64"]}, CLAIMS),
    ({"alg": "HS256", "kid": 7}, CLAIMS),
    ({"alg": ["HS256"]}, CLAIMS),
    ({"alg": "none"}, CLAIMS),
    (["alg", "HS256"], CLAIMS),
    ({"alg": "HS256"}, [CLAIMS]),
    ({"alg": "HS256"}, "alice"),
    ({"alg": "HS256"}, {"sub": "alice"}),
    ({"alg": "HS256"}, {"sub": None, "exp": 1_900_000_000}),
    ({"alg": "HS256"}, b"{not json"),
])
def test_an_odd_token_is_left_to_pyjwt(header: Any, claims: Any) -> None:
    token = hand_signed(header, claims)
    assert quick().claims(token) is None
    assert pyjwt_claims(token) is None


def test_a_padded_token_is_left_to_pyjwt_which_may_accept_it() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    padded = token + "=" * (-len(token.rpartition(".")[2]) % 4)  # the signature's padding
    assert padded != token
    assert quick().claims(padded) is None
    assert TokenVerifier(key=SECRET).verify(padded, now=1_800_000_000).user_id == "alice"


@pytest.mark.parametrize(("aud", "accepted"), [
    ("chat", True), (["web", "chat"], True), ("web", False), (["web"], False),
    ([], False), (["chat", 7], False), (7, False), (None, False)])
def test_the_audience_is_matched_as_pyjwt_matches_it(aud: Any, accepted: bool) -> None:
    claims = dict(CLAIMS, aud=aud) if aud is not None else CLAIMS
    token = hand_signed({"alg": "HS256", "typ": "JWT"}, claims)
    expected = claims if accepted else None
    assert quick(audience="chat").claims(token) == expected
    assert pyjwt_claims(token, audience="chat") == expected


@pytest.mark.parametrize(("iss", "accepted"), [
    ("https://id.example", True), ("https://other.example", False), (7, False), (None, False)])
def test_the_issuer_is_matched_as_pyjwt_matches_it(iss: Any, accepted: bool) -> None:
    claims = dict(CLAIMS, iss=iss) if iss is not None else CLAIMS
    token = hand_signed({"alg": "HS256"}, claims)
    expected = claims if accepted else None
    assert quick(issuer="https://id.example").claims(token) == expected
    assert pyjwt_claims(token, issuer="https://id.example") == expected


def test_another_secret_is_refused() -> None:
    token = hand_signed({"alg": "HS256"}, CLAIMS, key=SECRET + "x")
    assert quick().claims(token) is None
    assert pyjwt_claims(token) is None


def test_a_public_key_is_no_hmac_secret_and_takes_no_quick_path() -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key() \
        .public_bytes(serialization.Encoding.PEM,
                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(jwt.InvalidKeyError):
        HmacTokens(pem, ("HS256",), required=(), issuer=None, audience=None)
    verifier = TokenVerifier(key=pem, algorithms=("RS256",))
    assert verifier._hmac is None


@pytest.mark.parametrize(("payload", "accepted"), [
    (b'{"sub": "alice", "exp": 1900000000, "score": NaN}', True),
    (b'{"sub": "alice", "exp": 1900000000, "score": Infinity}', True),
    (b'\xef\xbb\xbf{"sub": "alice", "exp": 1900000000}', True),  # a UTF-8 byte order mark
    (b'{"sub": "alice", "exp": 1900000000, "name": "\xed\xa0\x80"}', True),  # a lone surrogate
    (b'{"sub": "alice", "exp": 1e400}', False),  # read as infinity: no time
])
def test_json_that_the_fast_reader_refuses_is_left_to_pyjwt(payload: bytes,
                                                            accepted: bool) -> None:
    """Where the quick path's JSON reader and `json.loads` (PyJWT's) part ways, the quick
    path says nothing, and the verifier's answer is PyJWT's."""
    token = hand_signed({"alg": "HS256"}, payload)
    assert quick().claims(token) is None
    assert pyjwt_claims(token) is not None  # PyJWT reads every one of them
    verifier = TokenVerifier(key=SECRET)
    if accepted:
        assert verifier.verify(token, now=1_800_000_000).user_id == "alice"
    else:
        with pytest.raises(Unauthorized, match="exp"):
            verifier.verify(token, now=1_800_000_000)


def test_a_header_is_remembered_only_once_a_token_with_it_is_correctly_signed() -> None:
    checker = quick()
    header = {"alg": "HS256", "kid": "rotated"}
    forged = hand_signed(header, CLAIMS, key=SECRET + "x")
    assert checker.claims(forged) is None
    assert checker._signed_headers == {}
    signed = hand_signed(header, CLAIMS)
    assert checker.claims(signed) == CLAIMS
    assert list(checker._signed_headers.values()) == ["HS256"]
    assert checker.claims(forged) is None  # a remembered header vouches for no signature
    other_claims = hand_signed(header, dict(CLAIMS, sub="mallory"), key=SECRET + "x")
    assert checker.claims(other_claims) is None


def test_no_more_than_a_handful_of_headers_are_remembered() -> None:
    checker = quick()
    tokens = [hand_signed({"alg": "HS256", "kid": f"k{n}"}, CLAIMS) for n in range(100)]
    assert all(checker.claims(token) == CLAIMS for token in tokens)
    assert len(checker._signed_headers) == 64
    assert all(checker.claims(token) == CLAIMS for token in tokens)  # the rest still parsed
