"""The pure parts of admitting a WebSocket (PROTOCOL.md §1, §6): origins and client IPs,
and the per-user connection cap's memory implementation."""

from __future__ import annotations

import pytest

from hubbub.adapters.memory.connection_limit import MemoryConnectionLimiter
from hubbub.transport.websocket.admission import (
    MAX_ADDRESS_CHARS,
    client_ip,
    origin_allowed,
    trusted_networks,
)

PROXIES = trusted_networks(("10.0.0.0/8", "::1"))


def test_any_origin_is_allowed_without_a_list() -> None:
    """No `allowed_origins` means no origin check."""
    assert origin_allowed("https://evil.example", ())


@pytest.mark.parametrize("origin", ["https://chat.example", "HTTPS://Chat.Example/"])
def test_a_listed_origin_is_allowed(origin: str) -> None:
    """A listed origin passes, compared without case or a trailing slash."""
    assert origin_allowed(origin, ("https://chat.example",))


@pytest.mark.parametrize("origin", ["https://evil.example", "http://chat.example", "null",
                                    "https://chat.example.evil.example"])
def test_an_unlisted_origin_is_refused(origin: str) -> None:
    """Another scheme, host or an opaque origin is refused."""
    assert not origin_allowed(origin, ("https://chat.example",))


def test_a_request_without_origin_is_allowed() -> None:
    """Non-browser clients send no Origin and are not what the check defends against."""
    assert origin_allowed(None, ("https://chat.example",))


def test_the_peer_is_the_client_without_trusted_proxies() -> None:
    """`X-Forwarded-For` is ignored unless the peer is trusted."""
    assert client_ip("192.0.2.1", "203.0.113.7", ()) == "192.0.2.1"
    assert client_ip("192.0.2.1", "203.0.113.7", PROXIES) == "192.0.2.1"


def test_a_trusted_proxy_forwards_the_hop_it_saw() -> None:
    """Behind a trusted proxy the hop it appended (the rightmost) is the client."""
    assert client_ip("10.1.2.3", "203.0.113.7", PROXIES) == "203.0.113.7"
    assert client_ip("::1", "2001:db8::5", PROXIES) == "2001:db8::5"


def test_hops_the_client_wrote_itself_are_ignored() -> None:
    """A client that sends its own `X-Forwarded-For` only gets it prepended to: the hop
    the trusted proxy appended still decides, whatever the client put before it."""
    for spoofed in ("198.51.100.1", "10.0.0.1", "198.51.100.1, 198.51.100.2"):
        assert client_ip("10.1.2.3", f"{spoofed}, 203.0.113.7", PROXIES) == "203.0.113.7"


def test_the_walk_passes_trusted_proxies_only() -> None:
    """Through a chain of trusted proxies, the first untrusted hop from the right counts;
    when every hop is trusted, the leftmost does."""
    chain = "198.51.100.1, 203.0.113.7, 10.9.9.9, 10.8.8.8"
    assert client_ip("10.1.2.3", chain, PROXIES) == "203.0.113.7"
    assert client_ip("10.1.2.3", "10.5.5.5, 10.9.9.9", PROXIES) == "10.5.5.5"


def test_a_walk_through_a_long_trusted_chain_stops() -> None:
    """Past 16 trusted-looking hops the walk stops: the client may write any number."""
    chain = ", ".join(["203.0.113.7"] + [f"10.0.0.{n}" for n in range(1, 21)])
    assert client_ip("10.1.2.3", chain, PROXIES) == "10.0.0.5"


def test_a_hop_longer_than_any_address_stops_the_walk() -> None:
    """A hop no address could spell (parsed addresses are remembered, so none of this size
    is parsed or kept) counts as no address: the last good one is the client."""
    huge = "2001:db8::5" + "0" * MAX_ADDRESS_CHARS
    assert client_ip("10.1.2.3", f"203.0.113.7, {huge}", PROXIES) == "10.1.2.3"
    assert client_ip("10.1.2.3", f"{huge}, 10.9.9.9", PROXIES) == "10.9.9.9"
    assert client_ip("10.1.2.3", "203.0.113.7", PROXIES) == "203.0.113.7"  # asked again


def test_ipv4_mapped_addresses_count_as_ipv4() -> None:
    """A client seen over a dual-stack socket has the same bucket as over IPv4."""
    assert client_ip("::ffff:192.0.2.1", None, ()) == "192.0.2.1"
    assert client_ip("::ffff:10.1.2.3", "::ffff:203.0.113.7", PROXIES) == "203.0.113.7"
    assert client_ip("10.1.2.3", "203.0.113.7, ::ffff:10.9.9.9", PROXIES) == "203.0.113.7"


def test_a_garbled_hop_stops_the_walk_at_the_last_good_address() -> None:
    """A hop that is not an IP address is not trusted as one: the address before it in the
    walk (the peer, or a trusted proxy's) counts."""
    assert client_ip("10.1.2.3", "203.0.113.7, unknown", PROXIES) == "10.1.2.3"
    assert client_ip("10.1.2.3", "203.0.113.7, unknown, 10.9.9.9", PROXIES) == "10.9.9.9"
    assert client_ip("10.1.2.3", "", PROXIES) == "10.1.2.3"


def test_a_malformed_trusted_proxy_fails_at_start() -> None:
    """A typo in `HUBBUB_TRUSTED_PROXIES` is an error, not a silently ignored entry."""
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        trusted_networks(("10.0.0.300",))


@pytest.mark.asyncio(loop_scope="session")
async def test_the_cap_admits_up_to_the_limit() -> None:
    """`acquire` counts up to the limit and refuses past it; `release` frees one slot."""
    limiter = MemoryConnectionLimiter()
    assert [await limiter.acquire("u", 2) for _ in range(3)] == [True, True, False]
    await limiter.release("u")
    assert await limiter.acquire("u", 2)
    assert not await limiter.acquire("u", 2)


@pytest.mark.asyncio(loop_scope="session")
async def test_released_users_are_forgotten() -> None:
    """A user with no open connection leaves nothing behind."""
    limiter = MemoryConnectionLimiter()
    await limiter.acquire("u", 5)
    await limiter.release("u")
    assert limiter.open_count("u") == 0
    assert limiter._open == {}
