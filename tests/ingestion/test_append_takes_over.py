"""An append right after a create: the item's search index is being built in the background when
the append wants to drop it. The append takes the build over (the build is cancelled and redone
after), instead of deadlocking with it and failing with a 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tests.conftest import Caller
from tests.jobs.helpers import big_csv

pytestmark = pytest.mark.asyncio
CREATE = "/data-items/create-from-file/"
ROWS = 54_000


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    dsn = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        yield conn
    finally:
        await conn.close()


async def _build_running(db: asyncpg.Connection, item_id: int) -> bool:
    await db.execute("SELECT pg_stat_clear_snapshot()")
    return bool(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'"
            " AND query LIKE $1",
            f'%"p{item_id}_search"%',
        )
    )


async def _index_valid(db: asyncpg.Connection, item_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname = $1",
            f"p{item_id}_search",
        )
    )


async def test_create_reads_search_then_append_of_the_same_file(api: Caller, app: FastAPI) -> None:
    """The reported sequence, as one client does it on a fresh service."""
    data = big_csv(ROWS)
    r = await api.client.post(
        CREATE, data={"data_name": "Sales"}, files={"data_file": ("sales.csv", data)}
    )
    assert r.status_code == 201, r.text
    item = r.json()["id"]
    assert (await api.client.get(f"/data-items/{item}/")).status_code == 200
    assert (await api.client.get(f"/data-items/{item}/rows/")).status_code == 200
    assert (await api.client.get(f"/data-items/{item}/summary/")).status_code == 200
    assert (
        await api.client.get(f"/data-items/{item}/rows/", params={"search": "R3"})
    ).status_code == 200
    r = await api.client.post(
        f"/data-items/{item}/append-from-file/", files={"data_file": ("sales.csv", data)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows_appended"] == ROWS
    await app.state.row_maintenance.wait_idle()


async def test_an_append_takes_over_a_running_index_build(
    api: Caller, app: FastAPI, db: asyncpg.Connection
) -> None:
    data = big_csv(ROWS)
    r = await api.client.post(
        CREATE, data={"data_name": "Sales"}, files={"data_file": ("sales.csv", data)}
    )
    assert r.status_code == 201, r.text
    item = r.json()["id"]
    # Keep the build waiting (CREATE INDEX CONCURRENTLY waits for writers of the table), so
    # that the append meets it for certain.
    writer = db.transaction()
    await writer.start()
    await db.execute(f"LOCK TABLE item_rows.p{item} IN ROW EXCLUSIVE MODE")
    for _ in range(500):
        if await _build_running(db, item):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the index build never started")
    append = asyncio.ensure_future(
        api.client.post(
            f"/data-items/{item}/append-from-file/", files={"data_file": ("sales.csv", data)}
        )
    )
    for _ in range(500):  # the build gives way (cancelled) while the writer still holds on
        if not await _build_running(db, item):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the build was not taken over")
    await asyncio.sleep(0.5)
    await writer.rollback()
    r = await append
    assert r.status_code == 200, r.text
    await app.state.row_maintenance.wait_idle()
    assert await _index_valid(db, item), "the index was not built again after the append"
    total = (await api.client.get(f"/data-items/{item}/rows/", params={"search": "R3"})).json()
    assert total["total"] == 2 * len([i for i in range(ROWS) if i % 7 == 3])
