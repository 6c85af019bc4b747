"""The address policy and the backoff schedule, as plain functions."""

from __future__ import annotations

import ipaddress

import pytest

from app.webhooks.outbox import retry_delay
from app.webhooks.signing import legacy_signature
from app.webhooks.urls import Destination, UnsafeURL, is_public, parse_url, resolve


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.31.255.255", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.251", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 around 127.0.0.1
        # IPv4: is_global, less multicast and what the IANA registry says is not reachable
        ("224.0.1.1", False),  # multicast that `is_global` calls global
        ("239.255.255.250", False),
        ("192.0.0.8", False),  # IETF protocol assignments (192.0.0.0/24)
        ("192.0.0.170", False),
        ("192.88.99.1", False),  # deprecated 6to4 relay anycast: a way into 6to4
        ("192.0.2.1", False),  # documentation
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("198.18.0.1", False),  # benchmarking
        ("240.0.0.1", False),  # reserved
        ("0.1.2.3", False),  # "this network"
        ("100.127.255.254", False),  # carrier-grade NAT
        ("1.1.1.1", True),
        ("192.0.0.9", True),  # PCP anycast: globally reachable in the registry
        # IPv6: only 2000::/3, less the registry's non-global blocks
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated): not judged by its IPv4
        ("::8.8.8.8", False),
        ("::ffff:0:7f00:1", False),  # SIIT (::ffff:0:0:0/96)
        ("::ffff:0:808:808", False),
        ("64:ff9b:1::7f00:1", False),  # local-use NAT64 (64:ff9b:1::/48)
        ("64:ff9b:1::808:808", False),
        ("fec0::1", False),  # site-local (deprecated)
        ("100::1", False),  # discard-only
        ("2001:db8::1", False),  # documentation
        ("3fff::1", False),  # documentation (RFC 9637)
        ("5f00::1", False),  # SRv6 SIDs
        ("2001:2::1", False),  # benchmarking
        ("2001:10::1", False),  # ORCHID (deprecated)
        ("2001:100::1", False),  # the rest of the IETF protocol assignments, 2001::/23
        ("4000::1", False),  # outside 2000::/3
        ("2001:1::1", True),  # PCP anycast
        ("2001:20::1", True),  # ORCHIDv2
        ("2620:4f:8000::1", True),  # AS112 direct delegation
        ("2a00:1450:4001:81c::200e", True),
        ("64:ff9b::808:808", True),  # NAT64 around 8.8.8.8
        ("2002:808:808::1", True),  # 6to4 around 8.8.8.8
        # Teredo: the server (bits 32-63) and the client (last 32 bits, inverted) must be public
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # client 192.0.2.45 (documentation)
        ("2001:0:808:808:0:0:f7f7:f7f7", True),  # server 8.8.8.8, client 8.8.8.8
        ("2001:0:808:808:0:0:80ff:fffe", False),  # client 127.0.0.1
        ("2001:0:a00:1:0:0:f7f7:f7f7", False),  # server 10.0.0.1
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_parse_keeps_the_url_and_finds_the_port() -> None:
    d = parse_url("HTTPS://Hooks.Example.COM./x?a=1", allow_private=False)
    assert (d.scheme, d.host, d.port) == ("https", "hooks.example.com", 443)
    assert d.url == "HTTPS://Hooks.Example.COM./x?a=1"
    assert parse_url("http://[2606:4700::1]:8080/", allow_private=False).port == 8080
    assert parse_url("http://bücher.example/", allow_private=False).host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://intranet/x", "http://[::1]/"]
)
def test_private_destinations_only_when_allowed(url: str) -> None:
    with pytest.raises(UnsafeURL):
        parse_url(url, allow_private=False)
    assert parse_url(url, allow_private=True).url == url


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "javascript:alert(1)", "http://u:p@example.com/", "http:///x"]
)
def test_shape_rules_hold_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(UnsafeURL):
        parse_url(url, allow_private=True)


@pytest.mark.asyncio
async def test_resolution_is_checked_too() -> None:
    local = Destination(url="http://localhost/", scheme="http", host="localhost", port=80)
    with pytest.raises(UnsafeURL, match="non-public"):
        await resolve(local, allow_private=False)
    assert all(a.is_loopback for a in await resolve(local, allow_private=True))


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    for attempt, full in [(1, 30), (2, 60), (3, 120), (8, 3600), (60, 3600)]:
        for _ in range(20):
            delay = retry_delay(attempt, base=30, cap=3600)
            assert 0.75 * full <= delay <= full


def test_the_legacy_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    # RFC 4231 test case 2
    key, data = "Jefe", b"what do ya want for nothing?"
    assert legacy_signature(key, data) == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
