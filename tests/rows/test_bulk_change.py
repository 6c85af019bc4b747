"""PATCH and DELETE …/rows/ over HTTP: rows selected by refs, by a filter or all (with the guard
against a filter that matches every row), values read as a single-row PATCH reads them, counts,
one transaction, exact statistics, tenancy."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.summary import service as summary_service
from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio

# (region, revenue, date, closed, notes), refs 0..5
ROWS: list[tuple[Any, ...]] = [
    ("North", "100.50", "2026-01-15", True, "first"),
    ("South", "200", "2026-02-01", None, "second"),
    ("North", None, None, False, None),
    ("East", "300.25", "2026-03-05", None, "fourth"),
    ("North", "50", "2025-12-31", True, "fifth"),
    ("West", None, "2026-04-01", None, None),
]


def exact(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


async def seed(api: Caller, sales: Sales) -> None:
    names = ("region", "revenue", "date", "closed", "notes")
    rows = [sales.row(**dict(zip(names, row, strict=True))) for row in ROWS]
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text


async def rows_of(api: Caller, item_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/rows/", params={"limit": 500})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = exact(r)["rows"]
    return rows


async def patch(api: Caller, item_id: int, body: Any) -> httpx.Response:
    return await api.client.patch(f"/data-items/{item_id}/rows/", json=body)


async def delete(api: Caller, item_id: int, body: Any) -> httpx.Response:
    return await api.client.request("DELETE", f"/data-items/{item_id}/rows/", json=body)


def where(field: str, op: str, value: Any = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": int(field), "op": op}
    if value is not None:
        condition["value"] = value
    return {"conditions": [condition]}


async def summary(api: Caller, item_id: int) -> dict[str, Any]:
    r = await api.client.get(f"/data-items/{item_id}/summary/")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = exact(r)
    return body


async def assert_statistics_exact(
    api: Caller, sessionmaker: async_sessionmaker[AsyncSession], item_id: int
) -> dict[str, Any]:
    """The summary as the writes left it equals a recount of every field from the rows."""
    kept = await summary(api, item_id)
    field_ids = [int(s["field_id"]) for s in kept["field_summaries"]]
    async with sessionmaker() as session, session.begin():
        await summary_service.mark_stale(session, item_id, field_ids)
    recounted = await summary(api, item_id)
    assert kept == recounted
    return kept


class TestBulkUpdate:
    async def test_by_refs(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        before = await rows_of(api, sales.id)
        body = {"row_refs": ["1", 3], "values": {sales.f["Region"]: "Central"}}
        r = await patch(api, sales.id, body)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "rows_matched": 2,
            "rows_updated": 2,
            "cells_updated": 2,
            "cells_created": 0,
            "cells_removed": 0,
        }
        after = await rows_of(api, sales.id)
        region = sales.f["Region"]
        assert [row[region] for row in after] == [
            "North", "Central", "North", "Central", "North", "West",
        ]  # fmt: skip
        # every other cell exactly as it was
        strip = [{k: v for k, v in row.items() if k != region} for row in after]
        assert strip == [{k: v for k, v in row.items() if k != region} for row in before]

    async def test_by_filter_counts_what_changed(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        closed, revenue = sales.f["Closed"], sales.f["Revenue"]
        body = {
            "filter": where(sales.f["Region"], "eq", "North"),
            "values": {closed: "yes", revenue: "1,000.5"},
        }
        r = await patch(api, sales.id, body)
        assert r.status_code == 200, r.text
        # rows 0, 2, 4: Closed true already on 0 and 4, false on 2; Revenue on 0 and 4, empty on 2
        assert r.json() == {
            "rows_matched": 3,
            "rows_updated": 3,
            "cells_updated": 3,
            "cells_created": 1,
            "cells_removed": 0,
        }
        rows = await rows_of(api, sales.id)
        assert [row[closed] for row in rows] == [True, None, True, None, True, None]
        assert [row[revenue] for row in rows] == [
            Decimal("1000.5"), Decimal("200"), Decimal("1000.5"),
            Decimal("300.25"), Decimal("1000.5"), None,
        ]  # fmt: skip
        # the same again: every row matched, none written
        r = await patch(api, sales.id, body)
        assert r.json() == {
            "rows_matched": 3,
            "rows_updated": 0,
            "cells_updated": 0,
            "cells_created": 0,
            "cells_removed": 0,
        }

    async def test_a_filter_on_the_field_it_changes(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        region = sales.f["Region"]
        body = {"filter": where(region, "in", ["North", "East"]), "values": {region: "South"}}
        r = await patch(api, sales.id, body)
        assert r.json()["rows_updated"] == 4, r.text
        rows = await rows_of(api, sales.id)
        assert [row[region] for row in rows] == ["South"] * 5 + ["West"]

    async def test_null_empties_cells(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        notes, date = sales.f["Notes"], sales.f["Close Date"]
        body = {"row_refs": ["0", "1", "2"], "values": {notes: None, date: ""}}
        r = await patch(api, sales.id, body)
        assert r.json() == {
            "rows_matched": 3,
            "rows_updated": 2,
            "cells_updated": 0,
            "cells_created": 0,
            "cells_removed": 4,
        }
        rows = await rows_of(api, sales.id)
        assert [row[notes] for row in rows][:4] == [None, None, None, "fourth"]
        assert [row[date] for row in rows][:4] == [None, None, None, "2026-03-05"]

    async def test_all_rows(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        closed = sales.f["Closed"]
        r = await patch(api, sales.id, {"all": True, "values": {closed: False}})
        assert r.json() == {
            "rows_matched": 6,
            "rows_updated": 5,
            "cells_updated": 2,
            "cells_created": 3,
            "cells_removed": 0,
        }
        assert [row[closed] for row in await rows_of(api, sales.id)] == [False] * 6

    async def test_control_characters_are_noted_for_search(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        r = await patch(api, sales.id, {"row_refs": ["5"], "values": {sales.f["Notes"]: "a\x01b"}})
        assert r.status_code == 200, r.text
        found = await api.client.get(f"/data-items/{sales.id}/rows/", params={"search": "a\x01b"})
        assert [row["_row_ref"] for row in found.json()["rows"]] == ["5"]


class TestBulkDelete:
    async def test_by_refs(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        r = await delete(api, sales.id, {"row_refs": ["0", "5"]})
        assert r.status_code == 200, r.text
        assert r.json() == {"rows_deleted": 2, "cells_removed": 7}
        rows = await rows_of(api, sales.id)
        assert [row["_row_ref"] for row in rows] == ["1", "2", "3", "4"]
        item = (await api.client.get(f"/data-items/{sales.id}/")).json()
        assert item["row_count"] == 4
        # refs are never reused
        r = await api.client.post(f"/data-items/{sales.id}/rows/", json={"values": {}})
        assert r.json()["row_ref"] == "6"

    async def test_by_filter(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        r = await delete(api, sales.id, {"filter": where(sales.f["Revenue"], "is_empty")})
        assert r.json() == {"rows_deleted": 2, "cells_removed": 4}, r.text
        assert [row["_row_ref"] for row in await rows_of(api, sales.id)] == ["0", "1", "3", "4"]

    async def test_a_filter_matching_nothing(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        r = await delete(api, sales.id, {"filter": where(sales.f["Region"], "eq", "Nowhere")})
        assert r.json() == {"rows_deleted": 0, "cells_removed": 0}, r.text
        assert len(await rows_of(api, sales.id)) == 6

    async def test_all_rows(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        r = await delete(api, sales.id, {"all": True})
        assert r.json() == {"rows_deleted": 6, "cells_removed": 22}, r.text
        listing = (await api.client.get(f"/data-items/{sales.id}/rows/")).json()
        assert listing["total"] == 0 and listing["rows"] == []


class TestTheAllGuard:
    @pytest.mark.parametrize("method", ["PATCH", "DELETE"])
    async def test_a_filter_matching_every_row_needs_all(
        self, api: Caller, sales: Sales, method: str
    ) -> None:
        await seed(api, sales)
        before = await rows_of(api, sales.id)
        every = where(sales.f["Region"], "not_empty")
        body: dict[str, Any] = {"filter": every}
        if method == "PATCH":
            body["values"] = {sales.f["Notes"]: "x"}
        url = f"/data-items/{sales.id}/rows/"
        error = assert_error(await api.client.request(method, url, json=body), 400)["error"]
        assert "matches every row (6)" in error and '"all": true' in error
        # (the DELETE ran before the guard refused it: rolled back with the request)
        assert await rows_of(api, sales.id) == before
        assert (await api.client.get(f"/data-items/{sales.id}/")).json()["row_count"] == 6
        r = await api.client.request(method, url, json={**body, "all": True})
        assert r.status_code == 200, r.text
        assert r.json()["rows_matched" if method == "PATCH" else "rows_deleted"] == 6

    @pytest.mark.parametrize("conditions", [None, []])
    async def test_a_filter_without_conditions_needs_all(
        self, api: Caller, sales: Sales, conditions: list[Any] | None
    ) -> None:
        await seed(api, sales)
        empty: dict[str, Any] = {} if conditions is None else {"conditions": conditions}
        body = {"filter": empty, "values": {sales.f["Notes"]: "x"}}
        error = assert_error(await patch(api, sales.id, body), 400)["error"]
        assert "no conditions" in error and '"all": true' in error
        error = assert_error(await delete(api, sales.id, {"filter": empty}), 400)["error"]
        assert "no conditions" in error
        r = await delete(api, sales.id, {"filter": empty, "all": True})
        assert r.json()["rows_deleted"] == 6

    async def test_an_empty_item_needs_no_guard(self, api: Caller, sales: Sales) -> None:
        r = await delete(api, sales.id, {"filter": where(sales.f["Region"], "eq", "North")})
        assert r.json() == {"rows_deleted": 0, "cells_removed": 0}, r.text


class TestBadRequests:
    async def test_conflicting_options(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        before = await rows_of(api, sales.id)
        values = {sales.f["Notes"]: "x"}
        f = where(sales.f["Region"], "eq", "North")
        for body in (
            {"row_refs": ["0"], "filter": f},
            {"row_refs": ["0"], "all": True},
        ):
            error = assert_error(await patch(api, sales.id, {**body, "values": values}), 400)
            assert error["error"].startswith("Conflicting options"), error
            error = assert_error(await delete(api, sales.id, body), 400)
            assert error["error"].startswith("Conflicting options"), error
        error = assert_error(await patch(api, sales.id, {"values": values}), 400)["error"]
        assert "Say which rows" in error
        error = assert_error(await delete(api, sales.id, {}), 400)["error"]
        assert "Say which rows" in error
        assert await rows_of(api, sales.id) == before

    async def test_unknown_and_foreign_field_ids(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        other = await create_item(api.client, "Other", [{"field_label": "X", "field_type": "char"}])
        foreign = str(other["fields"][0]["id"])
        for key in ("999999999", foreign, "Region"):
            body = {"all": True, "values": {key: "x"}}
            details = assert_error(await patch(api, sales.id, body), 400)["details"]
            assert details == [
                {"field": key, "message": "is not a field of this data item (use field ids)"}
            ]
        # in a filter too
        body = {"filter": {"conditions": [{"field": 999999999, "op": "eq", "value": "x"}]}}
        details = assert_error(await delete(api, sales.id, body), 400)["details"]
        assert details[0]["field"] == "filter.conditions.0"
        body = {"filter": {"conditions": [{"field": int(foreign), "op": "eq", "value": "x"}]}}
        error = assert_error(await delete(api, sales.id, body), 400)["error"]
        assert f"field {foreign} is not a field of this data item" in error
        assert len(await rows_of(api, sales.id)) == 6

    async def test_values_that_do_not_fit_change_nothing(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        before = await rows_of(api, sales.id)
        revenue, closed = sales.f["Revenue"], sales.f["Closed"]
        body = {"all": True, "values": {sales.f["Region"]: "ok", revenue: "lots"}}
        body_one = assert_error(await patch(api, sales.id, body), 400)
        assert body_one["details"][0]["field"] == revenue
        assert body_one["details"][0]["value"] == "lots"
        assert revenue in body_one["error"] and "'lots'" in body_one["error"]
        body = {"all": True, "values": {revenue: "lots", closed: "perhaps"}}
        details = assert_error(await patch(api, sales.id, body), 400)["details"]
        assert [(d["field"], d["value"]) for d in details] == [
            (revenue, "lots"),
            (closed, "perhaps"),
        ]
        assert await rows_of(api, sales.id) == before

    async def test_a_required_field_cannot_be_emptied(self, api: Caller) -> None:
        item = await create_item(
            api.client,
            "Required",
            [{"field_label": "Name", "field_type": "char", "field_required": True}],
        )
        key = str(item["fields"][0]["id"])
        r = await api.client.post(f"/data-items/{item['id']}/rows/", json={"values": {key: "a"}})
        assert r.status_code == 201
        body = {"row_refs": ["0"], "values": {key: None}}
        error = assert_error(await patch(api, item["id"], body), 400)
        assert error["details"] == [{"field": key, "message": f"field {key} (Name) is required"}]
        assert (await rows_of(api, item["id"]))[0][key] == "a"

    async def test_empty_values(self, api: Caller, sales: Sales) -> None:
        for values in ({}, {"_row_ref": "1"}):
            error = assert_error(await patch(api, sales.id, {"all": True, "values": values}), 400)
            assert "`values` is empty" in error["error"]

    async def test_unknown_repeated_and_malformed_refs(self, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        values = {sales.f["Notes"]: "x"}
        body: dict[str, Any] = {"row_refs": ["0", "6", "abc", "-1", 99], "values": values}
        error = assert_error(await patch(api, sales.id, body), 400)
        assert "4 of the row_refs are not rows" in error["error"], error
        assert [d["value"] for d in error["details"]] == ["abc", "-1", "6", "99"]
        error = assert_error(await delete(api, sales.id, {"row_refs": ["1", "2", 1, "01"]}), 400)
        assert "more than once: 1, 01" in error["error"], error
        error = assert_error(await delete(api, sales.id, {"row_refs": []}), 400)
        assert "`row_refs` is empty" in error["error"]
        for refs in ([True], [1.5], [None], "0", [["0"]]):
            assert_error(await delete(api, sales.id, {"row_refs": refs}), 400)
        assert [row[sales.f["Notes"]] for row in await rows_of(api, sales.id)] == [
            "first", "second", None, "fourth", "fifth", None,
        ]  # fmt: skip

    async def test_row_refs_are_capped(self, app: FastAPI, api: Caller, sales: Sales) -> None:
        await seed(api, sales)
        cap = app.state.settings.max_bulk_rows
        refs = [str(i) for i in range(cap + 1)]
        error = assert_error(await delete(api, sales.id, {"row_refs": refs}), 400)["error"]
        assert f"the limit is {cap:,} (MAX_BULK_ROWS)" in error
        body = {"row_refs": refs, "values": {sales.f["Notes"]: "x"}}
        error = assert_error(await patch(api, sales.id, body), 400)["error"]
        assert "MAX_BULK_ROWS" in error
        assert len(await rows_of(api, sales.id)) == 6

    async def test_malformed_bodies(self, api: Caller, sales: Sales) -> None:
        url = f"/data-items/{sales.id}/rows/"
        headers = {"content-type": "application/json"}
        for method in ("PATCH", "DELETE"):
            r = await api.client.request(method, url, content=b'{"all": tru', headers=headers)
            assert_error(r, 400, "MALFORMED_JSON")
            for body in ([1], {"all": "yes"}, {"all": True, "extra": 1}, {"filter": "x"}):
                r = await api.client.request(method, url, json=body)
                assert_error(r, 400)
        r = await patch(api, sales.id, {"all": True, "values": [1]})
        assert_error(r, 400)
        r = await delete(api, sales.id, {"all": True, "values": {}})  # not for a delete
        assert_error(r, 400)


class TestTenancy:
    async def test_another_accounts_item_is_404(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        await seed(api, sales)
        before = await rows_of(api, sales.id)
        body = {"all": True, "values": {sales.f["Notes"]: "mine"}}
        assert_error(await patch(intruder, sales.id, body), 404, "NOT_FOUND")
        assert_error(await delete(intruder, sales.id, {"all": True}), 404, "NOT_FOUND")
        assert_error(await delete(intruder, sales.id, {"row_refs": ["0"]}), 404, "NOT_FOUND")
        assert await rows_of(api, sales.id) == before


class TestStatistics:
    async def test_exact_after_bulk_updates(
        self, api: Caller, sales: Sales, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await seed(api, sales)
        await assert_statistics_exact(api, sessionmaker, sales.id)
        closed, revenue, region = sales.f["Closed"], sales.f["Revenue"], sales.f["Region"]
        # values only added (Closed on empty cells): kept in place
        r = await patch(
            api, sales.id, {"filter": where(closed, "is_empty"), "values": {closed: True}}
        )
        assert r.json()["cells_created"] == 3
        s = await assert_statistics_exact(api, sessionmaker, sales.id)
        by_label = {f["field_label"]: f for f in s["field_summaries"]}
        assert (by_label["Closed"]["true_count"], by_label["Closed"]["false_count"]) == (5, 1)
        # values replaced and removed (the max goes): recomputed
        r = await patch(
            api, sales.id, {"filter": where(revenue, "gte", 200), "values": {revenue: "1.5"}}
        )
        assert r.json()["cells_updated"] == 2
        await patch(api, sales.id, {"row_refs": ["4"], "values": {revenue: None, region: "X"}})
        s = await assert_statistics_exact(api, sessionmaker, sales.id)
        by_label = {f["field_label"]: f for f in s["field_summaries"]}
        assert by_label["Revenue"]["total_values"] == 3
        assert by_label["Revenue"]["max"] == Decimal("100.5")
        assert by_label["Revenue"]["sum"] == Decimal("103.5")

    async def test_exact_after_bulk_deletes(
        self, api: Caller, sales: Sales, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await seed(api, sales)
        r = await delete(api, sales.id, {"filter": where(sales.f["Region"], "eq", "North")})
        assert r.json()["rows_deleted"] == 3
        s = await assert_statistics_exact(api, sessionmaker, sales.id)
        by_label = {f["field_label"]: f for f in s["field_summaries"]}
        assert s["row_count"] == 3
        assert by_label["Revenue"]["sum"] == Decimal("500.25")
        assert by_label["Closed"]["empty_count"] == 3
        await delete(api, sales.id, {"row_refs": ["1"]})
        s = await assert_statistics_exact(api, sessionmaker, sales.id)
        assert s["row_count"] == 2


class TestOpenAPI:
    async def test_bodies_are_documented_with_examples(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        path = schema["paths"]["/api/v1/data-items/{item_id}/rows/"]
        for method, name in (("patch", "RowBulkUpdate"), ("delete", "RowBulkDelete")):
            body = path[method]["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"].endswith(name)
            assert schema["components"]["schemas"][name]["examples"]
