"""Settings from `HUBBUB_*` environment variables (each also a `serve` flag)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hubbub.domain.ratelimit import BucketRule


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite:///./hubbub.db"
    redis_url: str | None = None
    redis_prefix: str = "hubbub"
    # With Redis: an instance that stops refreshing its heartbeat for this long (it crashed)
    # no longer counts its users' connections, so presence reports them offline.
    presence_ttl: float = 30.0
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "json"
    # PROTOCOL.md §1 defaults.
    max_frame_bytes: int = 64 * 1024
    max_pending_bytes: int = 4 * 1024 * 1024
    heartbeat_interval: float = 25.0
    heartbeat_timeout: float = 60.0
    call_ring_timeout: float = 45.0
    # A typing indicator not refreshed for this long ends with UserTyping{is_typing:false}.
    typing_timeout: float = 6.0
    # PROTOCOL.md §6 defaults.
    rate_limits: bool = True
    send_rate: float = 5.0
    send_burst: int = 20
    other_rate: float = 50.0
    other_burst: int = 100
    max_connections_per_user: int = 20
    handshake_rate: float = 20.0
    handshake_burst: int = 20
    max_body_bytes: int = 256 * 1024
    shutdown_grace: float = 10.0
    # Connections the kernel queues for accept() while the server is busy; past it, a SYN is
    # dropped and the client retries only after 1, 3, 7… s. The kernel caps it at
    # net.core.somaxconn (4096 since Linux 5.4), so more needs that sysctl raised too.
    listen_backlog: int = 4096
    # A connection must send a complete request head within this many seconds of opening or
    # of its previous response (aiohttp's keep-alive timeout), or it is closed.
    request_timeout: float = 10.0
    # Connections one client IP may hold that have not sent a complete request head yet;
    # more are closed at once. Trusted proxies are exempt (they enforce their own).
    max_half_open_per_ip: int = 128
    auto_migrate: bool = True
    trusted_proxies: tuple[str, ...] = field(default=())

    @property
    def send_rule(self) -> BucketRule:
        return BucketRule(self.send_rate, self.send_burst)

    @property
    def other_rule(self) -> BucketRule:
        return BucketRule(self.other_rate, self.other_burst)

    @property
    def handshake_rule(self) -> BucketRule:
        return BucketRule(self.handshake_rate, self.handshake_burst)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read `HUBBUB_<FIELD>` for every field; explicit overrides win."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("HUBBUB_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_secret(self) -> tuple[Settings, bool]:
        """Fill in a development secret (saved beside the database) when none is set.

        Returns the settings and whether the secret was generated here.
        """
        if self.jwt_secret or self.jwt_public_key:
            return self, False
        path = dev_secret_path(self.database_url)
        if path.exists():
            secret = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            secret = secrets.token_urlsafe(32)
            path.write_text(secret + "\n")
            path.chmod(0o600)
        return replace(self, jwt_secret=secret), True


def dev_secret_path(database_url: str) -> Path:
    """Where the generated development secret lives: beside the SQLite file (or in ./)."""
    if database_url.startswith("sqlite") and "///" in database_url:
        db = Path(database_url.split("///", 1)[1])
        if str(db) not in ("", ":memory:"):
            return db.with_name(db.name + ".jwt-secret")
    return Path(".hubbub-jwt-secret")


def _parse(name: str, kind: str, raw: str) -> Any:
    if "bool" in kind:
        return raw.strip().lower() not in ("0", "false", "no", "off")
    if "tuple" in kind:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw
