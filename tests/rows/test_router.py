"""Rows over HTTP: typed cells, exact values, all-or-nothing writes, counts, refs, paging, tenancy."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


def exact(response: httpx.Response) -> Any:
    """The body with numbers as Decimal, so float rounding cannot hide in the assertion."""
    return json.loads(response.content, parse_float=Decimal)


async def add(api: Caller, sales: Sales, **values: Any) -> str:
    r = await api.client.post(f"/data-items/{sales.id}/rows/", json={"values": sales.row(**values)})
    assert r.status_code == 201, r.text
    ref: str = r.json()["row_ref"]
    return ref


async def get(api: Caller, sales: Sales, ref: str) -> dict[str, Any]:
    r = await api.client.get(f"/data-items/{sales.id}/rows/{ref}/")
    assert r.status_code == 200, r.text
    row: dict[str, Any] = exact(r)["row"]
    return row


class TestCreate:
    async def test_create_returns_ref_and_cell_count(self, api: Caller, sales: Sales) -> None:
        r = await api.client.post(
            f"/data-items/{sales.id}/rows/",
            json={"values": sales.row(region="West", revenue=31500.00, date="2026-03-01")},
        )
        assert r.status_code == 201
        assert r.json() == {"row_ref": "0", "cells_created": 3}
        row = await get(api, sales, "0")
        assert row == {
            "_row_ref": "0",
            sales.f["Region"]: "West",
            sales.f["Revenue"]: Decimal("31500"),
            sales.f["Close Date"]: "2026-03-01",
            sales.f["Closed"]: None,
            sales.f["Notes"]: None,
        }

    async def test_decimals_are_exact(self, api: Caller, sales: Sales) -> None:
        cases = {
            "45200.50": "45200.5",
            "12345678901234567890": "12345678901234567890",
            "0.1": "0.1",
            "-0.000001": "-0.000001",
            "1e3": "1000",
            "1,234,567.89": "1234567.89",
            "+7": "7",
            "-0": "0",
        }
        for sent, stored in cases.items():
            ref = await add(api, sales, revenue=sent)
            r = await api.client.get(f"/data-items/{sales.id}/rows/{ref}")
            assert f'"{sales.f["Revenue"]}": {stored}' in r.text, (sent, r.text)
        # JSON numbers, parsed as decimals on the way in
        r = await api.client.post(
            f"/data-items/{sales.id}/rows/",
            content=('{{"values": {{"{}": 45200.50}}}}'.format(sales.f["Revenue"])).encode(),
            headers={"content-type": "application/json"},
        )
        ref = r.json()["row_ref"]
        assert (await get(api, sales, ref))[sales.f["Revenue"]] == Decimal("45200.5")
        big = '{{"values": {{"{}": 98765432109876543210.123456789}}}}'.format(sales.f["Revenue"])
        r = await api.client.post(
            f"/data-items/{sales.id}/rows/",
            content=big.encode(),
            headers={"content-type": "application/json"},
        )
        ref = r.json()["row_ref"]
        raw = (await api.client.get(f"/data-items/{sales.id}/rows/{ref}/")).text
        assert "98765432109876543210.123456789" in raw

    @pytest.mark.parametrize(
        ("kind", "sent", "stored"),
        [
            ("revenue", "31500.00", Decimal("31500")),
            ("revenue", 7, Decimal("7")),
            ("revenue", " 12.5 ", Decimal("12.5")),
            ("revenue", "N/A", None),
            ("revenue", "", None),
            ("date", "2026-01-15", "2026-01-15"),
            ("date", "2026-01-15T09:30:00", "2026-01-15T09:30:00"),
            ("date", "2026-01-15 09:30", "2026-01-15T09:30:00"),
            ("date", "2026-01-15T09:30:00.250", "2026-01-15T09:30:00.25"),
            ("date", "2026-01-15T09:30:00+02:00", "2026-01-15T07:30:00"),
            ("date", "13/01/2026", "2026-01-13"),
            ("date", "1/13/2026", "2026-01-13"),
            ("date", "05/05/2026", "2026-05-05"),
            ("date", "2026/03/01", "2026-03-01"),
            ("date", "Jan 5 2026", "2026-01-05"),
            ("date", "5 January 2026", "2026-01-05"),
            ("date", "05-Jan-2026", "2026-01-05"),
            ("closed", True, True),
            ("closed", "yes", True),
            ("closed", "No", False),
            ("closed", "T", True),
            ("closed", "f", False),
            ("closed", "1", True),
            ("closed", 0, False),
            ("closed", "y", True),
            ("region", 42, "42"),
            ("region", "  padded  ", "  padded  "),
            ("region", "Ünïcödé ✓ 東京", "Ünïcödé ✓ 東京"),
            ("notes", "line one\nline two", "line one\nline two"),
            ("region", "   ", None),
        ],
    )
    async def test_accepted_inputs(
        self, api: Caller, sales: Sales, kind: str, sent: Any, stored: Any
    ) -> None:
        ref = await add(api, sales, **{kind: sent})
        key = sales.row(**{kind: 0}).popitem()[0]
        assert (await get(api, sales, ref))[key] == stored

    @pytest.mark.parametrize(
        ("kind", "sent", "fragment"),
        [
            ("revenue", "abc", "is not a number"),
            ("revenue", True, "is a boolean"),
            ("revenue", "1,23", "is not a number"),
            ("revenue", "12%", "is not a number"),
            ("revenue", "1e999999", "digits"),
            ("revenue", [1], "must be a number"),
            ("date", "03/01/2026", "ambiguous"),
            ("date", "2026-02-30", "is not a date"),
            ("date", "31/04/2026", "is not a date"),
            ("date", "15/01/26", "is not a date"),
            ("date", 20260115, "must be a date string"),
            ("date", "yesterday", "is not a date"),
            ("closed", "maybe", "is not a boolean"),
            ("closed", 2, "must be true or false"),
            ("region", {"a": 1}, "must be a string"),
            ("region", "nul\u0000byte", "NUL"),
            ("region", "x" * 100_001, "longer than 100,000"),
        ],
    )
    async def test_refused_inputs_name_field_and_value(
        self, api: Caller, sales: Sales, kind: str, sent: Any, fragment: str
    ) -> None:
        values = sales.row(**{kind: sent})
        r = await api.client.post(f"/data-items/{sales.id}/rows/", json={"values": values})
        body = assert_error(r, 400, "VALIDATION_ERROR")
        (key,) = values
        assert body["details"][0]["field"] == key and fragment in body["error"]
        assert key in body["error"]
        assert (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["total"] == 0

    async def test_lone_surrogate_is_400(self, api: Caller, sales: Sales) -> None:
        body = '{{"values": {{"{}": "bad \\udc80"}}}}'.format(sales.f["Region"])
        r = await api.client.post(
            f"/data-items/{sales.id}/rows/",
            content=body.encode(),
            headers={"content-type": "application/json"},
        )
        assert "surrogate" in assert_error(r, 400)["error"]

    async def test_unknown_keys_are_400(self, api: Caller, sales: Sales) -> None:
        for key in ("999999", "Region", "abc"):
            r = await api.client.post(f"/data-items/{sales.id}/rows/", json={"values": {key: "x"}})
            body = assert_error(r, 400)
            assert body["details"][0]["field"] == key and "not a field" in body["error"]
        r = await api.client.post(f"/data-items/{sales.id}/rows/", json={"vals": {}})
        assert_error(r, 400)

    async def test_required_fields(self, api: Caller, sales: Sales) -> None:
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{sales.f['Region']}/", json={"field_required": True}
        )
        assert r.status_code == 200
        missing = await api.client.post(
            f"/data-items/{sales.id}/rows/", json={"values": sales.row(revenue=1)}
        )
        assert "required" in assert_error(missing, 400)["error"]
        null = await api.client.post(
            f"/data-items/{sales.id}/rows/", json={"values": sales.row(region=None, revenue=1)}
        )
        assert "required" in assert_error(null, 400)["error"]
        ref = await add(api, sales, region="North")
        emptied = await api.client.patch(
            f"/data-items/{sales.id}/rows/{ref}/", json={"values": sales.row(region="")}
        )
        assert "required" in assert_error(emptied, 400)["error"]
        assert (await get(api, sales, ref))[sales.f["Region"]] == "North"

    async def test_empty_values_make_an_empty_row(self, api: Caller, sales: Sales) -> None:
        r = await api.client.post(f"/data-items/{sales.id}/rows/", json={"values": {}})
        assert r.json() == {"row_ref": "0", "cells_created": 0}
        assert set((await get(api, sales, "0")).values()) == {"0", None}


class TestBulk:
    async def test_creates_all_in_order(self, api: Caller, sales: Sales) -> None:
        rows = [sales.row(region=f"R{i}", revenue=i) for i in range(50)]
        r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
        assert r.status_code == 201
        assert r.json() == {
            "rows_created": 50,
            "cells_created": 100,
            "rows_inserted": 50,
            "rows_updated": 0,
            "cells_updated": 0,
        }
        page = (await api.client.get(f"/data-items/{sales.id}/rows/?limit=500")).json()
        assert [row["_row_ref"] for row in page["rows"]] == [str(i) for i in range(50)]
        assert [row[sales.f["Region"]] for row in page["rows"]] == [f"R{i}" for i in range(50)]

    async def test_one_bad_row_fails_everything_and_every_problem_is_named(
        self, api: Caller, sales: Sales
    ) -> None:
        await add(api, sales, region="before")
        rows = [
            sales.row(region="ok", revenue=1),
            sales.row(revenue="abc"),
            sales.row(date="03/01/2026", closed="perhaps"),
            {"nope": 1},
            "not an object",
        ]
        r = await api.client.post(f"/data-items/{sales.id}/rows/bulk", json={"rows": rows})
        body = assert_error(r, 400, "VALIDATION_ERROR")
        problems = {(d["row"], d.get("field")) for d in body["details"]}
        assert problems == {
            (1, sales.f["Revenue"]),
            (2, sales.f["Close Date"]),
            (2, sales.f["Closed"]),
            (3, "nope"),
            (4, None),
        }
        assert next(d for d in body["details"] if d["row"] == 1)["value"] == "abc"
        assert "5 problems" in body["error"] and "nothing was written" in body["error"]
        listing = (await api.client.get(f"/data-items/{sales.id}/rows/")).json()
        assert listing["total"] == 1
        # the failed request did not consume refs
        assert await add(api, sales, region="after") == "1"

    async def test_problem_list_is_capped_and_says_so(self, api: Caller, sales: Sales) -> None:
        rows = [sales.row(revenue="bad") for _ in range(250)]
        r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
        body = assert_error(r, 400)
        assert len(body["details"]) == 100
        assert "250 problems" in body["error"] and "first 100" in body["error"]

    async def test_limit_on_rows_per_request(self, api: Caller, sales: Sales) -> None:
        rows: list[dict[str, Any]] = [{} for _ in range(10_001)]
        r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
        body = assert_error(r, 400)
        assert (
            "10,001" in body["error"]
            and "10,000" in body["error"]
            and "MAX_BULK_ROWS" in body["error"]
        )
        assert_error(
            await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": []}), 400
        )

    async def test_concurrent_writers_get_disjoint_gap_free_refs(
        self, api: Caller, sales: Sales, app: FastAPI
    ) -> None:
        async def writer(tag: str) -> None:
            for _ in range(3):
                rows = [sales.row(region=tag, revenue=i) for i in range(200)]
                r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
                assert r.status_code == 201, r.text

        async def single(tag: str) -> None:
            for i in range(20):
                await add(api, sales, region=tag, revenue=i)

        await asyncio.gather(writer("A"), writer("B"), single("C"))
        rows: list[dict[str, Any]] = []
        for offset in range(0, 1300, 500):
            rows += (
                await api.client.get(f"/data-items/{sales.id}/rows/?limit=500&offset={offset}")
            ).json()["rows"]
        refs = [int(r["_row_ref"]) for r in rows]
        assert refs == list(range(1220))
        # each bulk request got one contiguous block, in its own order
        blocks: dict[int, list[int]] = {}
        current_tag, start = None, 0
        for row in rows:
            tag = row[sales.f["Region"]]
            if tag in "AB":
                if tag != current_tag or int(row[sales.f["Revenue"]]) == 0:
                    start = int(row["_row_ref"])
                    current_tag = tag
                blocks.setdefault(start, []).append(int(row[sales.f["Revenue"]]))
            else:
                current_tag = None
        assert sorted(len(b) for b in blocks.values()) == [200] * 6
        assert all(b == list(range(200)) for b in blocks.values())


class TestPatchAndDelete:
    async def test_patch_counts_updates_and_creations_exactly(
        self, api: Caller, sales: Sales
    ) -> None:
        ref = await add(api, sales, region="North", revenue=10)
        r = await api.client.patch(
            f"/data-items/{sales.id}/rows/{ref}/",
            json={"values": sales.row(revenue="48000.00", date="2026-02-01", region="North")},
        )
        assert r.json() == {"row_ref": ref, "cells_updated": 1, "cells_created": 1}
        r = await api.client.patch(
            f"/data-items/{sales.id}/rows/{ref}",
            json={"values": sales.row(region=None, closed="yes")},
        )
        assert r.json() == {"row_ref": ref, "cells_updated": 0, "cells_created": 1}
        row = await get(api, sales, ref)
        assert row[sales.f["Region"]] is None and row[sales.f["Revenue"]] == Decimal("48000")
        assert row[sales.f["Closed"]] is True and row[sales.f["Close Date"]] == "2026-02-01"

    async def test_invalid_patch_changes_nothing(self, api: Caller, sales: Sales) -> None:
        ref = await add(api, sales, region="North", revenue=10)
        before = await get(api, sales, ref)
        r = await api.client.patch(
            f"/data-items/{sales.id}/rows/{ref}/",
            json={"values": sales.row(region="South", revenue="x")},
        )
        assert_error(r, 400)
        assert await get(api, sales, ref) == before

    async def test_delete_counts_cells_and_refs_are_never_reused(
        self, api: Caller, sales: Sales
    ) -> None:
        first = await add(api, sales, region="a", revenue=1, closed=False)
        second = await add(api, sales, region="b")
        r = await api.client.delete(f"/data-items/{sales.id}/rows/{second}/")
        assert r.json() == {"deleted": True, "cells_removed": 1}
        assert_error(await api.client.get(f"/data-items/{sales.id}/rows/{second}/"), 404)
        assert_error(await api.client.delete(f"/data-items/{sales.id}/rows/{second}"), 404)
        assert await add(api, sales, region="c") == "2"
        r = await api.client.delete(f"/data-items/{sales.id}/rows/{first}")
        assert r.json()["cells_removed"] == 3
        detail = (await api.client.get(f"/data-items/{sales.id}/")).json()
        assert detail["row_count"] == 1

    @pytest.mark.parametrize("ref", ["999", "abc", "-1", "1.0", "%20"])
    async def test_unknown_refs_are_404(self, api: Caller, sales: Sales, ref: str) -> None:
        await add(api, sales, region="x")
        assert_error(await api.client.get(f"/data-items/{sales.id}/rows/{ref}/"), 404)
        r = await api.client.patch(f"/data-items/{sales.id}/rows/{ref}/", json={"values": {}})
        assert_error(r, 404)


class TestListing:
    async def test_every_field_key_present_in_ref_order(self, api: Caller, sales: Sales) -> None:
        for i in range(3):
            await add(api, sales, region=f"r{i}")
        body = (await api.client.get(f"/data-items/{sales.id}/rows")).json()
        assert body["total"] == 3 and body["offset"] == 0 and body["limit"] == 100
        for row in body["rows"]:
            assert set(row) == {"_row_ref", *sales.f.values()}

    async def test_paging_edges(self, api: Caller, sales: Sales) -> None:
        rows = [sales.row(revenue=i) for i in range(12)]
        await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
        base = f"/data-items/{sales.id}/rows/"
        page = (await api.client.get(base, params={"offset": 10, "limit": 5})).json()
        assert [r["_row_ref"] for r in page["rows"]] == ["10", "11"] and page["total"] == 12
        assert (await api.client.get(base, params={"offset": 12})).json()["rows"] == []
        assert (await api.client.get(base, params={"offset": 10_000})).json() == {
            "total": 12, "offset": 10000, "limit": 100, "rows": [],
        }  # fmt: skip
        assert len((await api.client.get(base, params={"limit": 500})).json()["rows"]) == 12
        assert len((await api.client.get(base, params={"limit": 1})).json()["rows"]) == 1
        for params in (
            {"limit": 0},
            {"limit": 501},
            {"limit": -1},
            {"offset": -1},
            {"limit": "x"},
            {"offset": "1.5"},
        ):
            body = assert_error(await api.client.get(base, params=params), 400, "VALIDATION_ERROR")
            assert next(iter(params)) in body["error"]


class TestTypeChangesAndFieldDeletes:
    async def test_char_to_decimal_converts_every_value(self, api: Caller, sales: Sales) -> None:
        for value in ("1,200.50", "007", "N/A", "-3"):
            await add(api, sales, region=value)
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{sales.f['Region']}/", json={"field_type": "decimal"}
        )
        assert r.status_code == 200, r.text
        rows = exact(await api.client.get(f"/data-items/{sales.id}/rows/"))["rows"]
        assert [row[sales.f["Region"]] for row in rows] == [
            Decimal("1200.5"),
            Decimal("7"),
            None,
            Decimal("-3"),
        ]

    async def test_refused_conversion_says_how_many_and_changes_nothing(
        self, api: Caller, sales: Sales
    ) -> None:
        for value in ("10", "ten", "20", "ten", "eleven"):
            await add(api, sales, region=value)
        before = (await api.client.get(f"/data-items/{sales.id}/rows/")).json()
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{sales.f['Region']}/", json={"field_type": "decimal"}
        )
        body = assert_error(r, 400, "CONVERSION_FAILED")
        assert "3 values cannot be converted" in body["error"]
        assert [(d["row_ref"], d["value"]) for d in body["details"]] == [
            ("1", "ten"),
            ("3", "ten"),
            ("4", "eleven"),
        ]
        assert (await api.client.get(f"/data-items/{sales.id}/rows/")).json() == before
        fields = (await api.client.get(f"/data-items/{sales.id}/fields/")).json()["fields"]
        assert next(f for f in fields if str(f["id"]) == sales.f["Region"])["field_type"] == "char"

    async def test_char_to_date_picks_the_one_order_that_fits(
        self, api: Caller, sales: Sales
    ) -> None:
        for value in ("03/01/2026", "13/01/2026", "25/12/2025"):
            await add(api, sales, region=value)
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{sales.f['Region']}/", json={"field_type": "date"}
        )
        assert r.status_code == 200, r.text
        rows = (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["rows"]
        assert [row[sales.f["Region"]] for row in rows] == [
            "2026-01-03",
            "2026-01-13",
            "2025-12-25",
        ]

    async def test_ambiguous_column_is_refused(self, api: Caller, sales: Sales) -> None:
        for value in ("03/01/2026", "04/02/2026"):
            await add(api, sales, region=value)
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{sales.f['Region']}/", json={"field_type": "date"}
        )
        body = assert_error(r, 400, "CONVERSION_FAILED")
        assert "ambiguous" in body["details"][0]["message"]

    async def test_to_char_and_back(self, api: Caller, sales: Sales) -> None:
        await add(api, sales, revenue="45200.50", closed=True, date="2026-01-15")
        for label in ("Revenue", "Closed", "Close Date"):
            r = await api.client.patch(
                f"/data-items/{sales.id}/fields/{sales.f[label]}/", json={"field_type": "char"}
            )
            assert r.status_code == 200
        row = await get(api, sales, "0")
        assert [row[sales.f[x]] for x in ("Revenue", "Closed", "Close Date")] == [
            "45200.5",
            "true",
            "2026-01-15",
        ]
        for label, kind in (("Revenue", "decimal"), ("Closed", "boolean"), ("Close Date", "date")):
            r = await api.client.patch(
                f"/data-items/{sales.id}/fields/{sales.f[label]}/", json={"field_type": kind}
            )
            assert r.status_code == 200, r.text
        row = await get(api, sales, "0")
        assert [row[sales.f[x]] for x in ("Revenue", "Closed", "Close Date")] == [
            Decimal("45200.5"), True, "2026-01-15",
        ]  # fmt: skip

    async def test_boolean_to_decimal_and_decimal_to_boolean(
        self, api: Caller, sales: Sales
    ) -> None:
        await add(api, sales, closed=True, revenue=0)
        await add(api, sales, closed=False, revenue=1)
        for label, kind in (("Closed", "decimal"), ("Revenue", "boolean")):
            r = await api.client.patch(
                f"/data-items/{sales.id}/fields/{sales.f[label]}/", json={"field_type": kind}
            )
            assert r.status_code == 200, r.text
        rows = exact(await api.client.get(f"/data-items/{sales.id}/rows/"))["rows"]
        assert [(r[sales.f["Closed"]], r[sales.f["Revenue"]]) for r in rows] == [
            (Decimal(1), False), (Decimal(0), True),
        ]  # fmt: skip

    async def test_field_delete_strips_values_from_every_row(
        self, api: Caller, sales: Sales
    ) -> None:
        await add(api, sales, region="a", revenue=1)
        await add(api, sales, region="b")
        r = await api.client.delete(f"/data-items/{sales.id}/fields/{sales.f['Region']}/")
        assert r.status_code == 200
        rows = (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["rows"]
        assert all(sales.f["Region"] not in row for row in rows)
        # a new field never sees the old values
        r = await api.client.post(f"/data-items/{sales.id}/fields/", json={"field_label": "Region"})
        new_key = str(r.json()["id"])
        rows = (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["rows"]
        assert [row[new_key] for row in rows] == [None, None]
        hits = (
            await api.client.get(f"/data-items/{sales.id}/rows/", params={"search": "a"})
        ).json()
        assert hits["total"] == 0


class TestTenancy:
    async def test_another_account_gets_404_on_every_row_path(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        ref = await add(api, sales, region="secret", revenue=5)
        base = f"/data-items/{sales.id}/rows/"
        attempts = [
            intruder.client.get(base),
            intruder.client.get(base, params={"search": "secret"}),
            intruder.client.post(base, json={"values": sales.row(region="x")}),
            intruder.client.post(f"{base}bulk/", json={"rows": [sales.row(region="x")]}),
            intruder.client.get(f"{base}{ref}/"),
            intruder.client.patch(f"{base}{ref}/", json={"values": sales.row(region="x")}),
            intruder.client.delete(f"{base}{ref}/"),
            intruder.client.get(f"/data-items/{sales.id}/summary/"),
        ]
        for response in await asyncio.gather(*attempts):
            assert_error(response, 404, "NOT_FOUND")
        body = (await api.client.get(base)).json()
        assert body["total"] == 1 and body["rows"][0][sales.f["Region"]] == "secret"


@pytest.mark.asyncio
@pytest.mark.parametrize("huge", ["1e999999999", "-1E+999999999", "1e-999999999"])
async def test_a_decimal_with_a_huge_exponent_is_a_400_everywhere(api: Caller, huge: str) -> None:
    """Decimal("1e999999999") exists, but normalising it overflowed (a 500): it has far more
    digits than a decimal field holds, in a row body as in a filter."""
    item = await create_item(api.client, fields=[{"field_label": "n", "field_type": "decimal"}])
    base, fid = f"/data-items/{item['id']}", str(item["fields"][0]["id"])
    r = await api.client.post(f"{base}/rows/", content=f'{{"values": {{"{fid}": {huge}}}}}',
                              headers={"content-type": "application/json"})  # fmt: skip
    assert "digits" in assert_error(r, 400)["error"]
    r = await api.client.post(f"{base}/rows/", json={"values": {fid: huge}})
    assert "digits" in assert_error(r, 400)["error"]
    flt = f'{{"conditions": [{{"field": {fid}, "op": "gt", "value": {huge}}}]}}'
    assert_error(await api.client.get(f"{base}/rows/", params={"filter": flt}), 400)
