"""A field type change racing a row write: the write waits for the change and is checked against
the new type. And values that do not fit their field (stored before that was so) never make a
read fail: they are reported, left out of aggregates, and their rows stay repairable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from tests.conftest import Caller
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


def _dsn(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def _waiting_on_a_lock(db: asyncpg.Connection, fragment: str) -> bool:
    """Whether a statement of the service containing `fragment` is waiting for a lock."""
    await db.execute("SELECT pg_stat_clear_snapshot()")  # (read once per transaction otherwise)
    rows = await db.fetch(
        "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
        "current_database() AND application_name = 'data-items-service'"
    )
    return any(fragment in r["query"] for r in rows)


async def _until(predicate: Any, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("write", ["create", "bulk", "patch"])
async def test_a_row_write_racing_a_type_change_is_checked_against_the_new_type(
    api: Caller, db: asyncpg.Connection, write: str
) -> None:
    item = await create_item(api.client, fields=[{"field_label": "Amount", "field_type": "char"}])
    base, fid = f"/data-items/{item['id']}", str(item["fields"][0]["id"])
    rows = [{fid: str(i)} for i in range(300)]
    assert (await api.client.post(f"{base}/rows/bulk/", json={"rows": rows})).status_code == 201
    # Hold the type change in the middle: after it has locked the item and converted the rows,
    # before it can mark the statistics stale and commit.
    blocker = db.transaction()
    await blocker.start()
    await db.execute("SELECT 1 FROM field_stats WHERE field_id = $1 FOR UPDATE", int(fid))
    change = asyncio.ensure_future(
        api.client.patch(f"{base}/fields/{fid}/", json={"field_type": "decimal"})
    )
    await _until(lambda: _waiting_on_a_lock(db, "field_stats"))
    if write == "create":
        sent = api.client.post(f"{base}/rows/", json={"values": {fid: "abc"}})
    elif write == "bulk":
        sent = api.client.post(f"{base}/rows/bulk/", json={"rows": [{fid: "1"}, {fid: "abc"}]})
    else:
        sent = api.client.patch(f"{base}/rows/0/", json={"values": {fid: "abc"}})
    racing = asyncio.ensure_future(sent)
    await asyncio.sleep(0.3)
    assert not racing.done(), racing.result().text  # it waits for the item, not validates first
    await blocker.rollback()
    assert (await change).status_code == 200
    body = assert_error(await racing, 400)
    assert "not a number" in body["error"] and "decimal field" in body["error"], body
    stored = await db.fetch(
        """SELECT "values"->$2 AS v FROM rows WHERE data_item_id = $1""", item["id"], fid
    )
    assert {r["v"] for r in stored} == {str(i) for i in range(300)}  # numbers now, no "abc"
    summary = (await api.client.get(f"{base}/summary/")).json()["field_summaries"][0]
    assert summary["sum"] == sum(range(300)) and "invalid_count" not in summary


async def test_a_field_read_before_a_racing_change_is_read_again(
    api: Caller, db: asyncpg.Connection
) -> None:
    """Two type changes of one field at once: the second sees the first's committed type (it
    converted the stored values with a stale "old type" before)."""
    item = await create_item(api.client, fields=[{"field_label": "When", "field_type": "char"}])
    base, fid = f"/data-items/{item['id']}", str(item["fields"][0]["id"])
    assert (
        await api.client.post(f"{base}/rows/bulk/", json={"rows": [{fid: "2026-01-15"}]})
    ).status_code == 201
    blocker = db.transaction()
    await blocker.start()
    await db.execute("SELECT 1 FROM field_stats WHERE field_id = $1 FOR UPDATE", int(fid))
    first = asyncio.ensure_future(
        api.client.patch(f"{base}/fields/{fid}/", json={"field_type": "date"})
    )
    await _until(lambda: _waiting_on_a_lock(db, "field_stats"))
    second = asyncio.ensure_future(
        api.client.patch(f"{base}/fields/{fid}/", json={"field_type": "decimal"})
    )
    await asyncio.sleep(0.3)
    await blocker.rollback()
    assert (await first).status_code == 200
    refused = assert_error(await second, 400, "CONVERSION_FAILED")
    assert "from date to decimal" in refused["error"], refused
    fields = (await api.client.get(f"{base}/fields/")).json()["fields"]
    assert [f["field_type"] for f in fields] == ["date"]


# ------------------------------------------------------------------ values that do not fit


@pytest_asyncio.fixture
async def damaged(api: Caller, db: asyncpg.Connection) -> dict[str, Any]:
    """An item with one good row and one row whose cells do not fit their fields, written
    straight into the table as an old race (or a bug) would have left it."""
    item = await create_item(
        api.client,
        fields=[
            {"field_label": "Region", "field_type": "char"},
            {"field_label": "Amount", "field_type": "decimal"},
            {"field_label": "Day", "field_type": "date"},
            {"field_label": "Paid", "field_type": "boolean"},
        ],
    )
    ids = [str(f["id"]) for f in item["fields"]]
    region, amount, day, paid = ids
    good = {region: "North", amount: "10.5", day: "2026-01-15", paid: True}
    base = f"/data-items/{item['id']}"
    assert (await api.client.post(f"{base}/rows/", json={"values": good})).status_code == 201
    bad = {region: 7, amount: "abc", day: "2026-02-31x", paid: "maybe"}
    await db.execute(
        'INSERT INTO rows (data_item_id, row_ref, "values") VALUES ($1, 1, $2::jsonb)',
        item["id"],
        json.dumps(bad),
    )
    await db.execute(
        "UPDATE data_items SET row_count = 2, next_row_ref = 2 WHERE id = $1", item["id"]
    )
    await db.execute("UPDATE field_stats SET stale = true WHERE data_item_id = $1", item["id"])
    return {
        "item": item,
        "base": base,
        "region": region,
        "amount": amount,
        "day": day,
        "paid": paid,
    }


async def test_the_summary_reports_values_that_do_not_fit(
    api: Caller, damaged: dict[str, Any]
) -> None:
    r = await api.client.get(f"{damaged['base']}/summary/")
    assert r.status_code == 200, r.text
    by_id = {
        str(s["field_id"]): s for s in json.loads(r.content, parse_float=Decimal)["field_summaries"]
    }
    amount = by_id[damaged["amount"]]
    assert amount["sum"] == Decimal("10.5") and amount["total_values"] == 1
    assert amount["invalid_count"] == 1 and amount["empty_count"] == 0
    assert amount["invalid_cells"] == [{"row_ref": "1", "value": "abc"}]
    assert by_id[damaged["day"]]["invalid_cells"] == [{"row_ref": "1", "value": "2026-02-31x"}]
    assert by_id[damaged["day"]]["max_date"] == "2026-01-15"
    assert by_id[damaged["paid"]]["invalid_cells"] == [{"row_ref": "1", "value": "maybe"}]
    assert by_id[damaged["region"]]["invalid_cells"] == [{"row_ref": "1", "value": 7}]


async def test_reads_over_values_that_do_not_fit_answer(
    api: Caller, damaged: dict[str, Any]
) -> None:
    base, amount, day, region = (
        damaged["base"],
        damaged["amount"],
        damaged["day"],
        damaged["region"],
    )
    paid = damaged["paid"]
    for grouping in ("", "day", "week", "month", "quarter", "year"):
        widget = {
            "chart_type": "bar",
            "label_field": int(day if grouping else region),
            "date_grouping": grouping,
            "series": [
                {"value_field": int(amount), "aggregation": a} for a in ("sum", "avg", "min")
            ],
        }
        w = await api.client.post(f"{base}/widgets/", json=widget)
        assert w.status_code == 201, w.text
        r = await api.client.get(f"{base}/widgets/{w.json()['id']}/data/")
        assert r.status_code == 200, (grouping, r.text)
        sums = [Decimal(str(v)) for v in r.json()["datasets"][0]["data"] if v is not None]
        assert sums == [Decimal("10.5")], (grouping, r.json())
    w = await api.client.post(
        f"{base}/widgets/",
        json={
            "label_field": int(paid),
            "series": [{"value_field": int(amount), "aggregation": "count"}],
        },
    )
    assert (await api.client.get(f"{base}/widgets/{w.json()['id']}/data/")).status_code == 200
    for params in (
        {"sort": f"-{amount}"},
        {"sort": f"{paid},{day}"},
        {"filter": json.dumps({"conditions": [{"field": int(amount), "op": "gt", "value": 1}]})},
        {"search": "abc"},
    ):
        r = await api.client.get(f"{base}/rows/", params=params)
        assert r.status_code == 200, (params, r.text)
    for fmt in ("csv", "json", "xlsx"):
        r = await api.client.get(f"{base}/export/", params={"format": fmt})
        assert r.status_code == 200, (fmt, r.text[:300])
    assert (await api.client.post(f"{base}/copy/", json={})).status_code == 201


async def test_a_row_with_values_that_do_not_fit_is_repairable_and_deletable(
    api: Caller, damaged: dict[str, Any]
) -> None:
    base, amount, day = damaged["base"], damaged["amount"], damaged["day"]
    r = await api.client.patch(f"{base}/rows/1/", json={"values": {amount: "12"}})
    assert r.status_code == 200, r.text
    assert r.json()["cells_updated"] == 1
    row = json.loads((await api.client.get(f"{base}/rows/1/")).content, parse_float=Decimal)
    assert row["row"][amount] == 12 and row["row"][day] == "2026-02-31x"  # the rest as stored
    summary = (await api.client.get(f"{base}/summary/")).json()["field_summaries"]
    assert next(s for s in summary if str(s["field_id"]) == amount)["sum"] == 22.5
    # a type change reads the bad value as text: here it cannot convert, and says which
    r = await api.client.patch(f"{base}/fields/{day}/", json={"field_type": "decimal"})
    assert "2026-02-31x" in json.dumps(assert_error(r, 400, "CONVERSION_FAILED"))
    r = await api.client.delete(f"{base}/rows/1/")
    assert r.status_code == 200 and r.json()["cells_removed"] == 4, r.text
    summary = (await api.client.get(f"{base}/summary/")).json()["field_summaries"]
    assert all("invalid_count" not in s for s in summary), summary
