"""One account's slow receivers cannot hold every delivery slot: an account has at most its
share of WEBHOOK_CONCURRENCY in flight, and due deliveries are claimed round-robin across
accounts, so another account's event goes out at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.webhooks.conftest import HOOK_SETTINGS, caller_on
from tests.webhooks.receiver import blackhole, receiving

pytestmark = pytest.mark.asyncio

CONCURRENCY = 8
SHARE = CONCURRENCY // 4  # the default share: a quarter of the slots


@pytest_asyncio.fixture(scope="module")
async def fair_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(**{**HOOK_SETTINGS, "webhook_concurrency": CONCURRENCY})
    application = create_app(settings, database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def flooder(fair_app: FastAPI, quiet: None) -> AsyncIterator[Caller]:
    async for caller in caller_on(fair_app, "Flooder"):
        yield caller


@pytest_asyncio.fixture
async def neighbour(fair_app: FastAPI, quiet: None) -> AsyncIterator[Caller]:
    async for caller in caller_on(fair_app, "Neighbour"):
        yield caller


async def test_a_flood_to_an_unreachable_receiver_does_not_delay_another_account(
    flooder: Caller, neighbour: Caller
) -> None:
    async with blackhole() as hole, receiving() as receiver:
        r = await flooder.client.post(
            "/webhooks/", json={"url": hole.url, "events": ["import.failed"]}
        )
        assert r.status_code == 201, r.text
        flood_hook = r.json()["id"]
        for _ in range(40):
            assert (await flooder.client.post(f"/webhooks/{flood_hook}/ping/")).status_code == 202
        await asyncio.sleep(0.3)  # the flood's first attempts are under way
        assert hole.connections >= 1

        r = await neighbour.client.post(
            "/webhooks/", json={"url": receiver.url, "events": ["import.failed"]}
        )
        assert r.status_code == 201, r.text
        started = time.monotonic()
        ping = await neighbour.client.post(f"/webhooks/{r.json()['id']}/ping/")
        assert ping.status_code == 202
        (request,) = await receiver.wait_for(1, within=20)
        waited = time.monotonic() - started
        assert request.json()["id"] == ping.json()["event_id"]
        assert waited < 2.0, f"the neighbour's ping waited {waited:.1f} s"
        # and the flood never held more than its share of this process's slots
        await asyncio.sleep(0.5)
        assert 1 <= hole.most_open <= SHARE, hole.most_open
