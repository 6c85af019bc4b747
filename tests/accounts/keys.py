"""Keys made over the API, and clients that use them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Caller


async def make_key(api: Caller, **spec: Any) -> dict[str, Any]:
    """A key of the caller's account (POST /keys/); `scopes` defaults to read."""
    spec.setdefault("name", "test key")
    spec.setdefault("scopes", ["read"])
    r = await api.client.post("/keys/", json=spec)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@asynccontextmanager
async def using(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test/api/v1", headers={"X-Api-Key": key}
    ) as client:
        yield client
