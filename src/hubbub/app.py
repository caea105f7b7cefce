"""The composition root: the one place that builds every part and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.pool import QueuePool

from hubbub.adapters.jwks import JwksKeys
from hubbub.adapters.memory.bus import MemoryBus
from hubbub.adapters.memory.connection_limit import MemoryConnectionLimiter, NoConnectionLimit
from hubbub.adapters.memory.presence import MemoryPresenceCounter
from hubbub.adapters.memory.ratelimit import MemoryRateLimiter, Unlimited
from hubbub.adapters.memory.tickets import MemoryTicketStore
from hubbub.adapters.memory.typing import MemoryTypingStates
from hubbub.adapters.sql import SearchLimits, SqlDatabase, open_sql_database
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contract import http as contract_http
from hubbub.coordination import (
    ConnectionLimiter,
    PresenceCounter,
    RateLimiter,
    TicketStore,
    TypingStates,
)
from hubbub.domain.tokens import TokenVerifier
from hubbub.logs import get_logger
from hubbub.notify import notify
from hubbub.services.access import Access
from hubbub.services.authentication import Authenticator
from hubbub.services.calls import CallService
from hubbub.services.changes import ChangeFeed
from hubbub.services.consent import Consent
from hubbub.services.conversations import ConversationService
from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.reactions import ReactionService
from hubbub.services.receipts import ReceiptService
from hubbub.services.search import SearchService
from hubbub.services.sync import SyncService
from hubbub.services.tickets import TicketService
from hubbub.services.typing import TypingService
from hubbub.services.users import UserService
from hubbub.storage import Database, Stores
from hubbub.transport import calls as call_routes
from hubbub.transport import metrics_http, rest, server_api, static
from hubbub.transport.access import request_ids
from hubbub.transport.collectors import BreakerState
from hubbub.transport.expiry import expire_tokens
from hubbub.transport.http import WS_PATH
from hubbub.transport.hub import Hub
from hubbub.transport.metrics import Metrics
from hubbub.transport.repair_metrics import RepairCollector
from hubbub.transport.server import SERVER, Server
from hubbub.transport.shutdown import shut_down, track_requests
from hubbub.transport.websocket import heartbeat, websocket_handler

log = get_logger("hubbub.app")

# The stores a running app opened, for tests' assertions on stored state (never handed to
# a service or to transport whole: each part gets the nouns it uses).
STORES = web.AppKey("stores", Stores)


def build_authenticator(settings: Settings) -> Authenticator:
    """Tokens verified with the secret or public key, or with the JWKS's keys by `kid`."""
    key = settings.jwt_public_key or settings.jwt_secret
    if not key and not settings.jwt_jwks_url:
        raise ValueError("no JWT secret, public key or JWKS URL configured")
    verifier = TokenVerifier(key=key, algorithms=settings.jwt_algorithms,
                             issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                             leeway_s=settings.jwt_leeway, user_claim=settings.jwt_user_claim,
                             name_claim=settings.jwt_name_claim)
    keys = None if settings.jwt_jwks_url is None else JwksKeys(
        settings.jwt_jwks_url, lifespan_s=settings.jwt_jwks_lifespan,
        cooldown_s=settings.jwt_jwks_cooldown)
    return Authenticator(verifier, keys)


def open_bus(url: str | None, *, prefix: str = "hubbub") -> Bus:
    """The bus for `url`: in-process when None, Redis for redis://, rediss://, unix://,
    redis+sentinel:// or redis+cluster:// (redis_url.py)."""
    if url is None:
        return MemoryBus()
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://",
                       "redis+cluster://")):
        from hubbub.adapters.redis.bus import RedisBus  # lazily: only many instances need it

        return RedisBus(url, prefix=prefix)
    raise ValueError(f"unsupported bus URL scheme: {url.split(':', 1)[0]!r}")


