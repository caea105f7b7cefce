"""`/healthz` and `/readyz` (PROTOCOL.md §7): liveness, and readiness on the database."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from hubbub.bus.base import Bus, BusUnavailable
from hubbub.storage.database import Database
from hubbub.storage.errors import StoreUnavailable
from hubbub.transport.http.bodies import json_response


@dataclass(frozen=True, slots=True)
class Health:
    """What readiness asks: this instance's database, and the shared bus."""

    database: Database
    bus: Bus


HEALTH = web.AppKey("health", Health)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 only for what keeps this instance from serving: its database. (A SIGTERM closes
    the listener before anything else, so the next check is refused, not answered.)

    The shared Redis is down for every instance at once, and taking them all out of the
    load balancer would stop a service that still works (sends are stored and
    acknowledged, clients repair the lost events with SyncMessages): a bus that does not
    answer is `200 {"status": "degraded", "degraded": ["bus"]}`, for alerts to act on.
    """
    health = request.app[HEALTH]
    try:
        await health.database.ping()
    except StoreUnavailable:
        return json_response({"status": "unavailable", "failed": ["database"]}, 503)
    try:
        await health.bus.ping()
    except BusUnavailable:
        return json_response({"status": "degraded", "degraded": ["bus"]})
    return json_response({"status": "ok"})
