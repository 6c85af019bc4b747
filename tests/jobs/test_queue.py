"""The job queue across replicas: two app instances on one database run each job exactly once,
and the reaper fails running jobs whose owner is gone or silent, and only those."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from app.jobs import queue
from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.fixtures.database import _plain_dsn
from tests.jobs.helpers import start_create, wait_job

pytestmark = pytest.mark.asyncio


async def replica_clients(
    stack: AsyncExitStack, database_url: str, api_key: str, count: int
) -> list[httpx.AsyncClient]:
    clients = []
    for _ in range(count):
        replica: FastAPI = create_app(
            make_settings(worker_poll_seconds=0.05), database_url=database_url
        )
        await stack.enter_async_context(replica.router.lifespan_context(replica))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=replica),
            base_url="http://replica/api/v1",
            headers={"X-Api-Key": api_key},
        )
        clients.append(await stack.enter_async_context(client))
    return clients


async def test_two_replicas_run_each_job_exactly_once(
    api: Caller, app: FastAPI, database_url: str
) -> None:
    async with app.state.import_jobs.paused(), AsyncExitStack() as stack:
        one, two = await replica_clients(stack, database_url, api.api_key, 2)
        jobs = []
        for n in range(8):
            client = one if n % 2 else two
            jobs.append(await start_create(client, f"n\r\n{n}\r\n".encode(), name=f"J{n}"))
        for n, job in enumerate(jobs):
            polled_through = two if n % 2 else one  # any replica answers any poll
            done = await wait_job(polled_through, job["id"])
            assert done["status"] == "succeeded", done
        names = sorted(i["data_name"] for i in (await one.get("/data-items/")).json()["data_items"])
        assert names == sorted(f"J{n}" for n in range(8))
        async with app.state.engine.connect() as conn:
            workers = (
                await conn.execute(
                    text("SELECT id, worker FROM import_jobs WHERE account_id = :a"),
                    {"a": api.account_id},
                )
            ).all()
        assert len(workers) == 8 and all(worker for _, worker in workers)


async def insert_running(
    conn: asyncpg.Connection, account_id: int, *, heartbeat_age: float, locked: bool
) -> int:
    """A running job of another "process" (`conn`), locked before it commits, as a claim is."""
    async with conn.transaction():
        job_id = await conn.fetchval(
            """
            INSERT INTO import_jobs (account_id, kind, status, filename, size_bytes, sha256,
                params, worker, started_at, heartbeat_at)
            VALUES ($1, 'create_from_file', 'running', 'x.csv', 1, '', '{}', 'elsewhere', now(),
                now() - make_interval(secs => $2))
            RETURNING id
            """,
            account_id,
            float(heartbeat_age),
        )
        if locked:
            await conn.execute(
                "SELECT pg_advisory_lock($1, $2)", queue.LOCK_CLASS, job_id % 2_147_483_647
            )
    return int(job_id)


@pytest_asyncio.fixture
async def lock_holder(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another "process": a connection that claims jobs and holds their advisory locks."""
    conn = await asyncpg.connect(_plain_dsn(database_url))
    yield conn
    await conn.close()


async def test_the_reaper_fails_orphans_and_spares_live_jobs(
    api: Caller, app: FastAPI, lock_holder: asyncpg.Connection
) -> None:
    runner = app.state.import_jobs
    lease = app.state.settings.job_lease_seconds
    orphan = await insert_running(lock_holder, api.account_id, heartbeat_age=0, locked=False)
    alive = await insert_running(lock_holder, api.account_id, heartbeat_age=0, locked=True)
    hung = await insert_running(lock_holder, api.account_id, heartbeat_age=lease + 60, locked=True)

    await runner.reap()
    got = {j["id"]: j for j in (await api.client.get("/jobs/")).json()["jobs"]}
    assert got[alive]["status"] == "running" and got[alive]["error"] is None
    assert got[orphan]["status"] == "failed"
    assert "stopped (a restart or a crash)" in got[orphan]["error"]["error"]
    assert got[hung]["status"] == "failed"
    assert f"stopped responding for over {lease:g} s" in got[hung]["error"]["error"]
    assert {got[j]["error"]["code"] for j in (orphan, hung)} == {"INTERRUPTED"}

    await lock_holder.execute("SELECT pg_advisory_unlock_all()")  # its process "dies"
    await runner.reap()
    after = (await api.client.get(f"/jobs/{alive}/")).json()
    assert after["status"] == "failed" and after["finished_at"]
    assert json.dumps(after["error"]).count("INTERRUPTED") == 1
