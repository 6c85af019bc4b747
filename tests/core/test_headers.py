"""CORS (off by default, CORS_ORIGINS to allow origins) and security headers: nosniff on every
response, a strict CSP and no framing on the docs pages, their assets and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import Caller, make_settings

pytestmark = pytest.mark.asyncio

ORIGIN = "https://app.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "x-api-key, content-type",
}


@pytest_asyncio.fixture
async def cors_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(cors_origins=f" {ORIGIN} , https://other.example.org"),
        database_url=database_url,
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_cors_is_off_by_default(api: Caller) -> None:
    preflight = await api.client.options("/data-items/", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    simple = await api.client.get("/data-items/", headers={"Origin": ORIGIN})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_origins_are_allowed_and_others_are_not(cors_app: FastAPI, api: Caller) -> None:
    transport = httpx.ASGITransport(app=cors_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
        preflight = await c.options("/data-items/", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "x-api-key" in allowed and "content-type" in allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in preflight.headers  # keys, not cookies

        r = await c.get("/data-items/", headers={"Origin": ORIGIN, "X-Api-Key": api.api_key})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed and "x-ratelimit-remaining" in exposed
        # errors carry the header too, so a browser client can read them
        unauthorized = await c.get("/data-items/", headers={"Origin": ORIGIN})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["access-control-allow-origin"] == ORIGIN

        evil = await c.options(
            "/data-items/", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        )
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
        r = await c.get(
            "/data-items/", headers={"Origin": "https://evil.example", "X-Api-Key": api.api_key}
        )
        assert "access-control-allow-origin" not in r.headers


async def test_docs_surface_has_security_headers(client: httpx.AsyncClient) -> None:
    pages = ["/docs", "/redoc", "/openapi.json"]
    page = await client.get("/docs")
    pages += re.findall(r'(?:src|href)="(/docs-static/[^"]+)"', page.text)
    assert len(pages) > 3
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "http:" not in csp and "https:" not in csp, path  # nothing from other hosts


async def test_every_response_is_nosniff(api: Caller, client: httpx.AsyncClient) -> None:
    for r in (
        await api.client.get("/data-items/"),
        await api.client.get("/data-items/0/"),
        await client.get("/api/v1/data-items/"),
        await client.get("/healthz"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "x-frame-options" not in r.headers  # only the docs pages need it
