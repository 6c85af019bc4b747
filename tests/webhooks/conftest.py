"""Webhook tests run against an app that may deliver to loopback (where the test receivers
listen) and retries quickly. The session app's workers are paused meanwhile, so that only this
app's settings apply to what the tests queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import Caller, make_settings, new_account

HOOK_SETTINGS: dict[str, object] = {
    "webhook_allow_private_addresses": True,
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_seconds": 2,
    "webhook_max_attempts": 3,
    "webhook_timeout_seconds": 1,
    "worker_poll_seconds": 0.1,
}


@pytest_asyncio.fixture(scope="module")
async def hook_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(**HOOK_SETTINGS), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def quiet(app: FastAPI) -> AsyncIterator[None]:
    async with app.state.webhooks.paused(), app.state.import_jobs.paused():
        yield


async def caller_on(application: FastAPI, name: str) -> AsyncIterator[Caller]:
    account_id, key_id, key = await new_account(application.state.sessionmaker, name)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test/api/v1", headers={"X-Api-Key": key}
    ) as client:
        yield Caller(account_id, key_id, key, client)
        for webhook in (await client.get("/webhooks/")).json()["webhooks"]:
            await client.delete(f"/webhooks/{webhook['id']}/")


@pytest_asyncio.fixture
async def hooks(hook_app: FastAPI, quiet: None) -> AsyncIterator[Caller]:
    """A fresh account on the loopback-friendly app."""
    async for caller in caller_on(hook_app, "Hooks"):
        yield caller


@pytest_asyncio.fixture
async def stranger(hook_app: FastAPI) -> AsyncIterator[Caller]:
    async for caller in caller_on(hook_app, "Stranger"):
        yield caller
