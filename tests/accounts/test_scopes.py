"""Scopes: every operation declares one (walked from the OpenAPI, so a new operation without one
fails here), and a key holding a single scope is refused (403 FORBIDDEN naming the scope, with
an audit record) exactly on the operations that need another."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

from app.accounts.scopes import OPERATIONS, Scope
from tests.accounts.keys import make_key, using
from tests.conftest import Caller
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

METHODS = ("get", "post", "put", "patch", "delete")


def api_operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        if method in METHODS
    ]


async def test_every_operation_declares_its_scope(app: FastAPI) -> None:
    operations = api_operations(app)
    assert len(operations) >= 50
    for method, path, operation in operations:
        scope = operation.get("x-required-scope")
        assert scope in {s.value for s in Scope}, (method, path)
        assert OPERATIONS[(method, path)] == scope
        assert "403" in operation["responses"], (method, path)
        assert f"Scope: `{scope}`." in operation["description"], (method, path)
    # and nothing is declared that the app does not serve (a stale entry would hide a typo)
    assert {(m, p) for m, p, _ in operations} == set(OPERATIONS)


def concrete(path: str) -> str:
    """The path with every parameter a number no resource of a fresh account has."""
    return re.sub(r"\{[a-z_]+\}", "999999999", path)


@pytest.mark.parametrize("scope", [s.value for s in Scope])
async def test_a_single_scope_key_against_every_operation(
    app: FastAPI, api: Caller, scope: str
) -> None:
    """403 exactly where the operation needs another scope; elsewhere the request goes on (to
    a 400, 404 or success: the account holds nothing these ids name)."""
    key = await make_key(api, scopes=[scope])
    async with using(app, key["api_key"]) as client:
        for method, path, operation in api_operations(app):
            needed = operation["x-required-scope"]
            r = await client.request(method, concrete(path).removeprefix("/api/v1"))
            if needed == scope:
                assert r.status_code != 403, (method, path, r.text)
                assert r.status_code < 500, (method, path, r.text)
            else:
                body = assert_error(r, 403, "FORBIDDEN")
                assert f"`{needed}` scope" in body["error"], (method, path, body)
                assert body["details"] == [{"scope": needed, "message": f"needs scope {needed}"}]


async def test_each_scope_does_its_work(app: FastAPI, api: Caller) -> None:
    reader, writer, manager, admin = [
        (await make_key(api, scopes=[s]))["api_key"] for s in ("read", "write", "manage", "admin")
    ]
    async with using(app, manager) as client:
        r = await client.post(
            "/data-items/", json={"data_name": "Scoped", "fields": [{"field_label": "Name"}]}
        )
        assert r.status_code == 201, r.text
        item = r.json()
    field = str(item["fields"][0]["id"])
    async with using(app, writer) as client:
        r = await client.post(f"/data-items/{item['id']}/rows/", json={"values": {field: "Ada"}})
        assert r.status_code == 201, r.text
        assert_error(await client.get(f"/data-items/{item['id']}/rows/"), 403, "FORBIDDEN")
    async with using(app, reader) as client:
        rows = (await client.get(f"/data-items/{item['id']}/rows/")).json()["rows"]
        assert rows[0][field] == "Ada"
        assert_error(await client.delete(f"/data-items/{item['id']}/"), 403, "FORBIDDEN")
    async with using(app, admin) as client:
        assert (await client.get("/keys/")).status_code == 200
        assert_error(await client.get(f"/data-items/{item['id']}/"), 403, "FORBIDDEN")


async def test_a_refusal_is_in_the_audit_trail(app: FastAPI, api: Caller) -> None:
    reader = await make_key(api, scopes=["read"])
    async with using(app, reader["api_key"]) as client:
        r = await client.post("/data-items/", json={"data_name": "Nope"})
        assert_error(r, 403, "FORBIDDEN")
        request_id = r.headers["x-request-id"]
    events = (await api.client.get("/audit/")).json()["events"]
    refused = [e for e in events if e["action"] == "request.forbidden"]
    assert refused[0]["key_id"] == reader["id"]
    assert refused[0]["detail"] == {
        "method": "POST",
        "path": "/api/v1/data-items/",
        "reason": "needs scope manage",
    }
    assert refused[0]["request_id"] == request_id
    assert (await api.client.get("/data-items/")).json()["total"] == 0  # nothing was created


async def test_head_needs_what_get_needs(app: FastAPI, api: Caller) -> None:
    writer = await make_key(api, scopes=["write"])
    async with using(app, writer["api_key"]) as client:
        assert (await client.head("/data-items/")).status_code == 403
