"""The log of a failing request holds no cell value, filter or search value, API key or webhook
secret: database errors are logged without their bound parameters and with the values in
PostgreSQL's message replaced, and the access log keeps data parameters to their length."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from tests.conftest import Caller
from tests.helpers import create_item

pytestmark = pytest.mark.asyncio

CELL = "CELL-SECRET-4711"
FILTER = "FILTER-SECRET-0815"


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    dsn = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        yield conn
    finally:
        await conn.close()


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the service's records would print, tracebacks included (not the test's own
    HTTP client's)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(
        formatter.format(r) for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )


async def test_failing_row_writes_log_no_values_or_keys(
    api: Caller, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    item = await create_item(api.client, fields=[{"field_label": "Note"}])
    fid = str(item["fields"][0]["id"])
    base = f"/data-items/{item['id']}"
    assert (
        await api.client.post(f"{base}/rows/", json={"values": {fid: "fine"}})
    ).status_code == 201
    # The database itself refuses the values now (a check constraint on this item's rows only):
    # its error names the row, and the statements bind the values.
    await db.execute(
        f"""ALTER TABLE item_rows.p{item["id"]} ADD CONSTRAINT probe
            CHECK ("values"::text NOT LIKE '%CELL-SECRET%') NOT VALID"""
    )
    caplog.set_level(logging.INFO)
    query = {
        "filter": json.dumps({"conditions": [{"field": int(fid), "op": "eq", "value": FILTER}]})
    }
    r = await api.client.post(
        f"{base}/rows/", params={**query, "api_key": api.api_key, "search": FILTER},
        json={"values": {fid: CELL}},
    )  # fmt: skip
    assert r.status_code == 500 and CELL not in r.text
    r = await api.client.patch(f"{base}/rows/0/", json={"values": {fid: CELL}})
    assert r.status_code == 500
    r = await api.client.post(f"{base}/rows/bulk/", json={"rows": [{fid: CELL}]})
    assert r.status_code == 500
    logged = _logged(caplog)
    assert "database error" in logged and "CheckViolation" in logged, logged  # it is logged
    for secret in (CELL, FILTER, api.api_key):
        assert secret not in logged, secret
    assert "filter=[" in logged and "api_key=[redacted]" in logged


async def test_a_failing_webhook_creation_logs_no_secret(
    api: Caller, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await db.execute(
        "ALTER TABLE webhooks ADD CONSTRAINT probe CHECK (description <> 'privacy probe') NOT VALID"
    )
    try:
        caplog.set_level(logging.INFO)
        r = await api.client.post(
            "/webhooks/",
            json={
                "url": "https://hooks.example.com/x",
                "events": ["import.succeeded"],
                "description": "privacy probe",
            },
        )
        assert r.status_code == 500, r.text
    finally:
        await db.execute("ALTER TABLE webhooks DROP CONSTRAINT probe")
    logged = _logged(caplog)
    assert "database error" in logged, logged
    assert "whsec_" not in logged and "fernet" not in logged.lower(), logged
