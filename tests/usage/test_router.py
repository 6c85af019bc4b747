"""GET /api/v1/usage/: the caller's items, rows, stored bytes and requests of the last day, and
nobody else's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import Caller, make_settings, new_account
from tests.helpers import create_item
from tests.ingestion import files

pytestmark = pytest.mark.asyncio


async def usage(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/usage/")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_new_account_has_nothing_but_this_request(api: Caller) -> None:
    assert await usage(api.client) == {
        "data_items": 0, "rows": 0, "stored_bytes": 0, "row_bytes": 0,
        "reference_file_bytes": 0, "requests_last_day": 1, "rate_limit_per_minute": None,
    }  # fmt: skip


async def test_counts_follow_writes_uploads_and_deletes(api: Caller) -> None:
    item = await create_item(api.client, "Manual", [{"field_label": "A"}])
    key = str(item["fields"][0]["id"])
    r = await api.client.post(
        f"/data-items/{item['id']}/rows/bulk/", json={"rows": [{key: f"v{i}"} for i in range(50)]}
    )
    assert r.status_code == 201
    data = files.sales_csv()
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "Upload"},
        files={"data_file": ("sales.csv", data)},
    )
    assert r.status_code == 201
    uploaded = r.json()

    before = await usage(api.client)
    assert before["data_items"] == 2 and before["rows"] == 50 + uploaded["rows_created"]
    assert before["reference_file_bytes"] == len(data)
    assert before["row_bytes"] >= 8192  # at least a page of each partition
    assert before["stored_bytes"] == before["row_bytes"] + before["reference_file_bytes"]

    assert (await api.client.delete(f"/data-items/{uploaded['id']}/")).status_code == 200
    after = await usage(api.client)
    assert after["data_items"] == 1 and after["rows"] == 50
    assert after["reference_file_bytes"] == 0
    assert after["row_bytes"] < before["row_bytes"]
    assert after["requests_last_day"] == before["requests_last_day"] + 2


async def test_requests_are_counted_per_account_across_its_keys(api: Caller, app: FastAPI) -> None:
    from app.accounts import service

    async with app.state.sessionmaker() as session, session.begin():
        second = (await service.issue_key(session, account_id=api.account_id)).api_key
    first = (await usage(api.client))["requests_last_day"]
    for _ in range(3):
        await api.client.get("/data-items/", headers={"X-Api-Key": second})
    await api.client.get("/data-items/404404404/")  # a 404 is a request too
    assert (await usage(api.client))["requests_last_day"] == first + 5


async def test_tenancy(api: Caller, intruder: Caller) -> None:
    item = await create_item(api.client, "Mine", [{"field_label": "A"}])
    key = str(item["fields"][0]["id"])
    await api.client.post(f"/data-items/{item['id']}/rows/", json={"values": {key: "x"}})
    for _ in range(5):
        await api.client.get("/data-items/")
    theirs = await usage(intruder.client)
    assert theirs["data_items"] == 0 and theirs["rows"] == 0 and theirs["stored_bytes"] == 0
    assert theirs["requests_last_day"] == 1
    mine = await usage(api.client)
    assert mine["data_items"] == 1 and mine["rows"] == 1 and mine["requests_last_day"] == 8


async def test_unauthenticated_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/usage/")).status_code == 401
    assert (await client.get("/api/v1/usage")).status_code == 401


@pytest_asyncio.fixture
async def limited(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(rate_limit_per_minute=600), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


async def test_shows_the_rate_limit_when_set(limited: FastAPI) -> None:
    _, _, key = await new_account(limited.state.sessionmaker)
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t/api/v1", headers={"X-Api-Key": key}
    ) as c:
        body = await usage(c)
    assert body["rate_limit_per_minute"] == 600 and body["requests_last_day"] == 1
