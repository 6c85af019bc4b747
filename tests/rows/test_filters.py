"""Rows filtered and sorted (`GET …/rows/?filter=…&sort=…`): every op on every type, typed order
(decimals numerically, dates chronologically, text by code point, empty cells last), combined
with search and paging, and bad filters or sort keys named in a 400."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

ROWS: list[dict[str, Any]] = [
    {"region": "North", "revenue": 10, "date": "2026-03-05", "closed": True, "notes": "Call back"},
    {"region": "south", "revenue": 9, "date": "2026-03-05T10:30:00", "closed": False, "notes": "100% sure"},
    {"region": "East", "revenue": "100.5", "date": "2025-12-31", "closed": True},
    {"revenue": -2, "date": "2026-03-06"},
    {"region": "North ", "notes": "NORTH pole"},
    {"region": "West", "revenue": "1e-3", "date": "2026-03-04T23:59:59.5", "closed": False},
]  # fmt: skip

KEYS = {"region": "Region", "revenue": "Revenue", "date": "Close Date", "closed": "Closed"}
KEYS["notes"] = "Notes"


@pytest_asyncio.fixture
async def table(api: Caller, sales: Sales) -> Sales:
    body = {"rows": [sales.row(**r) for r in ROWS]}
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json=body)
    assert r.status_code == 201, r.text
    return sales


async def refs(api: Caller, sales: Sales, **params: Any) -> list[int]:
    """Row refs of the matching page (and the total must equal them when there is no paging)."""
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    r = await api.client.get(f"/data-items/{sales.id}/rows/", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    found = [int(row["_row_ref"]) for row in body["rows"]]
    if "limit" not in params and "offset" not in params:
        assert body["total"] == len(found)
    return found


def cond(sales: Sales, kind: str, op: str, value: Any = None) -> dict[str, Any]:
    c: dict[str, Any] = {"field": int(sales.f[KEYS[kind]]), "op": op}
    if value is not None:
        c["value"] = value
    return {"conditions": [c]}


class TestSort:
    @pytest.mark.parametrize(
        ("kind", "ascending", "descending"),
        [
            ("revenue", [3, 5, 1, 0, 2, 4], [2, 0, 1, 5, 3, 4]),  # 10 after 9; empty last
            ("date", [2, 5, 0, 1, 3, 4], [3, 1, 0, 5, 2, 4]),  # chronological, across the year
            ("region", [2, 0, 4, 5, 1, 3], [1, 5, 4, 0, 2, 3]),  # code points: "West" < "south"
            ("closed", [1, 5, 0, 2, 3, 4], [0, 2, 1, 5, 3, 4]),  # false first; ties by _row_ref
            ("notes", [1, 0, 4, 2, 3, 5], [4, 0, 1, 2, 3, 5]),  # "100% sure" < "Call back"
        ],
    )
    async def test_each_type_both_ways_nulls_last(
        self,
        api: Caller,
        table: Sales,
        kind: str,
        ascending: list[int],
        descending: list[int],
    ) -> None:
        key = table.f[KEYS[kind]]
        assert await refs(api, table, sort=key) == ascending
        assert await refs(api, table, sort=f"-{key}") == descending

    async def test_several_keys_then_row_ref(self, api: Caller, table: Sales) -> None:
        sort = f"-{table.f['Closed']}, {table.f['Revenue']}"
        assert await refs(api, table, sort=sort) == [0, 2, 5, 1, 3, 4]

    async def test_sort_pages_and_combines_with_search_and_filter(
        self, api: Caller, table: Sales
    ) -> None:
        sort = f"-{table.f['Revenue']}"
        assert await refs(api, table, sort=sort, limit=2, offset=1) == [0, 1]
        # search "north" matches rows 0 and 4 (and "NORTH pole"); filter keeps a revenue
        found = await refs(
            api, table, sort=sort, search="nor", filter=cond(table, "revenue", "not_empty")
        )
        assert found == [0]

    @pytest.mark.parametrize(
        ("sort", "fragment"),
        [
            ("abc", "'abc' is not a field id"),
            ("999999", "field 999999 is not a field of this data item"),
            ("1,1", "given twice"),
            ("--1", "is not a field id"),
            ("1,,2", "'' is not a field id"),
            ("1,2,3,4,5,6", "the limit is 5"),
        ],
    )
    async def test_bad_sort_keys_are_named(
        self, api: Caller, table: Sales, sort: str, fragment: str
    ) -> None:
        if sort == "1,1":
            sort = f"{table.f['Region']},-{table.f['Region']}"
        r = await api.client.get(f"/data-items/{table.id}/rows/", params={"sort": sort})
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert fragment in error["error"] or any(fragment in d["message"] for d in error["details"])


class TestFilterOps:
    @pytest.mark.parametrize(
        ("kind", "op", "value", "expected"),
        [
            ("revenue", "eq", 10, [0]),
            ("revenue", "eq", "10.00", [0]),
            ("revenue", "ne", 10, [1, 2, 3, 4, 5]),  # empty cells are "not 10"
            ("revenue", "gt", 9, [0, 2]),  # numerically: 10 and 100.5, not "9" < "10" text
            ("revenue", "gte", 9, [0, 1, 2]),
            ("revenue", "lt", "0.001", [3]),
            ("revenue", "lte", "1e-3", [3, 5]),
            ("revenue", "in", [9, "100.50"], [1, 2]),
            ("revenue", "is_empty", None, [4]),
            ("revenue", "not_empty", None, [0, 1, 2, 3, 5]),
            ("date", "eq", "2026-03-05", [0, 1]),  # a day matches any time that day
            ("date", "eq", "2026-03-05T10:30:00", [1]),
            ("date", "eq", "2026-03-05 10:30", [1]),
            ("date", "ne", "2026-03-05", [2, 3, 4, 5]),
            ("date", "gt", "2026-03-05", [3]),  # after the whole day
            ("date", "gte", "2026-03-05", [0, 1, 3]),
            ("date", "lt", "2026-03-05", [2, 5]),
            ("date", "lte", "2026-03-05", [0, 1, 2, 5]),
            ("date", "gt", "2026-03-05T00:00:00", [1, 3]),  # moments: a day is its midnight
            ("date", "gte", "2026-03-05T00:00:00", [0, 1, 3]),
            ("date", "lt", "2026-03-04T23:59:59.6", [2, 5]),
            ("date", "in", ["2025-12-31", "2026-03-06"], [2, 3]),
            ("date", "lt", "2026-01-01", [2]),  # across the year boundary
            ("date", "is_empty", None, [4]),
            ("region", "eq", "North", [0]),  # exact: not "North ", not "NORTH"
            ("region", "ne", "North", [1, 2, 3, 4, 5]),
            ("region", "contains", "NOR", [0, 4]),  # case-insensitive
            ("region", "in", ["East", "West"], [2, 5]),
            ("region", "is_empty", None, [3]),
            ("region", "not_empty", None, [0, 1, 2, 4, 5]),
            ("notes", "contains", "north", [4]),
            ("notes", "contains", "0%", [1]),  # % literal
            ("notes", "contains", "_", []),
            ("closed", "eq", True, [0, 2]),
            ("closed", "eq", "no", [1, 5]),
            ("closed", "ne", True, [1, 3, 4, 5]),
            ("closed", "in", [True, False], [0, 1, 2, 5]),
            ("closed", "is_empty", None, [3, 4]),
            ("closed", "not_empty", None, [0, 1, 2, 5]),
        ],
    )
    async def test_op(
        self, api: Caller, table: Sales, kind: str, op: str, value: Any, expected: list[int]
    ) -> None:
        assert await refs(api, table, filter=cond(table, kind, op, value)) == expected

    async def test_match_all_and_any(self, api: Caller, table: Sales) -> None:
        rev, region = int(table.f["Revenue"]), int(table.f["Region"])
        conditions = [
            {"field": rev, "op": "gt", "value": 50},
            {"field": region, "op": "eq", "value": "West"},
        ]
        assert await refs(api, table, filter={"match": "any", "conditions": conditions}) == [2, 5]
        assert await refs(api, table, filter={"match": "all", "conditions": conditions}) == []
        both = [
            {"field": rev, "op": "gt", "value": 5},
            {"field": region, "op": "contains", "value": "o"},
        ]
        assert await refs(api, table, filter={"conditions": both}) == [0, 1]
        assert await refs(api, table, filter={"match": "any", "conditions": []}) == list(range(6))

    async def test_total_counts_matches_across_pages(self, api: Caller, table: Sales) -> None:
        r = await api.client.get(
            f"/data-items/{table.id}/rows/",
            params={
                "filter": json.dumps(cond(table, "revenue", "not_empty")),
                "limit": 2,
                "offset": 1,
            },
        )
        body = r.json()
        assert body["total"] == 5 and [row["_row_ref"] for row in body["rows"]] == ["1", "2"]
        r = await api.client.get(
            f"/data-items/{table.id}/rows/",
            params={"filter": json.dumps(cond(table, "revenue", "gt", 1000)), "offset": 3},
        )
        assert r.json()["total"] == 0 and r.json()["rows"] == []

    async def test_filter_with_search(self, api: Caller, table: Sales) -> None:
        found = await refs(api, table, search="north", filter=cond(table, "notes", "not_empty"))
        assert found == [0, 4]  # row 0: region North (its notes are not empty), row 4: notes


class TestBadFilters:
    @pytest.mark.parametrize(
        ("conditions", "fragment"),
        [
            ([{"field": 999_999, "op": "eq", "value": 1}], "field 999999 is not a field of this data item"),
            ([{"field": "Revenue", "op": "eq", "value": 1}], "valid integer"),
            ([{"field": "F:revenue", "op": "contains", "value": "1"}], "op contains is not valid for decimal field"),
            ([{"field": "F:region", "op": "gt", "value": "a"}], "op gt is not valid for char field"),
            ([{"field": "F:closed", "op": "lt", "value": True}], "op lt is not valid for boolean field"),
            ([{"field": "F:revenue", "op": "gt", "value": "abc"}], "'abc' is not a number"),
            ([{"field": "F:date", "op": "eq", "value": "03/01/2026"}], "ambiguous"),
            ([{"field": "F:closed", "op": "eq", "value": "maybe"}], "is not a boolean"),
            ([{"field": "F:revenue", "op": "eq"}], "needs a value (use is_empty"),
            ([{"field": "F:region", "op": "eq", "value": "  "}], "needs a value"),
            ([{"field": "F:revenue", "op": "eq", "value": [1]}], "must be a single number"),
            ([{"field": "F:revenue", "op": "is_empty", "value": 1}], "takes no value"),
            ([{"field": "F:revenue", "op": "in", "value": 1}], "non-empty list"),
            ([{"field": "F:revenue", "op": "in", "value": []}], "non-empty list"),
            ([{"field": "F:revenue", "op": "in", "value": list(range(101))}], "at most 100 values"),
            ([{"field": "F:revenue", "op": "in", "value": [1, "x"]}], "'x' is not a number"),
            ([{"field": "F:revenue", "op": "between", "value": 1}], "'eq', 'ne', 'gt'"),
            ([{"field": "F:revenue", "op": "is_empty"}] * 21, "at most 20 items"),
            ([{"field": "F:revenue", "op": "is_empty", "extra": 1}], "Extra inputs"),
        ],
    )  # fmt: skip
    async def test_each_problem_is_named(
        self, api: Caller, table: Sales, conditions: list[dict[str, Any]], fragment: str
    ) -> None:
        for c in conditions:
            if isinstance(c["field"], str) and c["field"].startswith("F:"):
                c["field"] = int(table.f[KEYS[c["field"][2:]]])
        r = await api.client.get(
            f"/data-items/{table.id}/rows/",
            params={"filter": json.dumps({"conditions": conditions})},
        )
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert fragment in error["error"], error
        assert error["details"][0]["field"].startswith("filter")

    async def test_every_problem_is_listed(self, api: Caller, table: Sales) -> None:
        conditions = [
            {"field": int(table.f["Revenue"]), "op": "contains", "value": "1"},
            {"field": int(table.f["Region"]), "op": "eq", "value": "ok"},
            {"field": 999_999, "op": "eq", "value": 1},
        ]
        r = await api.client.get(
            f"/data-items/{table.id}/rows/",
            params={"filter": json.dumps({"conditions": conditions})},
        )
        error = assert_error(r, 400)
        assert [d["field"] for d in error["details"]] == [
            "filter.conditions.0", "filter.conditions.2",
        ]  # fmt: skip
        assert "2 problems" in error["error"]

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            ("{", "not valid JSON"),
            ("[]", "valid dictionary"),
            ('{"match": "most"}', "'all' or 'any'"),
            ('{"conditions": 5}', "valid list"),
            ("x" * 20_000, "longer than 16,384 bytes"),
        ],
    )
    async def test_malformed_filters(
        self, api: Caller, table: Sales, raw: str, fragment: str
    ) -> None:
        r = await api.client.get(f"/data-items/{table.id}/rows/", params={"filter": raw})
        assert fragment in assert_error(r, 400, "VALIDATION_ERROR")["error"]

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            (
                '{"conditions": [{"field": 1, "op": "in", "value": [%s]}]}'
                % ("[" * 100 + "]" * 100),
                "nested more than 64 levels deep",
            ),
            ("[" * 5_000 + "]" * 5_000, "nested more than 64 levels deep"),
            ('{"conditions": [{"field": 1, "op": "eq", "value": NaN}]}', "NaN is not valid"),
            ('{"conditions": [{"field": 1, "op": "gt", "value": -Infinity}]}', "Infinity is not"),
        ],
    )
    async def test_filter_json_is_held_to_the_body_caps(
        self, api: Caller, table: Sales, raw: str, fragment: str
    ) -> None:
        """JSON in the query string is read as a JSON body is: nesting capped, no NaN."""
        for where in ("rows", "export"):
            r = await api.client.get(f"/data-items/{table.id}/{where}/", params={"filter": raw})
            error = assert_error(r, 400, "VALIDATION_ERROR")["error"]
            assert "`filter` is not valid JSON" in error and fragment in error, error

    async def test_empty_filter_and_sort_mean_none(self, api: Caller, table: Sales) -> None:
        assert await refs(api, table, filter="", sort="") == list(range(6))
