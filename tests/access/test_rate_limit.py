"""Per-key rate limiting (RATE_LIMIT_PER_MINUTE): 429 with Retry-After and X-RateLimit-* headers,
counted in PostgreSQL so that replicas share the counts; off by default, but requests are counted
either way (they feed GET /usage/)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import Caller, make_settings, new_account
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

LIMIT = 3


def settle_in_a_minute() -> None:
    """Counters are per clock minute: do not start a sequence in its last seconds."""
    second = datetime.now(UTC).second + datetime.now(UTC).microsecond / 1e6
    if second > 54:
        time.sleep(60.5 - second)


@pytest_asyncio.fixture
async def limited(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(rate_limit_per_minute=LIMIT), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t/api/v1",
        headers={"X-Api-Key": key},
    )


async def test_off_by_default_no_headers(api: Caller) -> None:
    r = await api.client.get("/data-items/")
    assert r.status_code == 200
    assert not any(h.lower().startswith("x-ratelimit") for h in r.headers)
    for _ in range(2 * LIMIT):
        assert (await api.client.get("/data-items/")).status_code == 200


async def test_429_with_headers_after_the_limit(limited: FastAPI) -> None:
    _, _, key = await new_account(limited.state.sessionmaker)
    settle_in_a_minute()
    async with client_for(limited, key) as c:
        answers = [await c.get("/data-items/") for _ in range(LIMIT + 2)]
    ok, refused = answers[:LIMIT], answers[LIMIT:]
    assert [r.status_code for r in ok] == [200] * LIMIT
    assert [r.headers["x-ratelimit-remaining"] for r in ok] == ["2", "1", "0"]
    now = time.time()
    for r in answers:
        assert r.headers["x-ratelimit-limit"] == str(LIMIT)
        reset = int(r.headers["x-ratelimit-reset"])
        assert now - 1 < reset <= now + 61 and reset % 60 == 0
    for r in refused:
        body = assert_error(r, 429, "RATE_LIMITED")
        assert f"{LIMIT:,} requests per minute" in body["error"]
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert 1 <= int(r.headers["retry-after"]) <= 60


async def test_the_limit_comes_before_the_body_and_the_path(limited: FastAPI) -> None:
    _, _, key = await new_account(limited.state.sessionmaker)
    settle_in_a_minute()
    async with client_for(limited, key) as c:
        for _ in range(LIMIT):
            await c.get("/status/")
        bad_json = await c.post(
            "/data-items/", content=b"{oops", headers={"content-type": "application/json"}
        )
        unknown = await c.get("/no-such-path/")
    assert_error(bad_json, 429, "RATE_LIMITED")
    assert_error(unknown, 429, "RATE_LIMITED")


async def test_counted_per_key(limited: FastAPI) -> None:
    """Each key has its own budget; another account is not affected."""
    from app.accounts import service

    account_id, _, first = await new_account(limited.state.sessionmaker)
    async with limited.state.sessionmaker() as session, session.begin():
        second = (await service.issue_key(session, account_id=account_id)).api_key
    _, _, other = await new_account(limited.state.sessionmaker, "Other")
    settle_in_a_minute()
    async with client_for(limited, first) as c:
        for _ in range(LIMIT):
            await c.get("/data-items/")
        assert (await c.get("/data-items/")).status_code == 429
        assert (await c.get("/data-items/", headers={"X-Api-Key": second})).status_code == 200
        assert (await c.get("/data-items/", headers={"X-Api-Key": other})).status_code == 200


async def test_replicas_share_the_counts(limited: FastAPI, database_url: str) -> None:
    """Two app instances (two engines, as two replicas would have) on one database: requests
    alternating between them spend one budget."""
    replica = create_app(make_settings(rate_limit_per_minute=LIMIT), database_url=database_url)
    _, _, key = await new_account(limited.state.sessionmaker)
    settle_in_a_minute()
    async with (
        replica.router.lifespan_context(replica),
        client_for(limited, key) as a,
        client_for(replica, key) as b,
    ):
        statuses = [(await (a if i % 2 else b).get("/data-items/")).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


async def test_revoked_key_is_refused_even_with_budget_left(limited: FastAPI) -> None:
    """Within AUTH_CACHE_SECONDS of the revocation (keys are answered from memory that long)."""
    from app.accounts import service

    _, key_id, key = await new_account(limited.state.sessionmaker)
    async with client_for(limited, key) as c:
        assert (await c.get("/data-items/")).status_code == 200
        async with limited.state.sessionmaker() as session, session.begin():
            await service.revoke_key(session, key_id=key_id)
        await asyncio.sleep(limited.state.settings.auth_cache_seconds)
        assert_error(await c.get("/data-items/"), 401, "UNAUTHORIZED")
