"""The kinds of value a setting takes (config.py's field types): each a type with its bounds
and its check, whose error names what it accepts; and the marks a field may carry (hidden
from output, a unit)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import AfterValidator, Field

from hubbub.redis_url import parse_redis_url
from hubbub.webhooks.signing import parse_secret


@dataclass(frozen=True)
class Hidden:
    """Marks a setting that may hold a credential: `check-config` masks it, an error never
    echoes it, and `<NAME>_FILE` may name a file to read it from (a container secret).
    `whole=False` masks only the password of a URL."""

    whole: bool = True


@dataclass(frozen=True)
class Unit:
    """The unit of a number, for help texts and README's defaults."""

    suffix: str  # written after the number: "30 s", "5/s"
    word: str


class SettingError(ValueError):
    """A value no type check catches (a combination of settings); names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False,
                "yes": True, "no": False}
DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")
# PyJWT's algorithms by the kind of key they verify with; `none` is never accepted.
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
KEY_ALGORITHMS = frozenset(jwt.algorithms.get_default_algorithms()) - HMAC_ALGORITHMS - {"none"}
# What a JWKS is taken to sign with when HUBBUB_JWT_ALGORITHMS does not say.
JWKS_ALGORITHMS = ("RS256", "ES256", "EdDSA")


def _database_url(url: str) -> str:
    if not url.startswith(DATABASE_SCHEMES):
        raise ValueError("a sqlite:///PATH or postgresql://USER@HOST/DB URL")
    return url


def _redis_url(url: str | None) -> str | None:
    if url is not None:
        parse_redis_url(url)  # one server, Sentinel or Cluster (redis_url.py)
    return url


def _public_key(pem: str | None) -> str | None:
    if pem is not None:
        try:
            load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            raise ValueError("a PEM public key (-----BEGIN PUBLIC KEY----- …)") from None
    return pem


def _jwks_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("https://", "http://")):
        raise ValueError("an https:// (or http://) URL of a JSON Web Key Set")
    return url


def _claim(name: str) -> str:
    if not name.strip() or name != name.strip():
        raise ValueError("a claim name, without spaces around it")
    return name


def _networks(entries: tuple[str, ...]) -> tuple[str, ...]:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError("IP addresses or CIDR networks, comma-separated "
                             f"({entry!r} is neither)") from None
    return entries


MIN_API_KEY_CHARS = 32


def _api_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Never echoes a key: an error names only its position."""
    for index, key in enumerate(keys, 1):
        if len(key) < MIN_API_KEY_CHARS:
            raise ValueError(f"keys of at least {MIN_API_KEY_CHARS} characters, "
                             f"comma-separated (key {index} is shorter; `hubbub api-key` "
                             "makes one)")
    return keys


def _base_path(path: str) -> str:
    """A URL path prefix for every route: `/chat`, not `chat`, `/chat/` or `/my chat`."""
    if path == "":
        return path
    if not path.startswith("/") or path.endswith("/"):
        raise ValueError("a path that starts with / and does not end with / (`/chat`), "
                         "or empty for the root")
    if any(char.isspace() or char in "?#{}%\\" for char in path) or "//" in path:
        raise ValueError("a path without spaces, `//`, `?`, `#`, `%`, `{` or `}`")
    return path


def _nonempty(text: str) -> str:
    if not text.strip():
        raise ValueError("a non-empty text")
    return text


# What each kind of setting accepts; a new setting takes one of these, or a plain type
# (`bool` reads switch words, `tuple[str, ...]` comma-separated text, a `Literal` its words).
SECONDS = Unit(" s", "seconds")
PER_SECOND = Unit("/s", "per second")
Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0), SECONDS]
Rate = Annotated[float, Field(gt=0), PER_SECOND]
Text = Annotated[str, AfterValidator(_nonempty)]
Secret = Annotated[str | None, Hidden()]
PublicKey = Annotated[Secret, AfterValidator(_public_key)]
DatabaseUrl = Annotated[str, Hidden(whole=False), AfterValidator(_database_url)]
RedisUrl = Annotated[str | None, Hidden(whole=False), AfterValidator(_redis_url)]
JwksUrl = Annotated[str | None, AfterValidator(_jwks_url)]
Claim = Annotated[str, AfterValidator(_claim)]
BasePath = Annotated[str, AfterValidator(_base_path)]
Leeway = Annotated[float, Field(ge=0, le=3600), SECONDS]
Cooldown = Annotated[float, Field(ge=0, le=3600), SECONDS]
Networks = Annotated[tuple[str, ...], AfterValidator(_networks)]
ApiKeys = Annotated[tuple[str, ...], Hidden(), AfterValidator(_api_keys)]
def _webhook_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError("an http:// or https:// URL")
    return url


def _webhook_secret(secret: str | None) -> str | None:
    if secret is not None:
        parse_secret(secret)
    return secret


WebhookUrl = Annotated[str | None, Hidden(whole=False), AfterValidator(_webhook_url)]
WebhookSecret = Annotated[Secret, AfterValidator(_webhook_secret)]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "text"]
