"""Import jobs across process deaths, with a real service process (`python -m app serve`) on a
database of its own: a job interrupted by SIGKILL is marked failed when the service comes back,
one interrupted by SIGTERM is marked failed on the way down, and neither leaves any data.

The job is held mid-way deterministically: a test transaction locks the `rows` table against
ATTACH PARTITION (SHARE UPDATE EXCLUSIVE), so the job stores its reference file, writes every row
into its item's new partition, reports them, then waits to attach it, with its transaction open."""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from app.accounts import service as accounts_service
from app.core.db import create_engine, create_sessionmaker
from app.core.migrate import migrate
from tests.conftest import make_settings
from tests.fixtures.database import _create_database, _drop_database, _plain_dsn
from tests.fixtures.service import Service
from tests.jobs.helpers import big_csv

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

ROWS = 50_000


@pytest_asyncio.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database on the test server, for the service process alone (no other
    app's job worker may touch its jobs)."""
    name = f"dis_jobs_{uuid.uuid4().hex[:8]}"
    admin = _plain_dsn(database_url)
    await _create_database(admin, name)
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate(url)
        yield url
    finally:
        await _drop_database(admin, name)


@pytest.fixture
def workdir() -> Iterator[Path]:
    import shutil

    base = Path(tempfile.mkdtemp(prefix="dis-jobs-", dir="/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


async def api_key(url: str) -> str:
    engine = create_engine(url, make_settings(), pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            _, issued = await accounts_service.create_account(session, name="Restart")
            return issued.api_key
    finally:
        await engine.dispose()


async def poll(client: httpx.AsyncClient, job_id: int, until: Any, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while True:
        job = (await client.get(f"/jobs/{job_id}/")).json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


async def scalar(conn: asyncpg.Connection, sql: str) -> Any:
    return await conn.fetchval(sql)


async def run_interrupted_job(
    url: str, workdir: Path, stop: Any
) -> tuple[Service, httpx.AsyncClient, int, asyncpg.Connection]:
    """Start the service, queue a job, hold it after its last row, then `stop(service)`."""
    key = await api_key(url)
    service = Service(
        workdir / "data",
        database_url=url,
        MIGRATE_ON_START="false",
        WORKER_POLL_SECONDS="0.2",
        UPLOAD_DIR=str(workdir / "spool"),
        LOG_LEVEL="INFO",
    )
    await asyncio.to_thread(service.start)
    client = httpx.AsyncClient(base_url=service.api, headers={"X-Api-Key": key}, timeout=30)
    dsn = _plain_dsn(url)
    blocker = await asyncpg.connect(dsn)
    held = blocker.transaction()
    await held.start()
    await blocker.execute("LOCK TABLE rows IN SHARE UPDATE EXCLUSIVE MODE")
    held_until_stopped = False
    try:
        r = await client.post(
            "/data-items/create-from-file/",
            params={"async": "true"},
            data={"data_name": "Interrupted"},
            files={"data_file": ("big.csv", big_csv(ROWS))},
        )
        assert r.status_code == 202, r.text
        job_id = int(r.json()["id"])
        running = await poll(
            client,
            job_id,
            lambda j: j["status"] == "running" and j["rows_processed"] == ROWS,
        )
        assert running["rows_total"] == ROWS
        assert (await client.get("/data-items/")).json()["data_items"] == []
        await asyncio.to_thread(stop, service)
        held_until_stopped = True
    finally:
        await held.rollback()
        if not held_until_stopped:  # a failing test leaves no service process behind
            if service.proc is not None and service.proc.poll() is None:
                await asyncio.to_thread(service.kill)
            await client.aclose()
            await blocker.close()
    observer = blocker  # the same connection, now without a transaction
    return service, client, job_id, observer


async def assert_nothing_left(observer: asyncpg.Connection, client: httpx.AsyncClient) -> None:
    assert (await client.get("/data-items/")).json()["data_items"] == []
    assert await scalar(observer, "SELECT count(*) FROM data_items") == 0
    assert await scalar(observer, "SELECT count(*) FROM reference_files") == 0
    assert await scalar(observer, "SELECT count(*) FROM import_job_chunks") == 0
    partitions = "SELECT count(*) FROM pg_tables WHERE schemaname = 'item_rows'"
    assert await scalar(observer, partitions) == 0


async def test_a_job_killed_mid_way_is_failed_by_the_restart(
    own_database: str, workdir: Path
) -> None:
    def kill(service: Service) -> None:
        service.kill()

    service, client, job_id, observer = await run_interrupted_job(own_database, workdir, kill)
    try:
        # nobody is left to notice: the job still says running, but holds nothing any more
        status = await observer.fetchval("SELECT status FROM import_jobs WHERE id = $1", job_id)
        assert status == "running"
        await asyncio.to_thread(service.start)
        job = await poll(client, job_id, lambda j: j["status"] != "running", within=30)
        assert job["status"] == "failed", job
        error = job["error"]
        assert error["code"] == "INTERRUPTED" and error["status"] == 503
        assert "restart or a crash" in error["error"] and "Nothing was imported" in error["error"]
        assert job["result"] is None and job["finished_at"]
        await assert_nothing_left(observer, client)

        # and the restarted service runs new jobs
        r = await client.post(
            "/data-items/create-from-file/",
            params={"async": "true"},
            data={"data_name": "After"},
            files={"data_file": ("small.csv", b"a,b\r\n1,2\r\n")},
        )
        after = await poll(client, r.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
        assert after["status"] == "succeeded", after
    finally:
        await client.aclose()
        await observer.close()
        if service.proc is not None and service.proc.poll() is None:
            assert service.stop() == 0, service.output()


async def test_a_job_stopped_by_sigterm_is_failed_on_the_way_down(
    own_database: str, workdir: Path
) -> None:
    def terminate(service: Service) -> None:
        assert service.stop(signal.SIGTERM) == 0, service.output()

    service, client, job_id, observer = await run_interrupted_job(own_database, workdir, terminate)
    try:
        row = await observer.fetchrow("SELECT status, error FROM import_jobs WHERE id = $1", job_id)
        assert row is not None and row["status"] == "failed"
        assert "shut down" in row["error"] and "INTERRUPTED" in row["error"]
        await asyncio.to_thread(service.start)
        job = (await client.get(f"/jobs/{job_id}/")).json()
        assert job["status"] == "failed" and job["error"]["code"] == "INTERRUPTED"
        await assert_nothing_left(observer, client)
    finally:
        await client.aclose()
        await observer.close()
        if service.proc is not None and service.proc.poll() is None:
            assert service.stop() == 0, service.output()
