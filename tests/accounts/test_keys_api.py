"""Keys over the API: created no broader than their maker, secrets shown once, listed without
them, revoked at once; expiry; keys limited to some data items; per-key rate limits; failed
authentications throttled per address; the audit trail; the command line's options."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.main import create_app
from tests.accounts.keys import make_key, using
from tests.accounts.test_cli import cli_json, run_cli
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


async def test_a_key_is_shown_once_and_listed_without_its_secret(app: FastAPI, api: Caller) -> None:
    made = await make_key(api, name="reporting", scopes=["read", "write"], rate_limit_per_minute=50)
    assert made["api_key"].startswith("dik_") and made["api_key"].startswith(made["prefix"])
    assert made["scopes"] == ["read", "write"] and made["data_items"] is None
    assert made["rate_limit_per_minute"] == 50 and made["expires_at"] is None
    async with using(app, made["api_key"]) as client:
        assert (await client.get("/data-items/")).status_code == 200
    r = await api.client.get("/keys/")
    assert r.status_code == 200
    assert made["api_key"] not in r.text and "key_hash" not in r.text
    listed = {k["id"]: k for k in r.json()["keys"]}
    assert listed[made["id"]]["name"] == "reporting"
    assert listed[made["id"]]["last_used_at"] is None  # (counts reach the database each second)
    assert listed[api.key_id]["scopes"] == ["read", "write", "manage", "admin"]
    one = (await api.client.get(f"/keys/{made['id']}/")).json()
    assert one == {**listed[made["id"]], "last_used_at": None}


async def test_revocation_is_immediate_and_audited(app: FastAPI, api: Caller) -> None:
    made = await make_key(api)
    async with using(app, made["api_key"]) as client:
        assert (await client.get("/data-items/")).status_code == 200  # cached now
        r = await api.client.delete(f"/keys/{made['id']}/")
        assert r.status_code == 200, r.text
        assert r.json()["revoked_at"] is not None
        assert_error(await client.get("/data-items/"), 401)
    events = (await api.client.get("/audit/")).json()["events"]
    assert [e["action"] for e in events[:2]] == ["key.revoked", "key.created"]
    assert events[0]["detail"]["key_id"] == made["id"] and events[0]["key_id"] == api.key_id
    assert events[1]["detail"]["scopes"] == ["read"]
    assert made["api_key"] not in json.dumps(events)


async def test_keys_of_another_account_are_not_found(api: Caller, intruder: Caller) -> None:
    made = await make_key(api)
    assert_error(await intruder.client.get(f"/keys/{made['id']}/"), 404)
    assert_error(await intruder.client.delete(f"/keys/{made['id']}/"), 404)
    assert made["id"] not in [k["id"] for k in (await intruder.client.get("/keys/")).json()["keys"]]
    assert (await api.client.get(f"/keys/{made['id']}/")).json()["revoked_at"] is None
    theirs = (await intruder.client.get("/audit/")).json()["events"]
    assert [e["action"] for e in theirs] == ["key.created"]  # its own first key only
    assert theirs[0]["detail"]["key_id"] == intruder.key_id


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["read", "root"]}, "scopes"),
        ({"scopes": "read"}, "scopes"),
        ({"data_items": []}, "data_items"),
        ({"data_items": [0]}, "data_items"),
        ({"data_items": [987654321]}, "not a data item"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "not in the future"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"name": "x" * 201}, "name"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_key_requests_are_400s(api: Caller, spec: dict[str, Any], words: str) -> None:
    body = {"name": "k", "scopes": ["read"], **spec}
    error = assert_error(await api.client.post("/keys/", json=body), 400)
    assert words in json.dumps(error), error
    r = await api.client.post(
        "/keys/", content=b'{"name": "k", "scopes": [', headers={"content-type": "application/json"}
    )
    assert_error(r, 400)


async def test_another_accounts_item_cannot_be_named(api: Caller, intruder: Caller) -> None:
    theirs = await create_item(intruder.client, "Theirs")
    r = await api.client.post(
        "/keys/", json={"name": "k", "scopes": ["read"], "data_items": [theirs["id"]]}
    )
    assert "not a data item" in assert_error(r, 400)["error"]


async def test_a_key_creates_keys_no_broader_than_itself(app: FastAPI, api: Caller) -> None:
    soon = datetime.now(UTC) + timedelta(days=1)
    limited = await make_key(
        api,
        scopes=["read", "admin"],
        expires_at=soon.isoformat(),
        rate_limit_per_minute=100,
    )
    async with using(app, limited["api_key"]) as client:
        ok = {
            "name": "n",
            "scopes": ["read"],
            "expires_at": soon.isoformat(),
            "rate_limit_per_minute": 10,
        }
        assert (await client.post("/keys/", json=ok)).status_code == 201
        broader = [
            {**ok, "scopes": ["read", "write"]},
            {**ok, "expires_at": None},
            {**ok, "expires_at": (soon + timedelta(hours=1)).isoformat()},
            {**ok, "rate_limit_per_minute": 101},
            {**ok, "rate_limit_per_minute": None},
        ]
        for spec in broader:
            body = assert_error(await client.post("/keys/", json=spec), 403, "FORBIDDEN")
            assert "no broader than itself" in body["error"], (spec, body)
    reader = await make_key(api, scopes=["read"])
    async with using(app, reader["api_key"]) as client:
        r = await client.post("/keys/", json={"name": "n", "scopes": ["read"]})
        assert "`admin` scope" in assert_error(r, 403, "FORBIDDEN")["error"]


async def test_an_expired_key_is_told_so(app: FastAPI, api: Caller) -> None:
    made = await make_key(api)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": made["id"]},
        )
    async with using(app, made["api_key"]) as client:
        body = assert_error(await client.get("/data-items/"), 401)
        assert "expired" in body["error"]
    listed = {k["id"]: k for k in (await api.client.get("/keys/")).json()["keys"]}
    assert listed[made["id"]]["expired"] is True


async def upload(api: Caller, name: str) -> dict[str, Any]:
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": name},
        files={"data_file": (f"{name}.csv", b"Name\nAda\n")},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_key_limited_to_items_sees_nothing_else(app: FastAPI, api: Caller) -> None:
    mine = await upload(api, "Mine")
    other = await upload(api, "Other")
    made = await make_key(api, scopes=["read", "write", "manage"], data_items=[mine["id"]])
    field = str(mine["fields"][0]["id"])
    async with using(app, made["api_key"]) as client:
        listed = (await client.get("/data-items/")).json()
        assert [i["id"] for i in listed["data_items"]] == [mine["id"]] and listed["total"] == 1
        assert (await client.get(f"/data-items/{mine['id']}/")).status_code == 200
        r = await client.post(f"/data-items/{mine['id']}/rows/", json={"values": {field: "x"}})
        assert r.status_code == 201, r.text
        o = other["id"]
        for spelled in (
            f"+{o}",
            f"%20{o}",
            f"{o}%20",
            f"{o}.0",
            f"%2B{o}",
            "%C2%B2",
            "%E2%91%A0",
            f"0{o}",
        ):
            for method in ("GET", "HEAD", "PATCH", "DELETE"):
                r = await client.request(method, f"/data-items/{spelled}/", json={"data_name": "x"})
                assert r.status_code == 404, (method, spelled, r.status_code, r.text)
            r = await client.get(f"/data-items/{spelled}/rows/")
            assert r.status_code == 404, (spelled, r.text)
        for method, path in [
            ("GET", f"/data-items/{other['id']}/"),
            ("GET", f"/data-items/{other['id']}/rows/"),
            ("GET", f"/data-items/{other['id']}/export/"),
            ("POST", f"/data-items/{other['id']}/rows/"),
            ("DELETE", f"/data-items/{other['id']}/"),
        ]:
            body = assert_error(await client.request(method, path, json={}), 404)
            assert body["error"] == f"Data item {other['id']} not found.", (method, path)
        refused = [
            ("POST", "/data-items/", {"data_name": "New"}),
            ("POST", f"/data-items/{mine['id']}/copy/", {}),
            ("GET", "/webhooks/", None),
            ("GET", "/usage/", None),
        ]
        for method, path, payload in refused:
            body = assert_error(await client.request(method, path, json=payload), 403, "FORBIDDEN")
            assert "limited to data items" in body["error"], (method, path)
        r = await client.post(
            "/data-items/create-from-file/",
            data={"data_name": "x"},
            files={"data_file": ("a.csv", b"A\n1\n")},
        )
        assert_error(r, 403, "FORBIDDEN")
        assert (await client.get("/jobs/")).json()["total"] == 0
        counts = (await client.get("/status/")).json()["counts"]
        assert counts == {"data_items": 1, "rows": 2}  # its item only (one row + the one added)
        uploads = (await client.get("/uploads/")).json()
        assert [u["data_item_id"] for u in uploads["uploads"]] == [mine["id"]]
        assert uploads["total"] == 1
        theirs = other["reference_file"]["id"]
        assert_error(await client.get(f"/uploads/{theirs}/"), 404)
        r = await client.get(f"/data-items/{other['id']}/reference-files/{theirs}/")
        assert_error(r, 404)
    assert (await api.client.get("/data-items/")).json()["total"] == 2  # nothing was created
    assert (await api.client.get(f"/uploads/{theirs}/")).status_code == 200


async def test_a_key_limited_to_items_cannot_use_the_keys_api(app: FastAPI, api: Caller) -> None:
    item = await create_item(api.client, "Mine")
    made = await make_key(api, scopes=["read", "admin"], data_items=[item["id"]])
    async with using(app, made["api_key"]) as client:
        assert_error(await client.get("/keys/"), 403, "FORBIDDEN")
        assert_error(await client.post("/keys/", json={"name": "x", "scopes": ["read"]}), 403)


async def test_a_per_key_rate_limit(app: FastAPI, api: Caller) -> None:
    made = await make_key(api, rate_limit_per_minute=3)
    async with using(app, made["api_key"]) as client:
        for _ in range(3):
            r = await client.get("/data-items/")
            assert r.status_code == 200 and r.headers["x-ratelimit-limit"] == "3"
        r = await client.get("/data-items/")
        body = assert_error(r, 429, "RATE_LIMITED")
        assert "3 requests per minute" in body["error"] and int(r.headers["retry-after"]) >= 1
    assert (await api.client.get("/data-items/")).status_code == 200  # its own budget only


async def test_failed_authentications_are_throttled_per_address(database_url: str) -> None:
    app = create_app(make_settings(auth_failures_per_minute=3), database_url=database_url)
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as session, session.begin():
            from app.accounts import service

            _, issued = await service.create_account(session, name="Throttled")
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            for i in range(3):
                bad = {"X-Api-Key": f"dik_{'x' * 43}{i}"}
                assert_error(await c.get("/data-items/", headers=bad), 401)
            lookups = app.state.api_keys.lookups
            for i in range(20):
                r = await c.get("/data-items/", headers={"X-Api-Key": f"dik_{'y' * 43}{i}"})
                assert_error(r, 429, "RATE_LIMITED")
                assert 1 <= int(r.headers["retry-after"]) <= 60
            assert app.state.api_keys.lookups == lookups  # no query while throttled
            good = {"X-Api-Key": issued.api_key}
            assert_error(await c.get("/data-items/", headers=good), 429)  # not in memory
        other = httpx.ASGITransport(app=app, client=("198.51.100.9", 4000))
        async with httpx.AsyncClient(transport=other, base_url="http://t/api/v1") as c:
            good = {"X-Api-Key": issued.api_key}
            assert (await c.get("/data-items/", headers=good)).status_code == 200
        # a valid key answered from memory passes even from the throttled address
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            assert (await c.get("/data-items/", headers=good)).status_code == 200
            assert_error(await c.get("/data-items/", headers=bad), 429)


async def test_the_command_line_issues_scoped_keys_and_shows_the_audit(
    database_url: str, app: FastAPI
) -> None:
    created = cli_json(database_url, "accounts", "create", "Cli Scopes")
    account = str(created["account_id"])
    made = cli_json(
        database_url,
        "keys", "create", account, "--scope", "read", "--scope", "write",
        "--expires-in", "30d", "--rate-limit", "5", "--name", "etl",
    )  # fmt: skip
    assert made["scopes"] == ["read", "write"] and made["rate_limit_per_minute"] == 5
    expires = datetime.fromisoformat(str(made["expires_at"]))
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    async with using(app, str(made["api_key"])) as client:
        assert (await client.get("/data-items/")).status_code == 200
        assert_error(await client.post("/data-items/", json={"data_name": "x"}), 403)
    listed = cli_json(database_url, "keys", "list", account)
    keys = listed["keys"]
    assert isinstance(keys, list)
    assert keys[0]["scopes"] == ["read", "write", "manage", "admin"]  # the account's first key
    assert keys[1]["expires_at"] == made["expires_at"] and keys[1]["name"] == "etl"
    text_out = run_cli(database_url, "keys", "list", account)
    assert "read,write" in text_out.stdout and "expires" in text_out.stdout
    audit = cli_json(database_url, "audit", account)
    events = audit["events"]
    assert isinstance(events, list)
    actions = [e["action"] for e in events]
    assert actions[0] == "request.forbidden" and actions.count("key.created") == 2
    for bad in (["--expires-in", "soon"], ["--scope", "root"], ["--item", "987654321"]):
        result = run_cli(database_url, "keys", "create", account, *bad)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
