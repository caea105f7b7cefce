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
from hubbub.delivery.hub import Hub
from hubbub.domain.tokens import TokenVerifier
from hubbub.logs import get_logger
from hubbub.notify import notify
from hubbub.services.access import Access
from hubbub.services.accounts import AccountService
from hubbub.services.authentication import Authenticator
from hubbub.services.calls import CallService
from hubbub.services.changes import ChangeFeed
from hubbub.services.consent import Consent
from hubbub.services.conversations import ConversationService
from hubbub.services.dead_letters import DeadLetters
from hubbub.services.directory import ChannelDirectory
from hubbub.services.events import Events
from hubbub.services.inbox import InboxService
from hubbub.services.joining import Joining
from hubbub.services.member_settings import MemberSettings
from hubbub.services.membership import MembershipCache
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.reactions import ReactionService
from hubbub.services.receipts import ReceiptService
from hubbub.services.search import SearchService
from hubbub.services.sync import SyncService
from hubbub.services.tickets import TicketService
from hubbub.services.typing import TypingService
from hubbub.services.undelivered import Undelivered
from hubbub.services.usecases import UseCases
from hubbub.services.users import UserService
from hubbub.services.webhook_events import WebhookEvents
from hubbub.storage import Stores
from hubbub.storage.outbox import OutboxStore
from hubbub.storage.undelivered import UndeliveredStore
from hubbub.transport import server_api, static
from hubbub.transport.access import access_logger, request_ids
from hubbub.transport.collectors import BreakerState
from hubbub.transport.http import metrics as metrics_http
from hubbub.transport.http.api import API, Api
from hubbub.transport.http.bodies import WS_PATH, WS_ROUTE
from hubbub.transport.http.cors import Cors, cors_middleware
from hubbub.transport.http.errors import errors_middleware
from hubbub.transport.http.health import HEALTH, Health
from hubbub.transport.http.routes import routes
from hubbub.transport.metrics import METRICS, Metrics
from hubbub.transport.repair_metrics import RepairCollector
from hubbub.transport.server import LIFECYCLE, Lifecycle
from hubbub.transport.shutdown import shut_down, track_requests
from hubbub.transport.websocket.actions import Actions
from hubbub.transport.websocket.admission import Admission
from hubbub.transport.websocket.connections import CONNECTIONS, Connections
from hubbub.transport.websocket.endpoint import (
    ENDPOINT,
    Endpoint,
    greeting_limits,
    websocket_handler,
)
from hubbub.transport.websocket.expiry import Expiries, expire_tokens
from hubbub.transport.websocket.heartbeat import heartbeat
from hubbub.transport.websocket.session import SessionParts
from hubbub.webhooks.setup import moderator_of, start_dispatcher, stop_outgoing

log = get_logger("hubbub.app")

# The stores a running app opened, for tests' assertions on stored state (never handed to
# a service or to transport whole: each part gets the nouns it uses).
STORES = web.AppKey("stores", Stores)
# The same for the use cases, the hub, the bus and the database (tests read their state).
USE_CASES = web.AppKey("use_cases", UseCases)
HUB = web.AppKey("hub", Hub)
DATABASE = web.AppKey("database", SqlDatabase)
BUS = web.AppKey("bus", Bus)


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


