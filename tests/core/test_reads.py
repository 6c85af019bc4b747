"""The one-statement reads (item details, a page of rows, the summary; app/core/reads.py): what
they answer at the edges, how they share the pool, and what happens when their connection dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from app.core.db import PING_IDLE_SECONDS
from app.core.reads import read_connection
from app.main import create_app
from tests.conftest import Caller, make_settings, new_account
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


async def item_with_rows(client: httpx.AsyncClient, rows: int = 3) -> dict[str, object]:
    item = await create_item(
        client, "Reads", [{"field_label": "Region"}, {"field_label": "N", "field_type": "decimal"}]
    )
    region, number = (str(f["id"]) for f in item["fields"])
    r = await client.post(
        f"/data-items/{item['id']}/rows/bulk/",
        json={"rows": [{region: f"r{i}", number: i} for i in range(rows)]},
    )
    assert r.status_code == 201, r.text
    return item


async def test_paging_edges(api: Caller) -> None:
    item = await item_with_rows(api.client)
    base = f"/data-items/{item['id']}/rows/"
    far = await api.client.get(base, params={"offset": 10**30})  # past any bigint
    assert far.status_code == 200
    assert far.json() == {"total": 3, "offset": 10**30, "limit": 100, "rows": []}
    assert (await api.client.get(base, params={"offset": 3})).json()["rows"] == []
    assert [
        r["_row_ref"] for r in (await api.client.get(base, params={"offset": 1})).json()["rows"]
    ] == ["1", "2"]
    assert_error(await api.client.get(base, params={"limit": 0}), 400, "VALIDATION_ERROR")
    assert_error(await api.client.get(base, params={"offset": -1}), 400, "VALIDATION_ERROR")
    # a missing item is a 404 before its paging is looked at
    assert_error(await api.client.get("/data-items/999999999/rows/", params={"limit": 0}), 404)


async def test_another_accounts_item_is_404_on_every_read(api: Caller, intruder: Caller) -> None:
    item = await item_with_rows(api.client)
    for path in ("/", "/rows/", "/summary/"):
        r = await intruder.client.get(f"/data-items/{item['id']}{path}")
        assert_error(r, 404, "NOT_FOUND")
        assert r.json()["error"] == f"Data item {item['id']} not found."


async def test_an_item_without_fields_or_rows(api: Caller) -> None:
    item = await create_item(api.client, "Empty")
    base = f"/data-items/{item['id']}"
    assert (await api.client.get(f"{base}/")).json()["fields"] == []
    page = (await api.client.get(f"{base}/rows/")).json()
    assert page == {"total": 0, "offset": 0, "limit": 100, "rows": []}
    summary = (await api.client.get(f"{base}/summary/")).json()
    assert summary["field_count"] == 0 and summary["field_summaries"] == []


@pytest_asyncio.fixture(params=[2, 8], ids=["pool of 2, no read lanes", "pool of 8, lanes of 2"])
async def tight(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    """A small pool, no overflow: without read lanes (under 4), and with lanes of 2."""
    application = create_app(
        make_settings(db_pool_size=request.param, db_max_overflow=0, db_pool_timeout=5),
        database_url=database_url,
    )
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t/api/v1",
        headers={"X-Api-Key": key},
        timeout=30,
    )


async def test_summaries_that_recompute_do_not_starve_the_pool(tight: FastAPI) -> None:
    """A summary of stale statistics recomputes them on a connection of its own. When the
    request also held one (its session) while waiting for that second one, concurrent summaries
    emptied a small pool and waited on each other until DB_POOL_TIMEOUT (503s)."""
    _, _, key = await new_account(tight.state.sessionmaker)
    async with client_for(tight, key) as c:
        item = await item_with_rows(c, rows=50)
        async with tight.state.engine.begin() as conn:
            await conn.execute(
                text("UPDATE field_stats SET stale = true WHERE data_item_id = :i"),
                {"i": item["id"]},
            )
        answers = await asyncio.gather(
            *[c.get(f"/data-items/{item['id']}/summary/") for _ in range(12)]
        )
    assert [r.status_code for r in answers] == [200] * 12, answers[0].text
    stats = {s["field_label"]: s for s in answers[-1].json()["field_summaries"]}
    assert stats["N"]["sum"] == sum(range(50)) and stats["Region"]["unique_count"] == 50


async def server_pids(app: FastAPI) -> set[int]:
    """The server process of every connection the pool holds (checked out one by one)."""
    pids = set()
    async with read_connection(app.state.engine) as a, read_connection(app.state.engine) as b:
        pids = {a.get_server_pid(), b.get_server_pid()}
    return pids


async def terminate(database_url: str, pids: set[int]) -> None:
    dsn = "postgresql" + database_url.removeprefix("postgresql+asyncpg")
    conn = await asyncpg.connect(dsn)
    try:
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_connection_killed_while_idle_is_replaced_unseen(
    tight: FastAPI, database_url: str
) -> None:
    _, _, key = await new_account(tight.state.sessionmaker)
    async with client_for(tight, key) as c:
        item = await item_with_rows(c)
        await terminate(database_url, await server_pids(tight))
        await asyncio.sleep(PING_IDLE_SECONDS + 0.1)  # idle long enough to be checked before use
        for path in ("/", "/rows/", "/summary/"):
            assert (await c.get(f"/data-items/{item['id']}{path}")).status_code == 200


async def test_a_connection_killed_between_two_requests_costs_one_503(
    tight: FastAPI, database_url: str
) -> None:
    """Used a moment ago, it is not checked: the read that meets it is a 503 (as a request
    during an outage), and its failure makes the process replace every connection it holds."""
    _, _, key = await new_account(tight.state.sessionmaker)
    async with client_for(tight, key) as c:
        item = await item_with_rows(c)
        await terminate(database_url, await server_pids(tight))
        answers = [
            await c.get(f"/data-items/{item['id']}{p}")
            for p in ("/", "/rows/", "/summary/", "/", "/rows/", "/summary/")
        ]
    failed = [r for r in answers if r.status_code != 200]
    assert len(failed) <= 1, [r.status_code for r in answers]
    for r in failed:
        assert_error(r, 503, "DATABASE_UNAVAILABLE")


async def test_reads_beyond_their_lane_wait_their_turn(tight: FastAPI) -> None:
    _, _, key = await new_account(tight.state.sessionmaker)
    async with client_for(tight, key) as c:
        item = await item_with_rows(c, rows=20)
        base = f"/data-items/{item['id']}"
        paths = [f"{base}/", f"{base}/rows/", f"{base}/summary/"] * 15
        answers = await asyncio.gather(*[c.get(p) for p in paths])
    assert [r.status_code for r in answers] == [200] * len(paths)
    assert len({r.content for r in answers[0::3]}) == 1  # every detail the same


@pytest_asyncio.fixture
async def laned(database_url: str) -> AsyncIterator[FastAPI]:
    """Lanes of 2 connections, a short wait for one."""
    application = create_app(
        make_settings(db_pool_size=8, db_max_overflow=0, db_pool_timeout=1),
        database_url=database_url,
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_a_full_lane_is_a_503_after_the_pool_timeout_and_leaks_nothing(
    laned: FastAPI, database_url: str
) -> None:
    """Item details held up by a lock: the lane's 2 connections wait, the other readers wait for
    them for DB_POOL_TIMEOUT (1 s) and are a 503 SERVICE_BUSY; once the lock goes, every
    connection is back and reads answer."""
    _, _, key = await new_account(laned.state.sessionmaker)
    async with client_for(laned, key) as c:
        item = await item_with_rows(c)
        dsn = "postgresql" + database_url.removeprefix("postgresql+asyncpg")
        locker = await asyncpg.connect(dsn)
        try:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE reference_files IN ACCESS EXCLUSIVE MODE")
            held = [asyncio.ensure_future(c.get(f"/data-items/{item['id']}/")) for _ in range(6)]
            done, _ = await asyncio.wait(held, timeout=3)
            busy = [t.result() for t in done]
            assert len(busy) == 4 and all(r.status_code == 503 for r in busy), busy
            assert_error(busy[0], 503, "SERVICE_BUSY")
            await tx.rollback()
        finally:
            await locker.close()
        waited = [await t for t in held if t not in done]
        assert [r.status_code for r in waited] == [200, 200]
        pool = laned.state.engine.sync_engine.pool
        answers = await asyncio.gather(*[c.get(f"/data-items/{item['id']}/") for _ in range(10)])
        assert [r.status_code for r in answers] == [200] * 10
        assert pool.checkedout() <= 4  # the lanes' connections at most: nothing leaked
