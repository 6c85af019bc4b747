"""API keys: compared in constant time, stored only as digests, never logged (not from the header,
not from the query string, whatever the outcome of the request)."""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.accounts import service as accounts_service
from tests.conftest import Caller
from tests.fixtures.live import LiveServer, live_server


def test_presented_keys_are_compared_in_constant_time() -> None:
    """resolve_key compares digests with hmac.compare_digest, checks every candidate of the
    prefix (no early exit), and never compares key material with ==."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(accounts_service.resolve_key)))
    calls = [
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    ]
    assert "compare_digest" in calls
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(o, ast.Eq) for o in node.ops):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            attrs = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            assert not ({"digest", "presented"} & names or {"key_hash"} & attrs), ast.unparse(node)
        assert not isinstance(node, ast.Break), "the loop over candidates must not exit early"


@pytest.mark.asyncio
async def test_only_a_digest_and_a_short_prefix_are_stored(api: Caller, app: FastAPI) -> None:
    async with app.state.engine.connect() as conn:
        row = (
            (await conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": api.key_id}))
            .mappings()
            .one()
        )
    assert row["key_hash"] == hashlib.sha256(api.api_key.encode()).digest()
    assert row["prefix"] == api.api_key[:12]
    secret = api.api_key[12:]
    assert not any(isinstance(v, str) and secret in v for v in row.values())


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url, log_level="DEBUG") as server:
        yield server


def test_keys_never_reach_the_logs(live: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG (ours, uvicorn's, SQLAlchemy's statements and parameters) over a
    real socket: the key sent as a header and as a query parameter (also percent-encoded), on
    success, on 401, 404, 405 and 400, must not appear in any log record."""
    _, _, key = live.new_account("Logged")
    wrong = key[:-4] + "AAAA"
    caplog.set_level(logging.DEBUG)
    # As in production (app/core/logging.py, `serve`'s access_log=False): uvicorn's own access
    # log, which prints raw URLs, has no handler. (pytest 9 attaches its capture handler to
    # non-propagating loggers too, which would switch it on here.)
    uvicorn_access = logging.getLogger("uvicorn.access")
    assert uvicorn_access.propagate is False
    uvicorn_access.handlers.clear()
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        with httpx.Client(base_url=live.url + "/api/v1", timeout=10) as c:
            for presented in (key, wrong):
                c.get("/data-items/", headers={"X-Api-Key": presented})
                c.get("/data-items/", params={"api_key": presented, "q": "1"})
                c.get(f"/data-items/?api%5Fkey={presented}")
                c.get(f"/data-items/?API_KEY={presented}&api_key={presented}")
                c.get("/data-items/999999999/", params={"api_key": presented})
                c.put("/data-items/", headers={"X-Api-Key": presented})
                c.post(
                    "/data-items/",
                    params={"api_key": presented},
                    content=b"{bad",
                    headers={"content-type": "application/json"},
                )
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.NOTSET)
    # the service's records (the test's own HTTP client logs what it sends: not the service)
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert {"app.access", "sqlalchemy.engine.Engine"} <= {r.name for r in records}
    assert not any(r.name == "uvicorn.access" for r in records)
    for secret in (key, wrong, key[12:], wrong[12:]):
        for record in records:
            assert secret not in record.getMessage(), record.name
            assert secret not in repr(record.__dict__), record.name
