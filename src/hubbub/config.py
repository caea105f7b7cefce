"""Settings: the one typed, frozen object every part of hubbub reads.

Each field is a `HUBBUB_<NAME>` variable, a `--<name>` flag and a key of the config file
(`hubbub.settings` reads them, in that order of precedence). Its type says what it accepts,
its description feeds `--help`, `hubbub check-config` and README's table: adding a setting
is one line here. `Settings(**values)` validates the same way, for tests and embedders.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hubbub.delivery.repair import CHECK_INTERVAL_S
from hubbub.domain.ratelimit import BucketRule
from hubbub.setting_types import (
    HMAC_ALGORITHMS,
    JWKS_ALGORITHMS,
    KEY_ALGORITHMS,
    SWITCH_WORDS,
    ApiKeys,
    BasePath,
    Claim,
    Cooldown,
    Count,
    DatabaseUrl,
    Hidden,
    JwksUrl,
    Leeway,
    LogFormat,
    LogLevel,
    Networks,
    Port,
    PublicKey,
    Rate,
    RedisUrl,
    Seconds,
    Secret,
    SettingError,
    Text,
    Unit,
    WebhookSecret,
    WebhookUrl,
)


class Settings(BaseModel):
    """Every setting; `Settings()` is the defaults. An unknown name is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: Text = Field("127.0.0.1", description="address to listen on")
    port: Port = Field(8080, description="one port for `/ws`, REST, health and metrics")
    workers: Count = Field(1, description="server processes sharing `HUBBUB_PORT` "
                           "(`SO_REUSEPORT`), one per core; more than 1 needs PostgreSQL "
                           "and Redis")
    database_url: DatabaseUrl = Field("sqlite:///./hubbub.db", description="`sqlite:///PATH` "
                                      "or `postgresql://USER@HOST/DB`")
    redis_url: RedisUrl = Field(None, description="`redis://…` for many instances "
                                "(`redis+sentinel://…/MASTER` or `redis+cluster://…` for "
                                "highly available Redis); unset: in-memory bus and limits")
    redis_prefix: Text = Field("hubbub", description="prefix of every Redis key and channel")
    presence_ttl: Seconds = Field(30.0, description="with Redis: an instance that stops "
                                  "refreshing its heartbeat this long (it crashed) no longer "
                                  "counts its users' connections")
    repair_check_interval: Seconds = Field(CHECK_INTERVAL_S, description="with Redis: how "
                                           "often each instance compares the stored versions "
                                           "of its subscribed conversations with what it "
                                           "delivered, to repair what the bus lost")
    inbox: bool = Field(True, description="every connection hears about all of its user's "
                        "conversations without joining them (PROTOCOL.md §4.1); `off`: "
                        "only about those it joined")
    jwt_secret: Secret = Field(None, description="HS256 shared secret your backend signs "
                               "tokens with (required, or a public key, outside dev mode)")
    jwt_public_key: PublicKey = Field(None, description="PEM public key for RS256/ES256 (set "
                                      "`HUBBUB_JWT_ALGORITHMS`)")
    jwt_algorithms: tuple[str, ...] = Field(("HS256",), description="accepted algorithms, "
                                            "comma-separated (`none` never is)")
    jwt_issuer: str | None = Field(None, description="`iss` every token must carry")
    jwt_audience: str | None = Field(None, description="`aud` every token must carry")
    jwt_jwks_url: JwksUrl = Field(None, description="your backend's JWKS (e.g. "
                                  "`https://…/.well-known/jwks.json`): each token's key is "
                                  "picked by its `kid` (instead of a secret or public key; "
                                  "the algorithms default to RS256, ES256, EdDSA)")
    jwt_jwks_lifespan: Seconds = Field(300.0, description="how long a fetched JWKS is used "
                                       "before it is fetched again")
    jwt_jwks_cooldown: Cooldown = Field(30.0, description="a token naming a `kid` not in "
                                        "the JWKS fetches it again, at most once per this")
    jwt_user_claim: Claim = Field("sub", description="the claim holding the user id (a "
                                  "string, or an integer: `user_id` for Django SimpleJWT)")
    jwt_name_claim: Claim = Field("name", description="the claim holding the display name")
    jwt_leeway: Leeway = Field(0.0, description="clock skew allowed on `exp` and `nbf`")
    allowed_origins: tuple[str, ...] = Field((), description="comma-separated `Origin`s "
                                             "allowed to open `/ws` and to read the REST "
                                             "API (CORS), `*` for any; unset: any for "
                                             "`/ws`, none for CORS")
    base_path: BasePath = Field("", description="serve every route under this prefix "
                                "(`/chat`: `/chat/ws`, `/chat/api/v1/…`, `/chat/healthz`, "
                                "the client at `/chat/`); unset: the root")
    log_level: LogLevel = Field("info", description="`debug`, `info`, `warning` or `error`")
    log_format: LogFormat = Field("json", description="`json` lines or `text` (`TIME LEVEL "
                                  "LOGGER EVENT key=value …`), on stderr")
    access_log: bool = Field(False, description="log every HTTP request: method, path "
                             "without query, status, duration, request id")
    dev: bool = Field(False, description="development mode: without a JWT secret, generate "
                      "one beside the database (`make run` sets it)")
    # PROTOCOL.md §1 defaults.
    max_frame_bytes: Count = Field(64 * 1024, description="larger frames close the "
                                   "connection with 1009")
    max_pending_bytes: Count = Field(4 * 1024 * 1024, description="unsent bytes before a "
                                     "slow consumer is closed with 4008")
    heartbeat_interval: Seconds = Field(25.0, description="how often the server pings")
    heartbeat_timeout: Seconds = Field(60.0, description="a peer silent this long is "
                                       "closed with 1011")
    call_ring_timeout: Seconds = Field(45.0, description="unanswered calls end with "
                                       '`reason:"timeout"`')
    typing_timeout: Seconds = Field(6.0, description="a typing indicator not refreshed this "
                                    "long ends with `is_typing:false`")
    # PROTOCOL.md §6 defaults.
    rate_limits: bool = Field(True, description="`off` disables every limit (load tests "
                              "only; the server warns)")
    send_rate: Rate = Field(5.0, description="`SendMessage`/`EditMessage` per user")
    send_burst: Count = Field(20, description="… and their burst")
    other_rate: Rate = Field(50.0, description="every other action per user")
    other_burst: Count = Field(100, description="… and its burst")
    max_connections_per_user: Count = Field(20, description="open WebSockets per user")
    # Each new conversation can put its creator's name in front of up to 1000 people, so a
    # bucket refilling 30 an hour; a burst of 30 lets someone set up a team's rooms at once.
    conversations_per_hour: Annotated[float, Field(gt=0)] = Field(
        30.0, description="new conversations per user and hour (opening an existing direct "
        "one is free)")
    conversation_burst: Count = Field(30, description="… and their burst")
    handshake_rate: Rate = Field(20.0, description="upgrades per client IP")
    handshake_burst: Count = Field(20, description="… and their burst")
    # Search (docs/DECISIONS.md, "Search cost"), per instance: searches running at once, on
    # a pool of their own; the time one may take; the messages one may examine.
    search_concurrency: Count = Field(2, description="searches running at once per "
                                      "instance, on a database pool of their own")
    search_timeout: Seconds = Field(2.0, description="the time one search may take; past it "
                                    "it answers what it found, `truncated`")
    search_scan_limit: Count = Field(50_000, description="messages one search may examine")
    search_rank_window: Count = Field(2000, description="matches a `words` search ranks: "
                                      "the newest in scope, a window at a time")
    max_body_bytes: Count = Field(256 * 1024, description="larger HTTP bodies get 413")
    shutdown_grace: Seconds = Field(10.0, description="SIGTERM: time to finish requests "
                                    "and close with 1001")
    # Past the accept queue a SYN is dropped and the client retries only after 1, 3, 7… s.
    # The kernel caps it at net.core.somaxconn (4096 since Linux 5.4).
    listen_backlog: Count = Field(4096, description="connections the kernel queues for "
                                  "accept() (capped by `net.core.somaxconn`)")
    request_timeout: Seconds = Field(10.0, description="a connection must send a complete "
                                     "request head within this time of opening or of its "
                                     "previous response, or it is closed")
    max_half_open_per_ip: Count = Field(128, description="connections one client IP may "
                                        "hold before sending a complete request head "
                                        "(trusted proxies are exempt)")
    auto_migrate: bool = Field(True, description="`serve` brings the schema up to date at "
                               "start")
    trusted_proxies: Networks = Field((), description="peers (addresses or CIDR networks) "
                                      "whose `X-Forwarded-For` is read: the rightmost hop "
                                      "not among them is the client IP")
    metrics_host: str | None = Field(None, description="with `HUBBUB_METRICS_PORT`: where "
                                     "`/metrics` listens (default: `HUBBUB_HOST`)")
    metrics_port: Port | None = Field(None, description="serve `/metrics` on this port only "
                                      "(not on `HUBBUB_PORT`)")
    metrics_token: Secret = Field(None, description="require `Authorization: Bearer <token>` "
                                  "on `/metrics`")
    api_keys: ApiKeys = Field((), description="keys of the server API "
                              "(`/api/v1/server/`, for your backend), comma-separated so "
                              "that two can be valid while rotating; unset: that API "
                              "answers 404")

    # Outgoing events (docs/WEBHOOKS.md).
    webhook_url: WebhookUrl = Field(None, description="POST every event there (Standard "
                                    "Webhooks); unset: no events are stored or sent")
    webhook_secret: WebhookSecret = Field(None, description="`whsec_<base64>` key the "
                                          "events are signed with (required with "
                                          "`HUBBUB_WEBHOOK_URL`)")
    webhook_timeout: Seconds = Field(10.0, description="one delivery attempt's time limit")
    webhook_retry_base: Seconds = Field(1.0, description="the first retry's delay; each "
                                        "next one doubles, with full jitter")
    webhook_retry_max_delay: Seconds = Field(900.0, description="the longest delay between "
                                             "two attempts")
    webhook_retry_for: Seconds = Field(86400.0, description="how long an event is retried "
                                       "before it is dead-lettered (`hubbub webhooks "
                                       "dead-letters`, `replay`)")
    webhook_poll_interval: Seconds = Field(1.0, description="how often the dispatcher "
                                           "looks for events stored by other instances "
                                           "or due for a retry, and each instance for "
                                           "due `message.undelivered` checks")
    offline_grace: Seconds = Field(5.0, description="with webhooks: this long after a "
                                   "message (up to a poll interval more), "
                                   "`message.undelivered` names the members without an "
                                   "open connection, on any instance, even after a "
                                   "restart")
    moderation_url: WebhookUrl = Field(None, description="POST each message there before "
                                       "it is stored, signed like a webhook: allow, reject "
                                       "or replace it")
    moderation_timeout: Seconds = Field(2.0, description="the moderation hook's time limit")
    moderation_failure: Literal["open", "closed"] = Field(
        "open", description="when the hook fails or times out: `open` stores the message, "
        "`closed` rejects it")
    webhook_concurrency: Count = Field(16, description="deliveries in flight per instance "
                                       "(one per conversation at a time)")

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Text from a variable, a flag or a file, read by the field's type: switches from a
        fixed list of words, lists comma-separated, enum words in any case."""
        if not isinstance(value, str) or info.field_name is None:
            return value
        kind = cls.model_fields[info.field_name].annotation
        if kind is bool:
            try:
                return SWITCH_WORDS[value.strip().lower()]
            except KeyError:
                raise ValueError(describe_switch()) from None
        if get_origin(kind) is tuple:
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if get_origin(kind) is Literal:
            return value.strip().lower()
        return value

    @model_validator(mode="before")
    @classmethod
    def _jwks_algorithms(cls, data: Any) -> Any:
        """With a JWKS and no algorithms named, accept the asymmetric ones JWKS publish."""
        if (isinstance(data, dict) and data.get("jwt_jwks_url")
                and data.get("jwt_algorithms") is None):
            return {**data, "jwt_algorithms": JWKS_ALGORITHMS}
        return data

    @model_validator(mode="after")
    def _keys_fit_algorithms(self) -> Settings:
        """The key that verifies tokens must suit every accepted algorithm: a public key
        cannot check HS256, a shared secret cannot check RS256."""
        unknown = [a for a in self.jwt_algorithms if a not in HMAC_ALGORITHMS | KEY_ALGORITHMS]
        if unknown or not self.jwt_algorithms:
            raise SettingError("jwt_algorithms", "algorithms from "
                               + ", ".join(sorted(HMAC_ALGORITHMS | KEY_ALGORITHMS)))
        if self.jwt_jwks_url and (self.jwt_secret or self.jwt_public_key):
            raise SettingError("jwt_jwks_url", "unset while HUBBUB_JWT_SECRET or "
                               "HUBBUB_JWT_PUBLIC_KEY is set: tokens verify with one of them")
        asymmetric = self.jwt_public_key or self.jwt_jwks_url
        wanted = KEY_ALGORITHMS if asymmetric else HMAC_ALGORITHMS
        wrong = [a for a in self.jwt_algorithms if a not in wanted]
        if wrong and (asymmetric or self.jwt_secret):
            key = ("a JWKS" if self.jwt_jwks_url else "a public key" if self.jwt_public_key
                   else "a shared secret")
            raise SettingError("jwt_algorithms", f"algorithms that verify with {key} "
                               f"({', '.join(sorted(wanted))}); {', '.join(wrong)} does not")
        return self

    @model_validator(mode="after")
    def _webhook_has_secret(self) -> Settings:
        for url, name in ((self.webhook_url, "WEBHOOK_URL"),
                          (self.moderation_url, "MODERATION_URL")):
            if url is not None and self.webhook_secret is None:
                raise SettingError("webhook_secret", "a `whsec_<base64>` key: "
                                   f"HUBBUB_{name} is set, and its requests are signed")
        return self

    @model_validator(mode="after")
    def _workers_can_share(self) -> Settings:
        """Several processes need what spans processes: Redis for the bus and the shared
        counts, PostgreSQL for concurrent writers (docs/DECISIONS.md, "Workers")."""
        if self.workers == 1:
            return self
        if self.redis_url is None:
            raise SettingError("workers", "1 without HUBBUB_REDIS_URL: the in-memory bus "
                               "and limits cannot span processes (set HUBBUB_REDIS_URL)")
        if self.database_url.startswith("sqlite"):
            raise SettingError("workers", "1 on SQLite: processes sharing one file would "
                               "contend for its write lock (use a postgresql:// "
                               "HUBBUB_DATABASE_URL)")
        if self.metrics_port is not None and self.metrics_port + self.workers - 1 > 65535:
            raise SettingError("workers", "a count that fits HUBBUB_METRICS_PORT: worker i "
                               "serves /metrics on HUBBUB_METRICS_PORT + i, at most 65535")
        return self

    @property
    def send_rule(self) -> BucketRule:
        return BucketRule(self.send_rate, self.send_burst)

    @property
    def other_rule(self) -> BucketRule:
        return BucketRule(self.other_rate, self.other_burst)

    @property
    def conversation_rule(self) -> BucketRule:
        return BucketRule(self.conversations_per_hour / 3600.0, self.conversation_burst)

    @property
    def handshake_rule(self) -> BucketRule:
        return BucketRule(self.handshake_rate, self.handshake_burst)

    @property
    def has_key(self) -> bool:
        """Whether tokens can be verified: a shared secret, a public key or a JWKS is set."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks_url)

    def with_secret(self) -> tuple[Settings, bool]:
        """Fill in the development secret (saved beside the database) when no key is set.

        Returns the settings and whether the secret is the generated one.
        """
        if self.has_key:
            return self, False
        path = dev_secret_path(self.database_url)
        if path.exists():
            secret = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            secret = secrets.token_urlsafe(32)
            path.write_text(secret + "\n")
            path.chmod(0o600)
        return self.model_copy(update={"jwt_secret": secret}), True


