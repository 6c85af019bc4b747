"""GET /api/v1/status (issue 14, point 10, after seed 001): `status` is `ok` or `degraded`, with
a `timestamp`, next to the version, the database, the caller's account and counts, and the state
of this process's background workers. Degraded: the service answers, but a background worker it
should run is not running (import jobs would wait forever, webhooks would not go out, statistics
and search indexes would not be kept up). A database that cannot be reached cannot check the
key: that is a 503 DATABASE_UNAVAILABLE, as for every other request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app import __version__
from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

WORKERS = {"import_jobs": "running", "webhooks": "running", "row_maintenance": "running"}


def assert_recent(timestamp: str) -> None:
    assert timestamp.endswith("+00:00"), timestamp
    moment = datetime.fromisoformat(timestamp)
    assert abs(datetime.now(UTC) - moment) < timedelta(seconds=30)


async def test_ok_with_timestamp_version_database_account_and_counts(api: Caller) -> None:
    await api.client.post("/data-items/", json={"data_name": "A"})
    for path in ("/status/", "/status"):
        r = await api.client.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body)[:2] == ["status", "timestamp"]
        assert body["status"] == "ok"
        assert_recent(body["timestamp"])
        assert body["version"] == __version__
        assert body["database"] == "ok"
        assert body["account"] == {"id": api.account_id, "name": "Alice"}
        assert body["counts"] == {"data_items": 1, "rows": 0}
        assert body["workers"] == WORKERS
        assert body["problems"] == []


@pytest_asyncio.fixture
async def own_app(database_url: str) -> AsyncIterator[FastAPI]:
    """A service process of its own, whose workers a test may stop."""
    application = create_app(make_settings(), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


async def status_of(application: FastAPI, key: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
        return await c.get("/status/", headers={"X-Api-Key": key})


async def test_degraded_when_a_background_worker_is_not_running(
    own_app: FastAPI, api: Caller
) -> None:
    assert (await status_of(own_app, api.api_key)).json()["status"] == "ok"
    await own_app.state.webhooks.stop()
    r = await status_of(own_app, api.api_key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    assert_recent(body["timestamp"])
    assert body["database"] == "ok"
    assert body["workers"] == {**WORKERS, "webhooks": "stopped"}
    assert len(body["problems"]) == 1 and "webhook" in body["problems"][0]
    await own_app.state.import_jobs.stop()
    await own_app.state.row_maintenance.stop()
    body = (await status_of(own_app, api.api_key)).json()
    assert body["status"] == "degraded"
    assert set(body["workers"].values()) == {"stopped"}
    assert len(body["problems"]) == 3


async def test_an_api_only_replica_without_job_workers_is_ok(
    database_url: str, api: Caller
) -> None:
    application = create_app(make_settings(job_workers=0), database_url=database_url)
    async with application.router.lifespan_context(application):
        body = (await status_of(application, api.api_key)).json()
    assert body["status"] == "ok" and body["workers"]["import_jobs"] == "off", body


async def test_database_unreachable_is_503_as_everywhere() -> None:
    # nothing listens on port 1: a real refused connection, not a stand-in
    application = create_app(
        make_settings(db_pool_timeout=2),
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
    )
    async with application.router.lifespan_context(application):
        r = await status_of(application, "dik_" + "A" * 43)
    body = assert_error(r, 503, "DATABASE_UNAVAILABLE")
    assert r.headers["retry-after"]
    assert "database" in body["error"].lower()
