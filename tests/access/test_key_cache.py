"""The key cache: valid keys and failed keys are answered from memory, within bounds of time
(AUTH_CACHE_SECONDS for valid keys) and of size (AUTH_CACHE_ENTRIES each), over the real HTTP
stack and database. `lookups` counts the database lookups the cache made."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.accounts.cache import KeyCache
from app.main import create_app
from tests.conftest import make_settings, new_account
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

ENTRIES = 50


@pytest_asyncio.fixture
async def small(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        # a long AUTH_CACHE_SECONDS: a valid key stays answered from memory however slowly the
        # flood goes (the revocation bound is tests/access/test_replicas.py's)
        make_settings(auth_cache_entries=ENTRIES, auth_cache_seconds=60),
        database_url=database_url,
    )
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t/api/v1")


def random_key() -> str:
    return "dik_" + secrets.token_urlsafe(32)


async def test_a_failed_key_is_not_looked_up_again(small: FastAPI) -> None:
    cache: KeyCache = small.state.api_keys
    bad = random_key()
    async with client_for(small) as c:
        before = cache.lookups
        for _ in range(20):
            assert_error(await c.get("/data-items/", headers={"X-Api-Key": bad}), 401)
        assert cache.lookups == before + 1
        # not a key at all (prefix, length): refused without a lookup, and not remembered
        for presented in ("nope", "dik_" + "x" * 300):
            assert_error(await c.get("/data-items/", headers={"X-Api-Key": presented}), 401)
        assert cache.lookups == before + 1


async def test_a_flood_of_random_keys_stays_within_the_bound(small: FastAPI) -> None:
    cache: KeyCache = small.state.api_keys
    _, _, good = await new_account(small.state.sessionmaker, "Flooded")
    async with client_for(small) as c:
        assert (await c.get("/data-items/", headers={"X-Api-Key": good})).status_code == 200
        before = cache.lookups
        for _ in range(4 * ENTRIES):
            assert_error(await c.get("/data-items/", headers={"X-Api-Key": random_key()}), 401)
        assert cache.lookups == before + 4 * ENTRIES  # one lookup per new key, no more
        assert len(cache) <= 2 * ENTRIES  # failed keys and valid keys: ENTRIES each at most
        # the valid key was not pushed out by the flood: answered without a lookup
        after = cache.lookups
        assert (await c.get("/data-items/", headers={"X-Api-Key": good})).status_code == 200
        assert cache.lookups == after


async def test_concurrent_requests_with_one_new_key_share_a_lookup(small: FastAPI) -> None:
    cache: KeyCache = small.state.api_keys
    _, _, key = await new_account(small.state.sessionmaker, "Concurrent")
    async with client_for(small) as c:
        before = cache.lookups
        answers = await asyncio.gather(
            *[c.get("/data-items/", headers={"X-Api-Key": key}) for _ in range(20)]
        )
        assert {r.status_code for r in answers} == {200}
        assert cache.lookups == before + 1
