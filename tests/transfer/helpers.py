"""Helpers for the transfer tests: items by label, exact bodies, leftovers after a failure."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Caller
from tests.fixtures.sales import Sales

CREATE = "/data-items/create-from-file/"


def exact(response: httpx.Response) -> Any:
    """The body with numbers as Decimal, so float rounding cannot hide in an assertion."""
    return json.loads(response.content, parse_float=Decimal)


async def upload(api: Caller, name: str, data: bytes, data_name: str = "Upload") -> dict[str, Any]:
    r = await api.client.post(
        CREATE, data={"data_name": data_name}, files={"data_file": (name, data)}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def detail(api: Caller, item_id: int) -> dict[str, Any]:
    r = await api.client.get(f"/data-items/{item_id}/")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def types(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, type) of each field, in field order."""
    return [(f["field_label"], f["field_type"]) for f in item["fields"]]


async def rows_by_label(api: Caller, item_id: int) -> list[dict[str, Any]]:
    """Every row (refs included) with values keyed by label, numbers as Decimal."""
    fields = (await detail(api, item_id))["fields"]
    labels = {str(f["id"]): f["field_label"] for f in fields}
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = await api.client.get(
            f"/data-items/{item_id}/rows/", params={"offset": offset, "limit": 500}
        )
        assert r.status_code == 200, r.text
        page = exact(r)["rows"]
        out += [{labels.get(k, k): v for k, v in row.items()} for row in page]
        if len(page) < 500:
            return out
        offset += 500


async def summary_by_label(api: Caller, item_id: int) -> dict[str, Any]:
    r = await api.client.get(f"/data-items/{item_id}/summary/")
    assert r.status_code == 200, r.text
    body = exact(r)
    return {
        s["field_label"]: {k: v for k, v in s.items() if k != "field_id"}
        for s in body["field_summaries"]
    }


async def item_names(api: Caller) -> list[str]:
    r = await api.client.get("/data-items/")
    assert r.status_code == 200, r.text
    return [i["data_name"] for i in r.json()["data_items"]]


async def partitions_after_last_item(app: FastAPI) -> int:
    """Row partitions of items newer than the newest item: what a rolled-back create leaves."""
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'item_rows' "
                "AND tablename ~ '^p[0-9]+$' AND substr(tablename, 2)::bigint > (SELECT COALESCE(max(id), 0) FROM data_items)"
            )
        )
        return int(result.scalar_one())


async def fill(api: Caller, sales: Sales) -> dict[str, Any]:
    """Rows (one deleted, so refs have a gap), and a widget with a filter and two series."""
    rows = [
        sales.row(region="North", revenue="45200.50", date="2026-01-15", closed=True, notes="a"),
        sales.row(region="South", revenue="12345678901234567890.25", closed=False),
        sales.row(region="gone"),
        sales.row(region="North", revenue="-3", date="2026-02-01T10:00:00", notes="line\nbreak"),
    ]
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text
    assert (await api.client.delete(f"/data-items/{sales.id}/rows/2/")).status_code == 200
    revenue, region = int(sales.f["Revenue"]), int(sales.f["Region"])
    widget = {
        "title": "Revenue by region",
        "chart_type": "bar",
        "label_field": region,
        "filter_config": {"conditions": [{"field": revenue, "op": "gt", "value": "0.5"}]},
        "chart_options": {"stacked": True, "ratio": 1.25},
        "series": [
            {"value_field": revenue, "aggregation": "sum", "color": "#0052FF"},
            {"value_field": region, "aggregation": "count", "label": "Deals"},
        ],
    }
    r = await api.client.post(f"/data-items/{sales.id}/widgets/", json=widget)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = exact(r)
    return body