@dataclass
class Coordination:
    """What every instance must count together: in Redis when a URL is configured (so N
    instances behave as one), else in this process."""

    limiter: RateLimiter
    connection_limit: ConnectionLimiter
    presence: PresenceCounter
    tickets: TicketStore
    typing: TypingStates
    # Tell presence about users whose last connection died with a crashed instance, and
    # about this instance's users whom the others reported offline while it was cut off.
    watch_expired: Callable[[Callable[[str], Awaitable[None]]], None] | None = None
    watch_revived: Callable[[Callable[[str], Awaitable[None]]], None] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    # Each Redis part's breaker (adapters/redis/client.py), for /metrics.
    breakers: tuple[BreakerState, ...] = ()


async def open_coordination(settings: Settings) -> Coordination:
    limits_on = settings.rate_limits
    if settings.redis_url is None:
        return Coordination(
            limiter=MemoryRateLimiter() if limits_on else Unlimited(),
            connection_limit=MemoryConnectionLimiter() if limits_on else NoConnectionLimit(),
            presence=MemoryPresenceCounter(),
            tickets=MemoryTicketStore(),
            typing=MemoryTypingStates(),
        )
    # Imported lazily: only Redis needs them.
    from hubbub.adapters.redis.client import connect
    from hubbub.adapters.redis.counts import (
        InstanceRegistry,
        RedisConnectionLimiter,
        RedisPresenceCounter,
    )
    from hubbub.adapters.redis.ratelimit import RedisRateLimiter
    from hubbub.adapters.redis.tickets import RedisTicketStore
    from hubbub.adapters.redis.typing import RedisTypingStates

    client = connect(settings.redis_url)
    registry = InstanceRegistry(client, settings.redis_prefix, settings.presence_ttl)
    presence = RedisPresenceCounter(registry)
    connection_limit: ConnectionLimiter = (
        RedisConnectionLimiter(registry) if limits_on else NoConnectionLimit())
    limiter: RateLimiter = (
        RedisRateLimiter(client, settings.redis_prefix) if limits_on else Unlimited())
    await registry.start()
    tickets = RedisTicketStore(client, settings.redis_prefix)
    typing = RedisTypingStates(client, settings.redis_prefix)
    breakers: list[BreakerState] = [registry.breaker, tickets.breaker, typing.breaker]
    if isinstance(limiter, RedisRateLimiter):
        breakers.append(limiter.breaker)

    async def close() -> None:
        await registry.close()
        await client.aclose()

    return Coordination(limiter, connection_limit, presence, tickets, typing,
                        watch_expired=presence.on_expired, watch_revived=presence.on_revived,
                        close=close, breakers=tuple(breakers))


def watch(metrics: Metrics, hub: Hub, database: SqlDatabase, bus: Bus) -> None:
    """Export what the hub, the database and the bus do on /metrics."""
    metrics.watch_order(hub.order_stats)
    metrics.registry.register(RepairCollector(hub.repair_stats))
    metrics.watch_writer(database.writer)
    metrics.watch_bus(bus)
    metrics.watch_users(lambda: hub.users_online)
    if isinstance(database.engine.pool, QueuePool):
        metrics.watch_pool(database.engine.pool)


def build_server(settings: Settings, authenticator: Authenticator, stores: Stores,
                 database: Database, bus: Bus, hub: Hub, metrics: Metrics,
                 coordination: Coordination) -> Server:
    """Every service, each given the stores and parts it uses, and the Server holding them."""
    events = Events(bus)
    memberships = MembershipCache(stores.members)
    hub.add_control_listener(memberships.on_control)
    bus.on_resumed(memberships.clear)  # invalidations sent during an outage are lost
    access = Access(memberships, stores.conversations)
    limiter = coordination.limiter
    presence = PresenceService(stores.users, stores.members, events, coordination.presence)
    consent = Consent(stores.members, memberships, events, presence)
    return Server(
        settings=settings, database=database, bus=bus, hub=hub, metrics=metrics,
        limiter=limiter, authenticator=authenticator, users=UserService(stores.users),
        messages=MessageService(stores.messages, stores.conversations, memberships, events,
                                consent),
        conversations=ConversationService(stores.conversations, stores.members, stores.users,
                                          memberships, events, consent, limiter,
                                          settings.conversation_rule),
        presence=presence,
        connection_limit=coordination.connection_limit,
        tickets=TicketService(coordination.tickets),
        search=SearchService(stores.search, access),
        sync=SyncService(stores.messages, access),
        typing=TypingService(access, events, coordination.typing, settings.typing_timeout),
        receipts=ReceiptService(stores.receipts, access, events),
        reactions=ReactionService(stores.reactions, stores.messages, access, events),
        calls=CallService(stores.calls, stores.conversations, stores.members, memberships,
                          access, events, settings.call_ring_timeout),
    )