def dev_secret_path(database_url: str) -> Path:
    """Where the generated development secret lives: beside the SQLite file (or in ./)."""
    if database_url.startswith("sqlite") and "///" in database_url:
        db = Path(database_url.split("///", 1)[1])
        if str(db) not in ("", ":memory:"):
            return db.with_name(db.name + ".jwt-secret")
    return Path(".hubbub-jwt-secret")


def hidden(name: str) -> Hidden | None:
    """The `Hidden` mark of a field, if it has one."""
    marks = [m for m in Settings.model_fields[name].metadata if isinstance(m, Hidden)]
    return marks[0] if marks else None


def unit(name: str) -> Unit | None:
    marks = [m for m in Settings.model_fields[name].metadata if isinstance(m, Unit)]
    return marks[0] if marks else None


def describe_switch() -> str:
    return "one of " + ", ".join(SWITCH_WORDS)


def describe(name: str) -> str:
    """What a field accepts, in words, for error messages and help texts."""
    field = Settings.model_fields[name]
    kind = field.annotation
    if kind is bool:
        return describe_switch()
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(kind))
    if get_origin(kind) is tuple:
        return "a comma-separated list"
    bounds = {key: getattr(m, key) for m in field.metadata
              for key in ("ge", "gt", "le") if getattr(m, key, None) is not None}
    if kind is int:
        noun = "an integer"
    elif kind is float:
        noun = "a number"
    else:
        return "text"
    if "ge" in bounds and "le" in bounds:
        words = f"{noun} from {bounds['ge']} to {bounds['le']}"
    elif "ge" in bounds:
        words = f"{noun} of at least {bounds['ge']}"
    elif "gt" in bounds:
        words = f"{noun} greater than {bounds['gt']}"
    else:
        words = noun
    measure = unit(name)
    return f"{words} ({measure.word})" if measure else words
