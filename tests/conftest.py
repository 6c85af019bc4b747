"""Shared fixtures: one real PostgreSQL per test session, the real app over ASGI, and a new
account with a real API key for every test (tests isolate by account, not by mocking)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.accounts import service as accounts_service
from app.core.config import Settings
from app.main import create_app
from tests.fixtures.database import provide_test_database, use_temporary_runtime_dir

pytest_plugins = ["tests.fixtures.sales"]

use_temporary_runtime_dir()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    yield from provide_test_database()


def make_settings(**overrides: object) -> Settings:
    # Any: pydantic validates each value against its field when Settings is built
    # no failed-authentication throttle: the session's app answers every test's 401s from one
    # address (tests/accounts/test_throttle.py turns it on)
    values: dict[str, Any] = {
        "migrate_on_start": False,
        "log_level": "WARNING",
        "auth_failures_per_minute": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest_asyncio.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def engine(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine


@pytest.fixture(scope="session")
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


@dataclass
class Caller:
    """An account with a key, and a client that sends the key."""

    account_id: int
    key_id: int
    api_key: str
    client: httpx.AsyncClient


async def new_account(
    sessionmaker: async_sessionmaker[AsyncSession], name: str = "Test account"
) -> tuple[int, int, str]:
    async with sessionmaker() as session, session.begin():
        account, issued = await accounts_service.create_account(session, name=name)
        return account.id, issued.key_id, issued.api_key


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _caller(app: FastAPI, name: str) -> AsyncIterator[Caller]:
    account_id, key_id, key = await new_account(app.state.sessionmaker, name)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test/api/v1", headers={"X-Api-Key": key}
    ) as c:
        yield Caller(account_id, key_id, key, c)


@pytest_asyncio.fixture
async def api(app: FastAPI) -> AsyncIterator[Caller]:
    """The caller under test: a fresh account."""
    async for caller in _caller(app, "Alice"):
        yield caller


@pytest_asyncio.fixture
async def intruder(app: FastAPI) -> AsyncIterator[Caller]:
    """Another account, which must never see or change the first one's data."""
    async for caller in _caller(app, "Mallory"):
        yield caller
