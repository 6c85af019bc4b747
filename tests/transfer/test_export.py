"""GET …/export/: CSV (RFC 4180, exact), JSON (keyed by label, exact), xlsx (typed cells, Excel's
limits), the same rows as GET …/rows/ with search, filter and sort, file names, errors, tenancy."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncGenerator, Callable
from decimal import Decimal
from typing import Any

import fastexcel
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.rows.filters import RowQuery
from app.transfer import exports, xlsx
from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item
from tests.transfer.helpers import exact

pytestmark = pytest.mark.asyncio


async def add_rows(api: Caller, sales: Sales, *rows: dict[str, Any]) -> None:
    r = await api.client.post(
        f"/data-items/{sales.id}/rows/bulk/", json={"rows": [sales.row(**r) for r in rows]}
    )
    assert r.status_code == 201, r.text


async def export(api: Caller, item_id: int, **params: Any) -> bytes:
    r = await api.client.get(f"/data-items/{item_id}/export/", params=params)
    assert r.status_code == 200, r.text
    return r.content


SAMPLE: list[dict[str, Any]] = [
    {"region": "North", "revenue": "45200.50", "date": "2026-01-15", "closed": True,
     "notes": 'multi\nline, "quoted"'},
    {"region": "South", "revenue": "12345678901234567890.5", "date": "2026-02-03T09:15:00"},
    {"region": "East", "revenue": "-0.001", "closed": False, "notes": "x\r\ny"},
]  # fmt: skip


class TestCsv:
    async def test_rfc4180_exact_values_and_headers(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *SAMPLE)
        r = await api.client.get(f"/data-items/{sales.id}/export/")  # csv is the default
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["cache-control"] == "no-store"
        assert r.content == (
            b"Region,Revenue,Close Date,Closed,Notes\r\n"
            b'North,45200.5,2026-01-15,true,"multi\nline, ""quoted"""\r\n'
            b"South,12345678901234567890.5,2026-02-03T09:15:00,,\r\n"
            b'East,-0.001,,false,"x\r\ny"\r\n'
        )  # no byte order mark; a CR or LF inside a value stays as it is, quoted
        parsed = list(csv.reader(io.StringIO(r.text, newline="")))
        assert parsed[1][4] == 'multi\nline, "quoted"' and parsed[3][4] == "x\r\ny"

    async def test_bom_on_request(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, SAMPLE[0])
        body = await export(api, sales.id, bom="true")
        assert body.startswith(b"\xef\xbb\xbfRegion,Revenue")

    async def test_empty_item_and_item_without_fields(self, api: Caller, sales: Sales) -> None:
        assert await export(api, sales.id) == b"Region,Revenue,Close Date,Closed,Notes\r\n"
        bare = await create_item(api.client, "Bare")
        assert await export(api, bare["id"]) == b""

    async def test_many_rows_stream_in_chunks(
        self, api: Caller, sales: Sales, app: FastAPI
    ) -> None:
        rows = [
            sales.row(region=f"R{i}", revenue=f"{i}.{i % 7}", notes=f'n{i}\n"q", {i}')
            for i in range(12_000)
        ]
        for start in range(0, len(rows), 6_000):
            r = await api.client.post(
                f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows[start : start + 6_000]}
            )
            assert r.status_code == 201, r.text
        body = await export(api, sales.id)
        assert body.count(b"\r\n") == 12_001 and b"\r\r" not in body
        parsed = list(csv.reader(io.StringIO(body.decode(), newline="")))
        assert len(parsed) == 12_001
        assert parsed[-1] == ["R11999", "11999.1", "", "", 'n11999\n"q", 11999']

        # a client that goes away midway: the statement stops and its connection is closed
        engine: AsyncEngine = app.state.engine
        bodies: tuple[tuple[Callable[[], AsyncGenerator[bytes, None]], str], ...] = (
            (
                lambda: exports.csv_body(engine, api.account_id, sales.id, RowQuery(), bom=False),
                "COPY (SELECT%",
            ),
            (
                lambda: exports.json_body(engine, api.account_id, sales.id, RowQuery()),
                "%coalesce(CAST(rows.values -> %",
            ),
        )
        for body_of, statement in bodies:
            stream = body_of()
            assert (await anext(stream)).startswith((b"Region", b"["))
            await anext(stream)
            streaming = await backends(app, statement)
            assert len(streaming) == 1
            await stream.aclose()
            for _ in range(50):
                if not await backends(app, statement) & streaming:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the abandoned export's connection is still open")
        r = await api.client.get(f"/data-items/{sales.id}/export/", params={"format": "json"})
        assert len(json.loads(r.content)) == 12_000


async def backends(app: FastAPI, statement: str) -> set[int]:
    """Client connections whose current or last statement looks like `statement` (not the
    parallel workers a JSON export may start for its statement)."""
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE :q AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ),
            {"q": statement},
        )
        return {int(pid) for (pid,) in result}