def build_use_cases(settings: Settings, stores: Stores, bus: Bus, hub: Hub,
                    coordination: Coordination, outbox: OutboxStore,
                    checks: UndeliveredStore) -> UseCases:
    """Every service, each given the stores and parts it uses (`outbox`: the events owed to
    the backend; `checks`: those `message.undelivered` owes)."""
    events = Events(bus)
    memberships = MembershipCache(stores.members)
    hub.add_control_listener(memberships.on_control)
    bus.on_resumed(memberships.clear)  # invalidations sent during an outage are lost
    access = Access(memberships, stores.conversations)
    limiter = coordination.limiter
    presence = PresenceService(stores.users, stores.members, events, coordination.presence)
    consent = Consent(stores.members, memberships, events, presence)
    webhooks = WebhookEvents(enabled=settings.webhook_url is not None)
    undelivered = (Undelivered(stores.members, presence.online, checks,
                               settings.offline_grace, settings.webhook_poll_interval)
                   if webhooks.enabled else None)
    inbox = (InboxService(stores.conversations, stores.members, events) if settings.inbox
             else None)
    conversations = ConversationService(stores.conversations, stores.members, stores.users,
                                        memberships, events, consent, limiter,
                                        settings.conversation_rule, webhooks=webhooks,
                                        inbox=inbox)
    messages = MessageService(stores.messages, stores.conversations, memberships, events,
                              consent, webhooks=webhooks,
                              moderator=moderator_of(settings))
    return UseCases(
        users=UserService(stores.users),
        messages=messages,
        conversations=conversations,
        accounts=AccountService(stores.users, stores.members, stores.messages,
                                stores.idempotency, conversations, messages, presence, events,
                                webhooks=webhooks),
        joining=Joining(conversations),
        presence=presence,
        tickets=TicketService(coordination.tickets),
        search=SearchService(stores.search, access),
        sync=SyncService(stores.messages, access),
        typing=TypingService(access, events, coordination.typing, settings.typing_timeout),
        receipts=ReceiptService(stores.receipts, access, events, inbox=inbox),
        inbox=inbox,
        reactions=ReactionService(stores.reactions, stores.messages, access, events,
                                  webhooks=webhooks),
        calls=CallService(stores.calls, stores.conversations, stores.members, memberships,
                          access, events, settings.call_ring_timeout, webhooks=webhooks),
        member_settings=MemberSettings(stores.members, stores.conversations, memberships,
                                       events),
        dead_letters=DeadLetters(outbox),
        directory=ChannelDirectory(stores.conversations),
        undelivered=undelivered,
    )


def open_doors(app: web.Application, settings: Settings, authenticator: Authenticator,
               cases: UseCases, hub: Hub, bus: Bus, metrics: Metrics,
               coordination: Coordination, health: Health) -> tuple[Connections, Expiries]:
    """Give each door the few parts it uses (the app's keys): the WebSocket endpoint, the
    HTTP API, the health checks, /metrics and the shutdown. Call it in the event loop."""
    lifecycle = Lifecycle()
    connections = Connections(metrics)
    expiries = Expiries()
    limiter = coordination.limiter
    sessions = SessionParts(
        actions=Actions(cases, hub, metrics.send_commit.observe), limiter=limiter,
        send_rule=settings.send_rule, other_rule=settings.other_rule, metrics=metrics,
        typing_closed=cases.typing.connection_closed, close=connections.close)
    app[ENDPOINT] = Endpoint(
        settings=settings, lifecycle=lifecycle,
        admission=Admission(settings, limiter, authenticator, cases.tickets), users=cases.users,
        presence=cases.presence, inbox=cases.inbox,
        connection_limit=coordination.connection_limit,
        connections=connections, expiries=expiries, hub=hub, metrics=metrics,
        sessions=sessions, limits=greeting_limits(settings),
        ws_path=settings.base_path + WS_PATH, access_log=access_logger(settings.access_log))
    app[API] = Api(
        authenticator=authenticator, limiter=limiter, send_rule=settings.send_rule,
        other_rule=settings.other_rule, max_body_bytes=settings.max_body_bytes,
        users=cases.users, conversations=cases.conversations, messages=cases.messages,
        presence=cases.presence, tickets=cases.tickets, calls=cases.calls,
        member_settings=cases.member_settings, directory=cases.directory)
    app[server_api.SERVER_API] = server_api.ServerApi(
        api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes,
        bus_healthy=lambda: bus.healthy, conversations=cases.conversations,
        messages=cases.messages, accounts=cases.accounts, dead_letters=cases.dead_letters)
    hub.add_disconnect_listener(functools.partial(server_api.close_user, hub, connections))
    app[HEALTH] = health
    app[metrics_http.SCRAPE] = metrics_http.Scrape(metrics, settings.metrics_token)
    app[METRICS] = metrics
    app[LIFECYCLE] = lifecycle
    app[CONNECTIONS] = connections
    return connections, expiries


