"""Helpers for widget tests: create widgets, read their data with exact numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from tests.conftest import Caller
from tests.fixtures.sales import Sales


def exact(response: httpx.Response) -> Any:
    """The body with numbers as Decimal, so float rounding cannot hide in an assertion."""
    return json.loads(response.content, parse_float=Decimal)


def fid(sales: Sales, label: str) -> int:
    return int(sales.f[label])


async def add_rows(api: Caller, sales: Sales, *rows: dict[str, Any]) -> None:
    body = {"rows": [sales.row(**r) for r in rows]}
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json=body)
    assert r.status_code == 201, r.text


async def create_widget(api: Caller, item_id: int, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"/data-items/{item_id}/widgets/", json=body)
    assert r.status_code == 201, r.text
    widget: dict[str, Any] = exact(r)
    return widget


async def widget_data(api: Caller, item_id: int, **body: Any) -> dict[str, Any]:
    """Create a widget and return its data."""
    widget = await create_widget(api, item_id, **body)
    r = await api.client.get(f"/data-items/{item_id}/widgets/{widget['id']}/data/")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = exact(r)
    return result


async def widgets(api: Caller, item_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/widgets/")
    assert r.status_code == 200, r.text
    listed: list[dict[str, Any]] = exact(r)["widgets"]
    return listed
