"""Keys and request counts across replicas: this test process's app and a real second service
process (`python -m app serve`) on the same database, each with its own key cache and counters.
The bounds are the README's (and docs/operations.md's): a revocation is seen everywhere
within AUTH_CACHE_SECONDS, usage counts are exact once every process has flushed (each does every
FLUSH_SECONDS), and RATE_LIMIT_PER_MINUTE is never exceeded, whichever process answers."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.access.counter import FLUSH_SECONDS
from app.accounts import service as accounts_service
from app.main import create_app
from tests.access.test_rate_limit import settle_in_a_minute
from tests.conftest import make_settings, new_account
from tests.fixtures.service import Service
from tests.helpers import assert_error

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

LIMIT = 30
CACHE_SECONDS = 1.0  # the default AUTH_CACHE_SECONDS, which both processes use


@pytest.fixture(scope="module")
def other(database_url: str) -> Iterator[Service]:
    """A second service process on the test database, with a rate limit."""
    base = Path(tempfile.mkdtemp(prefix="dis-replica-", dir="/tmp"))
    service = Service(
        base / "data",
        database_url=database_url,
        RATE_LIMIT_PER_MINUTE=str(LIMIT),
        MIGRATE_ON_START="false",
        LOG_LEVEL="WARNING",
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest_asyncio.fixture(scope="module")
async def here(database_url: str) -> AsyncIterator[FastAPI]:
    """This process's replica: an app with the same limit."""
    application = create_app(make_settings(rate_limit_per_minute=LIMIT), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


def local(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://here/api/v1",
        headers={"X-Api-Key": key},
    )


def remote(service: Service, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service.api, headers={"X-Api-Key": key}, timeout=30)


async def test_a_revocation_is_seen_by_the_other_process_within_the_bound(
    here: FastAPI, other: Service
) -> None:
    _, key_id, key = await new_account(here.state.sessionmaker, "Revoked elsewhere")
    async with local(here, key) as a, remote(other, key) as b:
        assert (await a.get("/status/")).status_code == 200  # both remember the key now
        assert (await b.get("/status/")).status_code == 200
        async with here.state.sessionmaker() as session, session.begin():
            await accounts_service.revoke_key(session, key_id=key_id)
        revoked = time.monotonic()
        refused: dict[str, float] = {}
        while len(refused) < 2 and time.monotonic() - revoked < CACHE_SECONDS + 2:
            for name, client in (("here", a), ("other", b)):
                if name not in refused and (await client.get("/status/")).status_code == 401:
                    refused[name] = time.monotonic() - revoked
            await asyncio.sleep(0.02)
        assert set(refused) == {"here", "other"}, refused
        # the bound, plus the time one poll round takes on a busy machine
        assert max(refused.values()) <= CACHE_SECONDS + 0.5, refused
        assert_error(await b.get("/status/"), 401, "UNAUTHORIZED")


async def test_usage_counts_are_exact_after_a_burst_on_both_and_a_flush(
    here: FastAPI, other: Service
) -> None:
    """A key without a limit problem: 2 x 12 concurrent requests on each process (under the
    limit of one minute's budget per key: two keys of one account share nothing but usage)."""
    account_id, _, first = await new_account(here.state.sessionmaker, "Counted")
    async with here.state.sessionmaker() as session, session.begin():
        second = (await accounts_service.issue_key(session, account_id=account_id)).api_key
    settle_in_a_minute()
    async with local(here, first) as a, remote(other, second) as b:
        answers = await asyncio.gather(
            *[a.get("/data-items/") for _ in range(12)],
            *[b.get("/data-items/") for _ in range(12)],
            *[a.get("/data-items/404404404/") for _ in range(12)],  # a 404 is a request too
            *[b.get("/data-items/", params={"limit": 1}) for _ in range(12)],
        )
        assert sorted({r.status_code for r in answers}) == [200, 404]
        await asyncio.sleep(FLUSH_SECONDS + 1)  # the other process flushes on its own
        await here.state.usage_counter.flush()  # (and so would this one, within a second)
        # 48 requests, and each usage request counts itself (at once on the answering process)
        assert (await a.get("/usage/")).json()["requests_last_day"] == 48 + 1
        # that usage request reaches the database by this process's flush, within the bound
        await asyncio.sleep(FLUSH_SECONDS + 1)
        await here.state.usage_counter.flush()
        assert (await b.get("/usage/")).json()["requests_last_day"] == 48 + 2


async def test_the_rate_limit_holds_across_both_processes(here: FastAPI, other: Service) -> None:
    """Bursts on both replicas at once admit at most LIMIT requests in the minute; once both
    have given back what they reserved and did not use, exactly LIMIT were admitted."""
    _, _, key = await new_account(here.state.sessionmaker, "Limited")
    settle_in_a_minute()
    async with local(here, key) as a, remote(other, key) as b:
        burst = await asyncio.gather(
            *[a.get("/status/") for _ in range(LIMIT)], *[b.get("/status/") for _ in range(LIMIT)]
        )
        admitted = sum(r.status_code == 200 for r in burst)
        assert admitted <= LIMIT
        assert {r.status_code for r in burst} <= {200, 429}
        for r in burst:
            if r.status_code == 429:
                assert_error(r, 429, "RATE_LIMITED")
        await asyncio.sleep(FLUSH_SECONDS + 1)  # unused reservations go back
        await here.state.usage_counter.flush()
        clients = [a, b]
        # one at a time, alternating, take what is left (a replica may refuse while the other
        # holds unused tokens: then the other admits the next one)
        for i in range(4 * LIMIT):
            if admitted == LIMIT:
                break
            if (await clients[i % 2].get("/status/")).status_code == 200:
                admitted += 1
        assert admitted == LIMIT
        refused = [await a.get("/status/"), await b.get("/status/")]
        assert [r.status_code for r in refused] == [429, 429]
        assert all(r.headers["x-ratelimit-remaining"] == "0" for r in refused)