def create_app(settings: Settings) -> web.Application:
    """An aiohttp application serving hubbub with `settings` (the JWT key must be set)."""
    authenticator = build_authenticator(settings)
    app = web.Application(
        middlewares=[request_ids, track_requests, metrics_http.time_requests,
                     cors_middleware(Cors(settings.allowed_origins, settings.base_path)),
                     errors_middleware],
        client_max_size=settings.max_body_bytes,
        # aiohttp's keep-alive timer runs from a connection's opening and from each
        # response until the next request head is complete.
        handler_args={"keepalive_timeout": settings.request_timeout})
    app.on_response_prepare.append(metrics_http.count_response)
    base = settings.base_path  # every route under it (docs/DEPLOYMENT.md "Under a path")
    app.router.add_get(base + WS_PATH, websocket_handler, name=WS_ROUTE)
    routes(app, base)
    server_api.install(app, base)  # /api/v1/server/: the backend's (PROTOCOL.md §8)
    if settings.metrics_port is None:
        app.router.add_get(base + metrics_http.METRICS_PATH, metrics_http.metrics)
    contract_http.routes(app, base)  # /asyncapi.json, /openapi.json
    static.routes(app, base)

    async def on_shutdown(app: web.Application) -> None:
        lifecycle, connections = app.get(LIFECYCLE), app.get(CONNECTIONS)
        if lifecycle is None or connections is None:
            return
        notify("STOPPING=1")  # systemd: the stop has begun (a no-op elsewhere)
        await shut_down(lifecycle, connections, settings.shutdown_grace)

    app.cleanup_ctx.append(functools.partial(_lifespan, settings=settings,
                                             authenticator=authenticator))
    app.on_shutdown.append(on_shutdown)
    return app


def open_hub(settings: Settings, bus: Bus, stores: Stores, metrics: Metrics) -> Hub:
    """The hub, repairing what the bus lost only on Redis: the in-process bus loses no
    event (at-most-once is across instances), so a single instance pays nothing for it."""
    return Hub(bus, metrics.count_sent,
               changes=(ChangeFeed(stores.messages, stores.conversations)
                        if settings.redis_url is not None else None),
               check_interval=settings.repair_check_interval)


async def _cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _lifespan(app: web.Application, *, settings: Settings,
                    authenticator: Authenticator) -> AsyncIterator[None]:
    """Open every part, serve while the app runs (the one yield), close them in reverse."""
    database = await open_sql_database(
        settings.database_url, migrate=settings.auto_migrate,
        search=SearchLimits(concurrency=settings.search_concurrency,
                            timeout_s=settings.search_timeout,
                            scan_limit=settings.search_scan_limit,
                            rank_window=settings.search_rank_window))
    stores = database.stores
    bus = open_bus(settings.redis_url, prefix=settings.redis_prefix)
    metrics = Metrics()
    hub = open_hub(settings, bus, stores, metrics)
    watch(metrics, hub, database, bus)
    coordination = await open_coordination(settings)
    metrics.watch_breakers(coordination.breakers)
    if not settings.rate_limits:
        log.warning("rate_limits.off", note="every rate limit is OFF: load tests only")
    cases = build_use_cases(settings, stores, bus, hub, coordination, database.outbox,
                            database.undelivered)
    cases.presence.on_offline(cases.calls.user_offline)
    hub.add_control_listener(cases.calls.on_control)
    if coordination.watch_expired is not None:
        coordination.watch_expired(cases.presence.went_offline)
    if coordination.watch_revived is not None:
        coordination.watch_revived(cases.presence.back_online)
    connections, expiries = open_doors(app, settings, authenticator, cases, hub, bus, metrics,
                                       coordination, Health(database, bus))
    await bus.start(hub.on_bus)
    hub.start()
    await cases.calls.start(cases.presence.online)
    app[STORES], app[USE_CASES], app[HUB], app[BUS] = stores, cases, hub, bus
    app[DATABASE] = database
    webhooks = start_dispatcher(settings, database.outbox, metrics.registry,
                                lambda: database.writer.last_batch)
    if webhooks is not None:
        database.writer.on_events = webhooks[0].wake
    if cases.undelivered is not None:
        cases.undelivered.start()
    loop = asyncio.get_running_loop()
    beat = loop.create_task(heartbeat(connections, settings.heartbeat_interval,
                                      settings.heartbeat_timeout))
    sweep = loop.create_task(expire_tokens(expiries, connections.close))
    apart = (None if settings.metrics_port is None else await metrics_http.serve_apart(
        app[metrics_http.SCRAPE], settings.metrics_host or settings.host,
        settings.metrics_port))
    try:
        yield
    finally:
        if apart is not None:
            await apart.cleanup()
        await _cancel(beat, sweep)
        await stop_outgoing(webhooks, cases.undelivered, cases.messages.moderator)
        await cases.typing.close()
        await cases.calls.close()
        await hub.close()
        if coordination.close is not None:
            await coordination.close()
        await bus.close()
        await database.close()
