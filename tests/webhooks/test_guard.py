"""The address guard at delivery: after DNS (names the system resolver turns into internal
addresses), and for webhooks stored before the guard knew an address form, which a strict
dispatcher must refuse when it comes to deliver them."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from app.webhooks.sender import make_client, send
from tests.conftest import Caller, make_settings
from tests.webhooks.conftest import HOOK_SETTINGS
from tests.webhooks.receiver import receiving
from tests.webhooks.test_delivery import settled, subscribe

pytestmark = pytest.mark.asyncio

# Host names, not addresses, to the URL check (the dotted forms with fewer than four parts are
# not addresses to `ipaddress`); the system resolver (inet_aton) turns them into these addresses.
RESOLVED = [
    ("127.1", "127.0.0.1"),
    ("10.1", "10.0.0.1"),
    ("172.16.1", "172.16.0.1"),
    ("192.168.1", "192.168.0.1"),
    ("169.254.43518", "169.254.169.254"),  # the cloud metadata address
    ("100.64.1", "100.64.0.1"),  # carrier-grade NAT
    ("0.0", "0.0.0.0"),
    ("224.1", "224.0.0.1"),  # multicast
    ("239.16777215", "239.255.255.255"),
    ("255.16777215", "255.255.255.255"),  # broadcast
    ("192.0.513", "192.0.2.1"),  # documentation
    ("198.51.25601", "198.51.100.1"),
    ("203.0.28929", "203.0.113.1"),
    ("198.18.1", "198.18.0.1"),  # benchmarking
    ("192.0.8", "192.0.0.8"),  # IETF protocol assignments
    ("192.88.25345", "192.88.99.1"),  # 6to4 relay anycast
    ("240.1", "240.0.0.1"),  # reserved
]


@pytest.mark.parametrize(("host", "address"), RESOLVED)
async def test_names_resolving_to_internal_addresses_are_refused_at_delivery(
    host: str, address: str
) -> None:
    async with receiving() as receiver, make_client() as client:
        outcome = await send(
            client,
            url=f"http://{host}:{receiver.port}/hook",
            body="{}",
            headers={},
            time_limit=2,
            allow_private=False,
        )
        assert receiver.requests == []
    assert not outcome.ok and not outcome.retry, outcome
    assert outcome.error is not None
    assert f"resolves to a non-public address ({address})" in outcome.error, outcome.error


STORED = [
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:0:7f00:1",  # SIIT
    "64:ff9b:1::7f00:1",  # local-use NAT64
    "fec0::1",  # site-local
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45
    "192.0.0.8",
    "192.88.99.1",
    "224.0.1.1",
]


@pytest.mark.parametrize("address", STORED)
async def test_literal_addresses_are_refused_at_delivery(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    async with make_client() as client:
        outcome = await send(
            client,
            url=f"http://{host}:9/hook",
            body="{}",
            headers={},
            time_limit=2,
            allow_private=False,
        )
    assert not outcome.ok and not outcome.retry, outcome
    shown = ipaddress.ip_address(address)  # as Python writes it (::127.0.0.1 is ::7f00:1)
    assert outcome.error is not None and f"non-public address ({shown})" in outcome.error


@pytest_asyncio.fixture
async def strict_app(database_url: str, hook_app: FastAPI) -> AsyncIterator[FastAPI]:
    """A replica that delivers only to public addresses, while the loopback-friendly test app
    (where the webhooks were created, as an older guard would have let them be) delivers
    nothing."""
    settings = {**HOOK_SETTINGS, "webhook_allow_private_addresses": False}
    application = create_app(make_settings(**settings), database_url=database_url)
    async with hook_app.state.webhooks.paused(), application.router.lifespan_context(application):
        yield application


async def test_stored_webhooks_to_such_addresses_are_refused_by_the_dispatcher(
    hooks: Caller, strict_app: FastAPI
) -> None:
    async with receiving() as receiver:
        created = [
            await subscribe(hooks, f"http://[{address}]:{receiver.port}/hook", "import.failed")
            for address in STORED[:4]
        ]
        for hook in created:
            r = await hooks.client.post(f"/webhooks/{hook['id']}/ping/")
            assert r.status_code == 202, r.text
        records = [(await settled(hooks, int(hook["id"])))[0] for hook in created]
        assert receiver.requests == []
    for address, record in zip(STORED[:4], records, strict=True):
        assert record["status"] == "failed" and record["attempts"] == 1, record
        assert record["response_code"] is None
        shown = ipaddress.ip_address(address)
        assert f"non-public address ({shown})" in record["error"], record["error"]
