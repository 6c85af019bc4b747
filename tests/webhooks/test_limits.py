"""Per-account webhook caps, also under concurrent requests (each count and its insert happen
under one lock per account): at most MAX_WEBHOOKS_PER_ACCOUNT webhooks, and at most
WEBHOOK_MAX_PENDING_PER_ACCOUNT pending deliveries (a ping past it is a 429; an event past it
never fails the request that caused it, and is recorded as not sent)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from app.webhooks.service import MAX_WEBHOOKS_PER_ACCOUNT
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error
from tests.webhooks.conftest import HOOK_SETTINGS, caller_on

pytestmark = pytest.mark.asyncio

PUBLIC_URL = "https://hooks.example.com/data-items"


async def test_concurrent_creations_never_pass_the_webhook_cap(api: Caller) -> None:
    async def create(n: int) -> httpx.Response:
        body = {"url": f"{PUBLIC_URL}/{n}", "events": ["import.failed"]}
        return await api.client.post("/webhooks/", json=body)

    answers = await asyncio.gather(*(create(n) for n in range(MAX_WEBHOOKS_PER_ACCOUNT + 5)))
    created = [r for r in answers if r.status_code == 201]
    assert len(created) == MAX_WEBHOOKS_PER_ACCOUNT, [r.status_code for r in answers]
    for r in answers:
        if r.status_code != 201:
            assert str(MAX_WEBHOOKS_PER_ACCOUNT) in assert_error(r, 400)["error"]
    listed = (await api.client.get("/webhooks/")).json()["webhooks"]
    assert len(listed) == MAX_WEBHOOKS_PER_ACCOUNT


# --------------------------------------------------------------------------------------------
# Pending deliveries per account (WEBHOOK_MAX_PENDING_PER_ACCOUNT)

CAP = 5


@pytest_asyncio.fixture(scope="module")
async def capped_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(**{**HOOK_SETTINGS, "webhook_max_pending_per_account": CAP})
    application = create_app(settings, database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def held(capped_app: FastAPI, quiet: None) -> AsyncIterator[None]:
    """No dispatcher delivers meanwhile: what is queued stays pending."""
    async with capped_app.state.webhooks.paused():
        yield


@pytest_asyncio.fixture
async def capped(capped_app: FastAPI, held: None) -> AsyncIterator[Caller]:
    async for caller in caller_on(capped_app, "Capped"):
        yield caller


@pytest_asyncio.fixture
async def other(capped_app: FastAPI, held: None) -> AsyncIterator[Caller]:
    async for caller in caller_on(capped_app, "Other"):
        yield caller


async def hook(caller: Caller, *events: str) -> int:
    r = await caller.client.post("/webhooks/", json={"url": PUBLIC_URL, "events": list(events)})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def statuses(caller: Caller, webhook_id: int) -> list[dict[str, Any]]:
    r = await caller.client.get(f"/webhooks/{webhook_id}/deliveries/", params={"limit": 100})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["deliveries"]
    return found


async def test_pings_past_the_pending_cap_are_429_even_when_concurrent(
    capped: Caller, other: Caller
) -> None:
    webhook_id = await hook(capped, "import.failed")
    answers = await asyncio.gather(
        *(capped.client.post(f"/webhooks/{webhook_id}/ping/") for _ in range(CAP + 7))
    )
    assert [r.status_code for r in answers].count(202) == CAP, [r.status_code for r in answers]
    for r in answers:
        if r.status_code != 202:
            body = assert_error(r, 429, "RATE_LIMITED")
            assert f"{CAP} webhook deliveries pending" in body["error"]
            assert "WEBHOOK_MAX_PENDING_PER_ACCOUNT" in body["error"]
            assert int(r.headers["retry-after"]) > 0
    found = await statuses(capped, webhook_id)
    assert len(found) == CAP and {d["status"] for d in found} == {"pending"}
    # the cap is the account's own
    assert (
        await other.client.post(f"/webhooks/{await hook(other, 'import.failed')}/ping/")
    ).status_code == 202


async def test_events_past_the_cap_never_fail_the_request_and_are_recorded_not_sent(
    capped: Caller,
) -> None:
    webhook_id = await hook(capped, "data_item.created")
    answers = await asyncio.gather(
        *(capped.client.post("/data-items/", json={"data_name": f"I{n}"}) for n in range(CAP + 7))
    )
    assert [r.status_code for r in answers] == [201] * (CAP + 7)
    found = await statuses(capped, webhook_id)
    assert len(found) == CAP + 7
    pending = [d for d in found if d["status"] == "pending"]
    dropped = [d for d in found if d["status"] != "pending"]
    assert len(pending) == CAP
    for d in dropped:
        assert d["status"] == "failed" and d["attempts"] == 0 and d["history"] == []
        assert d["next_attempt_at"] is None
        assert "WEBHOOK_MAX_PENDING_PER_ACCOUNT" in d["error"] and str(CAP) in d["error"]
        assert d["payload"]["event"] == "data_item.created"  # what was not sent, kept
    names = {d["payload"]["data"]["data_item"]["data_name"] for d in found}
    assert names == {f"I{n}" for n in range(CAP + 7)}
    items = (await capped.client.get("/data-items/")).json()["data_items"]
    assert len(items) == CAP + 7
