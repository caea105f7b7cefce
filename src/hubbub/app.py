"""The composition root: the one place that builds every part and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from hubbub.bus import open_bus
from hubbub.config import Settings
from hubbub.domain.tokens import TokenVerifier
from hubbub.logs import get_logger
from hubbub.services.context import ServiceContext
from hubbub.services.conversations import ConversationService
from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.services.messages import MessageService
from hubbub.services.presence import MemoryPresenceCounter, PresenceService
from hubbub.services.ratelimit import MemoryRateLimiter, RateLimiter, Unlimited
from hubbub.services.users import UserService
from hubbub.storage import open_store
from hubbub.transport import rest
from hubbub.transport.hub import Hub
from hubbub.transport.metrics import Metrics
from hubbub.transport.server import SERVER, Server
from hubbub.transport.websocket import heartbeat, websocket_handler

log = get_logger("hubbub.app")


def build_verifier(settings: Settings) -> TokenVerifier:
    key = settings.jwt_public_key or settings.jwt_secret
    if not key:
        raise ValueError("no JWT secret or public key configured")
    return TokenVerifier(key=key, algorithms=settings.jwt_algorithms,
                         issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def create_app(settings: Settings) -> web.Application:
    """An aiohttp application serving hubbub with `settings` (the JWT key must be set)."""
    verifier = build_verifier(settings)
    app = web.Application(middlewares=[rest.errors_middleware],
                          client_max_size=settings.max_body_bytes)
    app.router.add_get("/ws", websocket_handler)
    rest.routes(app)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(settings.database_url, migrate=settings.auto_migrate)
        bus = open_bus(settings.redis_url, prefix=settings.redis_prefix)
        metrics = Metrics()
        hub = Hub(bus, metrics.count_sent)
        events = Events(bus)
        members = MembershipCache(store)
        hub.add_control_listener(members.on_control)
        ctx = ServiceContext(store=store, events=events, members=members)
        limiter: RateLimiter = MemoryRateLimiter() if settings.rate_limits else Unlimited()
        if not settings.rate_limits:
            log.warning("rate_limits.off", note="every rate limit is OFF: load tests only")
        server = Server(
            settings=settings, store=store, bus=bus, hub=hub, metrics=metrics,
            limiter=limiter, verifier=verifier, users=UserService(ctx),
            messages=MessageService(ctx), conversations=ConversationService(ctx),
            presence=PresenceService(ctx, MemoryPresenceCounter()),
        )
        server.flusher_for_loop()
        await bus.start(hub.on_bus)
        hub.start()
        app[SERVER] = server
        beat = asyncio.get_running_loop().create_task(heartbeat(server))
        log.info("server.started", database=settings.database_url.split("://")[0],
                 bus="redis" if settings.redis_url else "memory")
        try:
            yield
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await bus.close()
            await store.close()

    async def on_shutdown(app: web.Application) -> None:
        server: Server | None = app.get(SERVER)
        if server is None:
            return
        server.closing = True
        for connection in list(server.sockets):
            server.close_connection(connection, 1001, "server shutting down")
        if server.background:
            await asyncio.wait(server.background, timeout=settings.shutdown_grace)

    app.cleanup_ctx.append(lifespan)
    app.on_shutdown.append(on_shutdown)
    return app
