"""A bad query parameter of an endpoint that takes a large body (an upload, a bundle) is a 400
before the body is read: FastAPI validates an endpoint's query parameters only after its
dependencies, and those read the body, so a `?async=maybe` used to cost the whole upload."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Message

from tests.conftest import new_account

pytestmark = pytest.mark.asyncio


async def call(app: FastAPI, path: str, query: str, key: str, content_type: str) -> dict[str, Any]:
    """One raw ASGI request whose body never arrives: counts how often the app asks for it."""
    asked = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"--x\r\n", "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "server": ("test", 80), "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"test"), (b"x-api-key", key.encode()),
                    (b"content-type", content_type.encode()), (b"content-length", b"100000000")],
    }  # fmt: skip
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "asked": asked, "body": body.decode()}


@pytest.mark.parametrize(
    ("path", "query", "names"),
    [
        ("/api/v1/data-items/create-from-file/", "async=maybe", "async"),
        ("/api/v1/data-items/import-bundle/", "data_name=" + "x" * 300, "data_name"),
    ],
)
async def test_a_bad_query_parameter_is_a_400_before_the_body(
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    path: str,
    query: str,
    names: str,
) -> None:
    _, _, key = await new_account(sessionmaker, "Query first")
    got = await call(app, path, query, key, "multipart/form-data; boundary=x")
    assert got["status"] == 400, got
    assert names in got["body"], got
    assert got["asked"] == 0, got


async def test_a_good_query_still_reads_the_body(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The check does not stop a valid request: its body is read (and here, never ending in
    a proper multipart part, refused as such)."""
    _, _, key = await new_account(sessionmaker, "Query first")
    got = await call(app, "/api/v1/data-items/create-from-file/", "async=false", key,
                     "multipart/form-data; boundary=x")  # fmt: skip
    assert got["asked"] > 0, got