class TestJson:
    async def test_objects_keyed_by_label_exact_numbers(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *SAMPLE)
        r = await api.client.get(f"/data-items/{sales.id}/export/", params={"format": "json"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        rows = exact(r)
        assert [list(row) for row in rows] == [
            ["Region", "Revenue", "Close Date", "Closed", "Notes"]
        ] * 3
        assert rows[1] == {
            "Region": "South", "Revenue": Decimal("12345678901234567890.5"),
            "Close Date": "2026-02-03T09:15:00", "Closed": None, "Notes": None,
        }  # fmt: skip
        assert b"12345678901234567890.5" in r.content
        assert rows[0]["Notes"] == 'multi\nline, "quoted"' and rows[2]["Closed"] is False

    async def test_empty(self, api: Caller, sales: Sales) -> None:
        assert json.loads(await export(api, sales.id, format="json")) == []

    async def test_odd_labels(self, api: Caller) -> None:
        item = await create_item(
            api.client, "Odd", [{"field_label": '"quoted", \\ label'}, {"field_label": "_row_ref"}]
        )
        keys = [str(f["id"]) for f in item["fields"]]
        r = await api.client.post(
            f"/data-items/{item['id']}/rows/", json={"values": {keys[0]: "a", keys[1]: "b"}}
        )
        assert r.status_code == 201
        assert json.loads(await export(api, item["id"], format="json")) == [
            {'"quoted", \\ label': "a", "_row_ref": "b"}
        ]


class TestSelection:
    async def test_search_filter_sort_as_rows_list(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            *[
                {"region": r, "revenue": v, "date": d}
                for r, v, d in [
                    ("North", "10", "2026-01-01"),
                    ("South", "300", "2026-01-02"),
                    ("north-east", "20", None),
                    ("West", "5000", "2026-01-04"),
                    ("Northwest", None, "2026-01-05"),
                ]
            ],
        )
        revenue = sales.f["Revenue"]
        params = {
            "search": "north",
            "filter": json.dumps(
                {"conditions": [{"field": int(revenue), "op": "gte", "value": 0}]}
            ),
            "sort": f"-{revenue}",
        }
        listed = exact(await api.client.get(f"/data-items/{sales.id}/rows/", params=params))
        assert [row[sales.f["Region"]] for row in listed["rows"]] == ["north-east", "North"]
        exported = json.loads(await export(api, sales.id, format="json", **params))
        assert [row["Region"] for row in exported] == ["north-east", "North"]
        text = (await export(api, sales.id, **params)).decode()
        assert text.splitlines()[1:] == ["north-east,20,,,", "North,10,2026-01-01,,"]

    @pytest.mark.parametrize(
        ("params", "words"),
        [
            ({"format": "pdf"}, ["csv", "xlsx", "json"]),
            ({"filter": "{bad"}, ["filter", "JSON"]),
            ({"filter": '{"conditions": [{"field": 1, "op": "gt", "value": 1}]}'}, ["field 1"]),
            ({"sort": "abc"}, ["sort"]),
            ({"bom": "maybe"}, ["bom"]),
        ],
    )
    async def test_bad_parameters_are_400(
        self, api: Caller, sales: Sales, params: dict[str, str], words: list[str]
    ) -> None:
        body = assert_error(
            await api.client.get(f"/data-items/{sales.id}/export/", params=params), 400
        )
        text = json.dumps(body)
        assert all(w in text for w in words), body


class TestXlsx:
    async def test_typed_cells(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *SAMPLE)
        r = await api.client.get(f"/data-items/{sales.id}/export/", params={"format": "xlsx"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert int(r.headers["content-length"]) == len(r.content)
        sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0] == ("Region", "Revenue", "Close Date", "Closed", "Notes")
        assert rows[1][1] == 45200.5 and rows[1][3] is True
        assert rows[2][1] == "12345678901234567890.5"  # more digits than Excel keeps: text
        assert rows[3][1] == -0.001
        frame = fastexcel.read_excel(r.content).load_sheet(0).to_polars()
        assert frame["Notes"].to_list() == ['multi\nline, "quoted"', None, "x\r\ny"]

    async def test_a_cell_longer_than_excel_allows_is_400(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, {"region": "a"}, {"region": "b", "notes": "x" * 40_000})
        body = assert_error(
            await api.client.get(f"/data-items/{sales.id}/export/", params={"format": "xlsx"}), 400
        )
        assert "32,767" in body["error"] and "csv" in body["error"]
        assert body["details"][0]["row_ref"] == "1"
        assert (await api.client.get(f"/data-items/{sales.id}/export/")).status_code == 200

    async def test_too_many_rows_is_400_unless_narrowed(
        self, api: Caller, sales: Sales, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(xlsx, "MAX_ROWS", 2)
        await add_rows(api, sales, {"region": "a"}, {"region": "b"}, {"region": "c"})
        url = f"/data-items/{sales.id}/export/"
        body = assert_error(await api.client.get(url, params={"format": "xlsx"}), 400)
        assert "3 rows" in body["error"]
        r = await api.client.get(url, params={"format": "xlsx", "search": "b"})
        assert r.status_code == 200


class TestDownload:
    async def test_filename_from_the_item_name(self, api: Caller) -> None:
        item = await create_item(api.client, 'Année "Q1" / West', [{"field_label": "A"}])
        r = await api.client.get(f"/data-items/{item['id']}/export/", params={"format": "json"})
        assert r.headers["content-disposition"] == (
            'attachment; filename="Annee _Q1_ - West.json"; '
            "filename*=UTF-8''Ann%C3%A9e%20%22Q1%22%20-%20West.json"
        )


class TestTenancy:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/export/"),
            ("GET", "/export/?format=xlsx"),
            ("GET", "/export/?format=json"),
            ("GET", "/bundle/"),
            ("POST", "/copy/"),
        ],
    )
    async def test_another_accounts_item_is_404(
        self, api: Caller, intruder: Caller, sales: Sales, method: str, path: str
    ) -> None:
        await add_rows(api, sales, SAMPLE[0])
        theirs = assert_error(
            await intruder.client.request(method, f"/data-items/{sales.id}{path}"), 404
        )
        missing = assert_error(
            await intruder.client.request(method, f"/data-items/987654321{path}"), 404
        )
        assert theirs["error"].replace(str(sales.id), "N") == missing["error"].replace(
            "987654321", "N"
        )
        assert (await intruder.client.get("/data-items/")).json()["data_items"] == []
        assert len((await api.client.get("/data-items/")).json()["data_items"]) == 1
