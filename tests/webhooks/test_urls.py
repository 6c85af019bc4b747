"""The address policy and the backoff schedule, as plain functions."""

from __future__ import annotations

import ipaddress

import pytest

from app.webhooks.outbox import retry_delay
from app.webhooks.sender import signature
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


def test_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    # RFC 4231 test case 2
    key, data = "Jefe", b"what do ya want for nothing?"
    assert signature(key, data) == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
