"""Checks before the WebSocket upgrade (PROTOCOL.md §1, §6), cheapest first.

    Origin (403) → handshakes per client IP (429) → token or ticket (401)

The per-user connection cap comes after these, once the user is known (endpoint.py).
Every attempt counts against the handshake rate, failed ones included: that is the point of
the limit (a client guessing tokens or tickets is slowed down like a reconnect storm).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from hubbub.config import Settings
from hubbub.coordination.ratelimit import RateLimiter
from hubbub.domain.errors import Forbidden, Unauthorized
from hubbub.domain.tokens import Identity
from hubbub.services.authentication import Authenticator
from hubbub.services.tickets import TicketService
from hubbub.transport.auth import RequestHead, query_value, websocket_token

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# No real chain has more proxies than this; a longer header of trusted-looking hops (the
# client can write any) is not walked further, so parsing it stays cheap.
MAX_FORWARDED_HOPS = 16


@dataclass(frozen=True, slots=True)
class Admission:
    """What the checks before the upgrade use."""

    settings: Settings
    limiter: RateLimiter
    authenticator: Authenticator
    tickets: TicketService


async def admit(admission: Admission, request: RequestHead) -> Identity:
    """Who may open this WebSocket, or the ChatError that refuses it.

    Raises:
        Forbidden: a disallowed `Origin`. RateLimited: too many handshakes from this IP.
        Unauthorized: no valid token or ticket.
    """
    settings = admission.settings
    if not origin_allowed(request.headers.get("Origin"), settings.allowed_origins):
        raise Forbidden("origin not allowed")
    ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"),
                   trusted_networks(settings.trusted_proxies))
    await admission.limiter.hit("h:" + ip, settings.handshake_rule)
    token = websocket_token(request)
    if token:
        return await admission.authenticator.authenticate(token)
    ticket = query_value(request, "ticket")
    if ticket:
        return await admission.tickets.redeem(ticket)
    raise Unauthorized("missing token")


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """§1: with `allowed_origins` configured, a browser's `Origin` must be on the list.

    No list allows every origin. A request without `Origin` is not from a browser page (every
    browser sends one on a WebSocket handshake), and the check exists to stop other sites'
    pages from using a visitor's credentials, so it is let through; `*` on the list allows all.
    """
    if not allowed or origin is None:
        return True
    wanted = _normalise(origin)
    return any(entry == "*" or _normalise(entry) == wanted for entry in allowed)


def client_ip(peer: str | None, forwarded_for: str | None,
              trusted: Sequence[IPNetwork]) -> str:
    """The client's IP: the peer address, or — when the peer is a trusted proxy — the
    rightmost `X-Forwarded-For` hop that is not itself a trusted proxy.

    Each proxy appends the address it saw, so only the hops from the right up to the first
    untrusted one were written by proxies we trust; whatever lies left of it the client
    wrote itself. If every hop is trusted the leftmost counts; a hop that is not an IP
    address stops the walk at the last good address (the peer when it is the first).
    """
    if not peer:
        return "unknown"
    address = _ip(peer)
    if address is None:
        return peer
    if forwarded_for and trusted and _in_any(address, trusted):
        for hop in reversed(forwarded_for.split(",")[-MAX_FORWARDED_HOPS:]):
            forwarded = _ip(hop.strip())
            if forwarded is None:
                break
            address = forwarded
            if not _in_any(address, trusted):
                break
    return str(address)


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parse `HUBBUB_TRUSTED_PROXIES` (addresses or CIDR networks).

    Raises:
        ValueError: an entry is neither (checked at start, so a typo fails loudly).
    """
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def in_networks(address: str, networks: Sequence[IPNetwork]) -> bool:
    """Whether the address (text) lies in any of the networks; False for a non-address."""
    ip = _ip(address)
    return ip is not None and _in_any(ip, networks)


def _in_any(ip: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


# The longest spelling of an address: IPv4-mapped IPv6 (45) with an interface's zone.
MAX_ADDRESS_CHARS = 64


def _ip(text: str) -> IPAddress | None:
    """An address with one spelling per client (IPv4-mapped IPv6, `::ffff:1.2.3.4`, as
    plain IPv4), or None for what is not an IP address."""
    return None if len(text) > MAX_ADDRESS_CHARS else _parsed_ip(text)


# A server hears from few addresses at a time (a load balancer's, or the same clients
# again), so each is parsed once: ipaddress takes ~3 µs of every handshake otherwise.
@lru_cache(maxsize=4096)
def _parsed_ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()