def create_app(settings: Settings) -> web.Application:
    """An aiohttp application serving hubbub with `settings` (the JWT key must be set)."""
    authenticator = build_authenticator(settings)
    app = web.Application(
        middlewares=[request_ids, track_requests, metrics_http.time_requests,
                     rest.errors_middleware],
        client_max_size=settings.max_body_bytes,
        # aiohttp's keep-alive timer runs from a connection's opening and from each
        # response until the next request head is complete.
        handler_args={"keepalive_timeout": settings.request_timeout})
    app.on_response_prepare.append(metrics_http.count_response)
    app.router.add_get(WS_PATH, websocket_handler)
    rest.routes(app)
    server_api.install(app, STORES)  # /api/v1/server/: the backend's (PROTOCOL.md §8)
    if settings.metrics_port is None:
        app.router.add_get(metrics_http.METRICS_PATH, metrics_http.metrics)
    call_routes.routes(app)
    contract_http.routes(app)  # /asyncapi.json, /openapi.json
    static.routes(app)

    async def on_shutdown(app: web.Application) -> None:
        server: Server | None = app.get(SERVER)
        if server is None:
            return
        notify("STOPPING=1")  # systemd: the stop has begun (a no-op elsewhere)
        await shut_down(server, settings.shutdown_grace)

    app.cleanup_ctx.append(functools.partial(_lifespan, settings=settings,
                                             authenticator=authenticator))
    app.on_shutdown.append(on_shutdown)
    return app


async def _lifespan(app: web.Application, *, settings: Settings,
                    authenticator: Authenticator) -> AsyncIterator[None]:
    """Open every part, serve while the app runs (the one yield), close them in reverse."""
    database = await open_sql_database(
        settings.database_url, migrate=settings.auto_migrate,
        search=SearchLimits(concurrency=settings.search_concurrency,
                            timeout_s=settings.search_timeout,
                            scan_limit=settings.search_scan_limit))
    stores = database.stores
    bus = open_bus(settings.redis_url, prefix=settings.redis_prefix)
    metrics = Metrics()
    # Only Redis loses events (at-most-once across instances); the in-process bus never
    # does, so a single instance needs no repair and pays nothing for it.
    hub = Hub(bus, metrics.count_sent,
              changes=(ChangeFeed(stores.messages, stores.conversations)
                       if settings.redis_url is not None else None),
              check_interval=settings.repair_check_interval)
    watch(metrics, hub, database, bus)
    coordination = await open_coordination(settings)
    metrics.watch_breakers(coordination.breakers)
    if not settings.rate_limits:
        log.warning("rate_limits.off", note="every rate limit is OFF: load tests only")
    server = build_server(settings, authenticator, stores, database, bus, hub, metrics,
                          coordination)
    server.presence.on_offline(server.calls.user_offline)
    hub.add_control_listener(server.calls.on_control)
    if coordination.watch_expired is not None:
        coordination.watch_expired(server.presence.went_offline)
    if coordination.watch_revived is not None:
        coordination.watch_revived(server.presence.back_online)
    server.flusher_for_loop()
    await bus.start(hub.on_bus)
    hub.start()
    await server.calls.start(server.presence.online)
    app[SERVER] = server
    app[STORES] = stores
    beat = asyncio.get_running_loop().create_task(heartbeat(server))
    sweep = asyncio.get_running_loop().create_task(expire_tokens(server))
    apart = (None if settings.metrics_port is None else await metrics_http.serve_apart(
        server, settings.metrics_host or settings.host, settings.metrics_port))
    try:
        yield
    finally:
        if apart is not None:
            await apart.cleanup()
        for task in (beat, sweep):
            task.cancel()
        for task in (beat, sweep):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.typing.close()
        await server.calls.close()
        await hub.close()
        if coordination.close is not None:
            await coordination.close()
        await bus.close()
        await database.close()
