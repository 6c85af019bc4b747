"""Summary: the contract's shape, exact arithmetic, and exact after every kind of write."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI

from app.summary import service as summary_service
from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


async def summary(api: Caller, item_id: int) -> dict[str, Any]:
    r = await api.client.get(f"/data-items/{item_id}/summary/")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = json.loads(r.content, parse_float=Decimal)
    return body


def by_label(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["field_label"]: s for s in body["field_summaries"]}


async def bulk(api: Caller, sales: Sales, rows: list[dict[str, Any]]) -> None:
    r = await api.client.post(
        f"/data-items/{sales.id}/rows/bulk/", json={"rows": [sales.row(**x) for x in rows]}
    )
    assert r.status_code == 201, r.text


async def test_empty_item(api: Caller, sales: Sales) -> None:
    body = await summary(api, sales.id)
    assert body == {
        "id": sales.id,
        "data_name": "Sales",
        "row_count": 0,
        "field_count": 5,
        "field_summaries": [
            {"field_id": int(sales.f["Region"]), "field_label": "Region", "field_type": "char",
             "total_values": 0, "empty_count": 0, "unique_count": 0, "top_values": []},
            {"field_id": int(sales.f["Revenue"]), "field_label": "Revenue", "field_type": "decimal",
             "total_values": 0, "empty_count": 0, "min": None, "max": None, "sum": None, "avg": None},
            {"field_id": int(sales.f["Close Date"]), "field_label": "Close Date", "field_type": "date",
             "total_values": 0, "empty_count": 0, "min_date": None, "max_date": None},
            {"field_id": int(sales.f["Closed"]), "field_label": "Closed", "field_type": "boolean",
             "total_values": 0, "empty_count": 0, "true_count": 0, "false_count": 0},
            {"field_id": int(sales.f["Notes"]), "field_label": "Notes", "field_type": "text",
             "total_values": 0, "empty_count": 0, "unique_count": 0, "top_values": []},
        ],
    }  # fmt: skip


async def test_shape_and_exact_values(api: Caller, sales: Sales) -> None:
    await bulk(
        api,
        sales,
        [
            {"region": "North", "revenue": "0.1", "date": "2026-03-31", "closed": True},
            {"region": "South", "revenue": "0.2", "date": "2026-01-02", "closed": "no"},
            {"region": "North", "revenue": "12345678901234567890.5", "closed": "yes"},
            {"region": "East"},
            {"region": "South", "date": "2026-02-10T08:00:00"},
        ],
    )
    s = by_label(await summary(api, sales.id))
    assert s["Region"]["unique_count"] == 3
    assert s["Region"]["top_values"] == [
        {"value": "North", "count": 2}, {"value": "South", "count": 2}, {"value": "East", "count": 1},
    ]  # fmt: skip
    revenue = s["Revenue"]
    assert revenue["total_values"] == 3 and revenue["empty_count"] == 2
    assert revenue["sum"] == Decimal("12345678901234567890.8")
    assert revenue["min"] == Decimal("0.1") and revenue["max"] == Decimal("12345678901234567890.5")
    assert revenue["avg"] == Decimal("4115226300411522630.27")
    assert (
        s["Close Date"]["min_date"] == "2026-01-02" and s["Close Date"]["max_date"] == "2026-03-31"
    )
    assert s["Closed"]["true_count"] == 2 and s["Closed"]["false_count"] == 1
    assert s["Closed"]["empty_count"] == 2


async def test_point_one_plus_point_two_is_point_three(api: Caller, sales: Sales) -> None:
    await bulk(api, sales, [{"revenue": 0.1}, {"revenue": 0.2}])
    r = await api.client.get(f"/data-items/{sales.id}/summary/")
    assert '"sum":0.3' in r.text and '"avg":0.15' in r.text


async def test_avg_keeps_the_scale_the_values_carry(api: Caller, sales: Sales) -> None:
    await bulk(api, sales, [{"revenue": "1.001"}, {"revenue": "2"}])
    assert by_label(await summary(api, sales.id))["Revenue"]["avg"] == Decimal(
        "1.501"
    )  # 1.5005 -> 3 places
    await bulk(api, sales, [{"revenue": "1"}])
    assert by_label(await summary(api, sales.id))["Revenue"]["avg"] == Decimal("1.334")


async def test_top_values_capped_at_ten_ties_by_value(api: Caller, sales: Sales) -> None:
    rows = [{"region": f"v{i:02d}"} for i in range(15)] + [{"region": "v14"}, {"region": "v07"}]
    await bulk(api, sales, rows)
    top = by_label(await summary(api, sales.id))["Region"]["top_values"]
    assert [t["value"] for t in top] == [
        "v07",
        "v14",
        "v00",
        "v01",
        "v02",
        "v03",
        "v04",
        "v05",
        "v06",
        "v08",
    ]
    assert [t["count"] for t in top][:3] == [2, 2, 1]


async def test_exact_after_every_kind_of_write(api: Caller, sales: Sales, app: FastAPI) -> None:
    base = f"/data-items/{sales.id}"
    await bulk(
        api, sales, [{"region": "a", "revenue": 5, "closed": True}, {"region": "b", "revenue": 7}]
    )
    r = await api.client.post(
        f"{base}/rows/", json={"values": sales.row(region="a", revenue="-2", date="2026-05-01")}
    )
    ref = r.json()["row_ref"]
    s = by_label(await summary(api, sales.id))
    assert (
        s["Revenue"]["sum"] == 10 and s["Revenue"]["min"] == -2 and s["Region"]["unique_count"] == 2
    )

    await api.client.patch(
        f"{base}/rows/{ref}/", json={"values": sales.row(revenue=100, region="c")}
    )
    s = by_label(await summary(api, sales.id))
    assert s["Revenue"]["sum"] == 112 and s["Revenue"]["min"] == 5 and s["Revenue"]["max"] == 100
    assert s["Region"]["unique_count"] == 3

    await api.client.delete(f"{base}/rows/0/")
    s = by_label(await summary(api, sales.id))
    assert s["Revenue"]["sum"] == 107 and s["Region"]["top_values"][0] == {"value": "b", "count": 1}
    assert s["Closed"]["true_count"] == 0 and (await summary(api, sales.id))["row_count"] == 2

    await api.client.patch(f"{base}/fields/{sales.f['Revenue']}/", json={"field_type": "char"})
    s = by_label(await summary(api, sales.id))
    assert s["Revenue"]["field_type"] == "char" and s["Revenue"]["unique_count"] == 2
    assert {t["value"] for t in s["Revenue"]["top_values"]} == {"7", "100"}

    await api.client.delete(f"{base}/fields/{sales.f['Region']}/")
    body = await summary(api, sales.id)
    assert body["field_count"] == 4 and "Region" not in by_label(body)
    await app.state.row_maintenance.wait_idle()
    assert by_label(await summary(api, sales.id))["Revenue"]["total_values"] == 2


async def test_a_write_during_a_recomputation_is_not_lost(
    api: Caller, sales: Sales, app: FastAPI
) -> None:
    """The recomputation saves its result only if no write bumped the field's generation."""
    from sqlalchemy import text

    await bulk(api, sales, [{"region": "x"}])
    engine = app.state.engine
    async with engine.connect() as conn:
        stale = (await conn.execute(text("SELECT stale, generation FROM field_stats WHERE field_id = :f"),
                                    {"f": int(sales.f["Region"])})).one()  # fmt: skip
    assert stale.stale is True or stale.stale is False
    from app.summary import repository as stats_sql

    async with engine.connect() as conn:
        values = await stats_sql.compute(conn, sales.id, int(sales.f["Region"]), "char")
        await conn.commit()
    # a write lands after the snapshot: the old result must not be saved as fresh
    await bulk(api, sales, [{"region": "y"}])
    async with engine.begin() as conn:
        saved = await stats_sql.save_if_unchanged(
            conn, sales.id, int(sales.f["Region"]), stale.generation, values
        )
    assert saved is False
    assert by_label(await summary(api, sales.id))["Region"]["unique_count"] == 2
    _, stats = await summary_service.current_stats(engine, sales.id)
    assert stats[int(sales.f["Region"])]["unique_count"] == 2


async def test_summary_404s(api: Caller, intruder: Caller) -> None:
    item = await create_item(api.client, "Mine", [{"field_label": "x"}])
    assert_error(await intruder.client.get(f"/data-items/{item['id']}/summary/"), 404)
    assert_error(await api.client.get("/data-items/987654321/summary"), 404)
