"""Uploads through the real HTTP stack: inferred types, exact values, counts, notes, reference
file downloads, append, and all-or-nothing on every failure."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from app.core.config import spool_dir
from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error, create_item
from tests.ingestion import files

pytestmark = pytest.mark.asyncio

CREATE = "/data-items/create-from-file/"
ACCEPTED = ".csv, .tsv, .xlsx, .xls, .ods, .json, .ndjson or .jsonl"


async def upload(
    api: Caller, name: str, data: bytes, *, data_name: str = "Upload", **form: str
) -> httpx.Response:
    return await api.client.post(
        CREATE, data={"data_name": data_name, **form}, files={"data_file": (name, data)}
    )


async def created(api: Caller, name: str, data: bytes, **form: str) -> dict[str, Any]:
    r = await upload(api, name, data, **form)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def rows_of(api: Caller, item: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item['id']}/rows/", params={"limit": 500})
    assert r.status_code == 200
    body = json.loads(r.content, parse_float=Decimal)
    by_id = {str(f["id"]): f["field_label"] for f in item["fields"]}
    return [{by_id[k]: v for k, v in row.items() if k != "_row_ref"} for row in body["rows"]]


def types(item: dict[str, Any]) -> dict[str, str]:
    return {f["field_label"]: f["field_type"] for f in item["fields"]}


async def partitions_count(app: FastAPI) -> int:
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'item_rows'")
        )
        return int(result.scalar_one())


class TestCreateFromCSV:
    async def test_types_values_counts_and_reference_file(self, api: Caller) -> None:
        data = files.sales_csv()
        item = await created(api, "sales.csv", data, data_name="Q1 Sales", data_description="d")
        assert set(item) == {
            "id", "data_name", "data_description", "fields", "rows_created", "cells_created",
            "reference_file", "notes",
        }  # fmt: skip
        assert item["data_name"] == "Q1 Sales" and item["data_description"] == "d"
        assert types(item) == {
            "Region": "char", "Zip Code": "char", "Revenue": "decimal", "Quantity": "decimal",
            "Close Date": "date", "Signed": "date", "Closed": "boolean",
        }  # fmt: skip
        assert [f["field_order"] for f in item["fields"]] == list(range(7))
        assert item["rows_created"] == 4
        assert item["cells_created"] == 4 * 7 - 3  # one empty revenue, date and N/A
        rows = await rows_of(api, item)
        assert [r["Zip Code"] for r in rows] == ["02134", "10001", "00501", "94105"]
        assert [r["Revenue"] for r in rows] == [
            Decimal("45200.5"),
            Decimal("-0.25"),
            Decimal(1000),
            None,
        ]
        assert [r["Signed"] for r in rows] == [
            "2026-01-13",
            "2026-02-01",
            "2025-12-31",
            "2026-03-04",
        ]
        assert [r["Closed"] for r in rows] == [True, False, None, True]
        assert [r["Close Date"] for r in rows][:2] == ["2026-01-15", "2026-02-28"]

        ref = item["reference_file"]
        assert ref["filename"] == "sales.csv"
        download = await api.client.get(f"/data-items/{item['id']}/reference-files/{ref['id']}/")
        assert download.status_code == 200 and download.content == data
        assert download.headers["content-type"].startswith("text/csv")
        assert 'filename="sales.csv"' in download.headers["content-disposition"]
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        assert [f["id"] for f in detail["reference_files"]] == [ref["id"]]
        assert detail["row_count"] == 4

    async def test_summary_is_ready_after_upload(self, api: Caller) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        body = json.loads(
            (await api.client.get(f"/data-items/{item['id']}/summary/")).content,
            parse_float=Decimal,
        )
        s = {x["field_label"]: x for x in body["field_summaries"]}
        assert s["Revenue"]["sum"] == Decimal("46200.25") and s["Revenue"]["empty_count"] == 1
        assert s["Zip Code"]["unique_count"] == 4
        assert s["Closed"] == {**s["Closed"], "true_count": 2, "false_count": 1, "empty_count": 1}
        assert s["Signed"]["min_date"] == "2025-12-31"

    async def test_top_values_at_load_match_the_sql_recount(self, api: Caller) -> None:
        """Ties broken by value in code point order ('Z' < 'a' < 'É'), across the 10th place;
        the statistics computed at load equal those PostgreSQL recomputes after a write."""
        words = ["b", "a", "É", "Z"] * 3 + [f"k{i}" for i in range(9, -1, -1)]
        item = await created(
            api, "words.csv", files.csv_bytes([["word", "n"], *([w, "1"] for w in words)])
        )
        expected = [{"value": v, "count": 3} for v in ("Z", "a", "b", "É")] + [
            {"value": f"k{i}", "count": 1} for i in range(6)
        ]

        async def word_summary() -> dict[str, Any]:
            body = (await api.client.get(f"/data-items/{item['id']}/summary/")).json()
            return next(f for f in body["field_summaries"] if f["field_label"] == "word")

        at_load = await word_summary()
        assert at_load["top_values"] == expected and at_load["unique_count"] == 14
        word_id = next(f["id"] for f in item["fields"] if f["field_label"] == "word")
        r = await api.client.patch(
            f"/data-items/{item['id']}/rows/0/", json={"values": {str(word_id): "b"}}
        )  # the same value: the field is recounted in SQL all the same
        assert r.status_code == 200, r.text
        assert await word_summary() == at_load

    @pytest.mark.parametrize(
        ("encoding", "bom"),
        [("utf-8", True), ("utf-8", False), ("utf-16-le", True), ("utf-16-be", True)],
    )
    async def test_unicode_encodings(self, api: Caller, encoding: str, bom: bool) -> None:
        rows = [["Année", "Stadt"], ["2025", "Köln"], ["2026", "Zürich"]]
        item = await created(api, "u.csv", files.csv_bytes(rows, encoding=encoding, bom=bom))
        assert [f["field_label"] for f in item["fields"]] == ["Année", "Stadt"]
        assert [r["Stadt"] for r in await rows_of(api, item)] == ["Köln", "Zürich"]

    async def test_legacy_cp1252_semicolon_decimal_comma(self, api: Caller) -> None:
        item = await created(api, "legacy.csv", files.legacy_cp1252_csv())
        assert [f["field_label"] for f in item["fields"]] == ["Année", "Prix", "Note"]
        assert types(item)["Prix"] == "decimal"
        rows = await rows_of(api, item)
        assert [r["Prix"] for r in rows] == [Decimal("12.5"), Decimal(3)]
        assert rows[0]["Note"] == "€ offert"
        assert any("cp1252" in n.lower() or "windows" in n.lower() for n in item["notes"])

    @pytest.mark.parametrize(("delimiter", "name"), [("\t", "tab"), ("|", "pipe"), (";", "semi")])
    async def test_delimiters(self, api: Caller, delimiter: str, name: str) -> None:
        rows = [["a", "b"], ["1", "x, y"], ["2", "z"]]
        item = await created(api, f"{name}.csv", files.csv_bytes(rows, delimiter=delimiter))
        assert [r["b"] for r in await rows_of(api, item)] == ["x, y", "z"]

    async def test_quoting_crlf_newlines_and_long_ids(self, api: Caller) -> None:
        data = (
            b"id,comment,amount\r\n"
            b'1234567890123456789,"multi\r\nline, with ""quotes""",1,234,567.89\r\n'
        )
        r = await upload(api, "q.csv", data)
        assert_error(r, 400, "INVALID_FILE")  # the unquoted thousands separators make a ragged row
        data = (
            b"id,comment,amount\r\n"
            b'1234567890123456789,"multi\r\nline, with ""quotes""","1,234,567.89"\r\n'
            b'98765432109876543210,plain,"-12,000"\r\n'
        )
        item = await created(api, "q.csv", data)
        assert types(item) == {"id": "decimal", "comment": "text", "amount": "decimal"}
        rows = await rows_of(api, item)
        assert rows[0]["comment"] == 'multi\r\nline, with "quotes"'
        assert [r["id"] for r in rows] == [
            Decimal("1234567890123456789"),
            Decimal("98765432109876543210"),
        ]
        raw = (await api.client.get(f"/data-items/{item['id']}/rows/")).text
        assert "98765432109876543210" in raw and "1234567.89" in raw
        assert [r["amount"] for r in rows] == [Decimal("1234567.89"), Decimal(-12000)]

    async def test_dates_only_when_one_reading_fits(self, api: Caller) -> None:
        rows = [
            ["ambiguous", "day_first", "iso", "named", "mixed"],
            ["03/01/2026", "13/01/2026", "2026-01-15T10:30:00", "Jan 5 2026", "2026-01-01"],
            ["04/02/2026", "02/03/2026", "2026-01-16", "Feb 6 2026", "01/02/2026"],
        ]
        item = await created(api, "dates.csv", files.csv_bytes(rows))
        assert types(item) == {
            "ambiguous": "char", "day_first": "date", "iso": "date", "named": "date", "mixed": "char",
        }  # fmt: skip
        # the notes say how each column was read, so a day/month decision is never silent
        assert "Column 'day_first': date (every value is a day-first date)." in item["notes"]
        assert (
            "Column 'ambiguous': char (day/month order is ambiguous (e.g. '03/01/2026'))."
            in item["notes"]
        )
        got = await rows_of(api, item)
        assert [r["day_first"] for r in got] == ["2026-01-13", "2026-03-02"]
        assert [r["ambiguous"] for r in got] == ["03/01/2026", "04/02/2026"]
        assert [r["iso"] for r in got] == ["2026-01-15T10:30:00", "2026-01-16"]
        assert [r["named"] for r in got] == ["2026-01-05", "2026-02-06"]

    async def test_headers_blank_duplicate_and_blank_rows_are_reported(self, api: Caller) -> None:
        data = b" name ,,Name,score\r\na,1,b,1\r\n,,,\r\nc,2,d,0\r\n"
        item = await created(api, "h.csv", data)
        assert [f["field_label"] for f in item["fields"]] == [
            "name",
            "Column 2",
            "Name (2)",
            "score",
        ]
        assert item["rows_created"] == 2
        notes = " ".join(item["notes"]).lower()
        assert "column 2" in notes and "name (2)" in notes and "blank" in notes
        assert types(item)["score"] == "decimal"  # 0/1 alone stays a number

    async def test_booleans_and_missing_markers(self, api: Caller) -> None:
        rows = [["ok", "n"], ["Yes", "NA"], ["no", "1"], ["Y", "-"], ["f", "2.5"]]
        item = await created(api, "b.csv", files.csv_bytes(rows))
        assert types(item) == {"ok": "boolean", "n": "decimal"}
        got = await rows_of(api, item)
        assert [r["ok"] for r in got] == [True, False, True, False]
        assert [r["n"] for r in got] == [None, Decimal(1), None, Decimal("2.5")]


class TestCreateFromExcel:
    async def test_xlsx_typed_cells_and_sheets(self, api: Caller) -> None:
        data = files.xlsx_bytes(
            {
                "First": [["A", "B"], [1, "x"]],
                "Deals": [
                    ["Deal", "Amount", "Closed", "When", "Code", "Paid"],
                    [
                        "a",
                        1.5,
                        dt.date(2026, 1, 15),
                        dt.datetime(2026, 1, 15, 10, 30),
                        "02134",
                        True,
                    ],
                    ["b", 103, dt.date(2026, 1, 16), dt.datetime(2026, 1, 16), "00501", False],
                    ["c", 0.1, None, None, "#N/A", None],
                ],
            }
        )
        first = await created(api, "book.xlsx", data)
        assert [f["field_label"] for f in first["fields"]] == ["A", "B"]
        for sheet in ("Deals", "1"):
            item = await created(api, "book.xlsx", data, sheet=sheet)
            assert types(item) == {
                "Deal": "char", "Amount": "decimal", "Closed": "date", "When": "date",
                "Code": "char", "Paid": "boolean",
            }  # fmt: skip
            rows = await rows_of(api, item)
            assert [r["Amount"] for r in rows] == [Decimal("1.5"), Decimal(103), Decimal("0.1")]
            assert [r["Closed"] for r in rows] == ["2026-01-15", "2026-01-16", None]
            assert [r["When"] for r in rows] == ["2026-01-15T10:30:00", "2026-01-16", None]
            assert [r["Code"] for r in rows][:2] == ["02134", "00501"]
            assert [r["Paid"] for r in rows] == [True, False, None]
        download = await api.client.get(
            f"/data-items/{first['id']}/reference-files/{first['reference_file']['id']}"
        )
        assert download.content == data
        assert "spreadsheetml" in download.headers["content-type"]

    async def test_unknown_sheet_lists_the_sheets(self, api: Caller) -> None:
        data = files.xlsx_bytes({"One": [["a"], [1]], "Two": [["b"], [2]]})
        body = assert_error(await upload(api, "b.xlsx", data, sheet="Three"), 400, "INVALID_FILE")
        assert "One" in body["error"] and "Two" in body["error"]

    async def test_xls(self, api: Caller) -> None:
        data = files.xls_bytes(
            {
                "S": [
                    ["Name", "When", "Qty"],
                    ["a", dt.date(2026, 1, 15), 2],
                    ["b", dt.date(2026, 2, 1), 3.5],
                ]
            }
        )
        item = await created(api, "old.xls", data)
        assert types(item) == {"Name": "char", "When": "date", "Qty": "decimal"}
        assert [r["When"] for r in await rows_of(api, item)] == ["2026-01-15", "2026-02-01"]


class TestRefusedFilesLeaveNothing:
    @pytest.mark.parametrize(
        ("name", "data", "fragment"),
        [
            ("empty.csv", b"", "empty"),
            ("blank.csv", b"\xef\xbb\xbf\r\n  \r\n", "empty"),
            ("header.csv", b"a,b,c\r\n", "no data rows"),
            ("app.csv", files.exe_bytes(), ACCEPTED),
            ("image.xlsx", files.png_bytes(), ACCEPTED),
            ("doc.pdf", files.pdf_bytes(), ACCEPTED),
            ("sheet.ods", files.ods_like_zip(), ACCEPTED),
            ("archive.xlsx", files.plain_zip(), ACCEPTED),
            ("cut.xlsx", files.truncated(files.xlsx_bytes({"S": [["a"], [1]] * 50})), ""),
            ("bomb.xlsx", files.zip_bomb_xlsx(), ""),
            ("liar.xlsx", files.lying_size_xlsx(), ""),
            ("bad.csv", files.invalid_utf8_csv(), "UTF-8"),
            ("nul.csv", files.nul_csv(), ""),
            ("ragged.csv", b"a,b\r\n1,2,3\r\n", "row 2"),
        ],
    )
    async def test_400_and_nothing_created(
        self, api: Caller, app: FastAPI, name: str, data: bytes, fragment: str
    ) -> None:
        before = await partitions_count(app)
        body = assert_error(await upload(api, name, data), 400, "INVALID_FILE")
        assert fragment.lower() in body["error"].lower()
        assert (await api.client.get("/data-items/")).json()["data_items"] == []
        assert await partitions_count(app) == before

    async def test_form_problems(self, api: Caller) -> None:
        no_name = await api.client.post(CREATE, files={"data_file": ("a.csv", b"a\r\n1\r\n")})
        assert "data_name" in assert_error(no_name, 400)["error"]
        no_file = await api.client.post(CREATE, data={"data_name": "x"})
        assert "data_file" in assert_error(no_file, 400)["error"]
        other = await api.client.post(
            CREATE, data={"data_name": "x"}, files={"attachment": ("a.csv", b"a\r\n1\r\n")}
        )
        assert "data_file" in assert_error(other, 400)["error"]
        as_json = await api.client.post(CREATE, json={"data_name": "x"})
        assert_error(as_json, 400, "UNSUPPORTED_MEDIA_TYPE")
        assert (await api.client.get("/data-items/")).json()["data_items"] == []


@pytest_asyncio.fixture
async def small_limit_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(max_upload_bytes=50_000, upload_dir=tmp_path / "spool"),
        database_url=database_url,
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_upload_over_the_limit_is_413_and_leaves_nothing(
    small_limit_app: FastAPI, api: Caller
) -> None:
    big = files.csv_bytes([["a", "b"]] + [[str(i), "x" * 20] for i in range(5000)])

    async def stream() -> AsyncIterator[bytes]:
        boundary = b"--xyz"
        yield boundary + b'\r\nContent-Disposition: form-data; name="data_name"\r\n\r\nbig\r\n'
        yield (
            boundary
            + b'\r\nContent-Disposition: form-data; name="data_file"; filename="big.csv"\r\n\r\n'
        )
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]
        yield b"\r\n--xyz--\r\n"

    transport = httpx.ASGITransport(app=small_limit_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
        declared = await c.post(
            CREATE, data={"data_name": "big"}, files={"data_file": ("big.csv", big)},
            headers={"X-Api-Key": api.api_key},
        )  # fmt: skip
        streamed = await c.post(
            CREATE, content=stream(),
            headers={"X-Api-Key": api.api_key, "content-type": "multipart/form-data; boundary=xyz"},
        )  # fmt: skip
    for r in (declared, streamed):
        body = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert "50,000 bytes" in body["error"]
    assert (await api.client.get("/data-items/")).json()["data_items"] == []
    assert list(spool_dir(small_limit_app.state.settings).glob("*")) == []


class TestAppend:
    async def test_matches_headers_converts_and_skips(self, api: Caller) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        more = files.csv_bytes(
            [
                [" REGION ", "revenue", "Extra", "closed"],
                ["Central", "1,000.5", "zz", "TRUE"],
                ["North", "2", "yy", ""],
            ]
        )
        r = await api.client.post(
            f"/data-items/{item['id']}/append-from-file/", files={"data_file": ("more.csv", more)}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["rows_appended"] == 2 and body["cells_created"] == 5
        assert body["matched_columns"] == [" REGION ", "revenue", "closed"]
        assert body["skipped_columns"] == ["Extra"]
        assert body["reference_file"]["filename"] == "more.csv"
        rows = await rows_of(api, item)
        assert [r["Region"] for r in rows][-2:] == ["Central", "North"]
        assert [r["Revenue"] for r in rows][-2:] == [Decimal("1000.5"), Decimal(2)]
        assert [r["Closed"] for r in rows][-2:] == [True, None]
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        assert detail["row_count"] == 6 and len(detail["reference_files"]) == 2
        s = json.loads(
            (await api.client.get(f"/data-items/{item['id']}/summary/")).content,
            parse_float=Decimal,
        )
        rev = next(x for x in s["field_summaries"] if x["field_label"] == "Revenue")
        assert rev["sum"] == Decimal("47202.75") and rev["total_values"] == 5
        region = next(x for x in s["field_summaries"] if x["field_label"] == "Region")
        assert region["unique_count"] == 5 and region["top_values"][0] == {
            "value": "North",
            "count": 2,
        }

    async def test_leading_zeros_into_a_decimal_field_are_just_zeros(self, api: Caller) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        more = files.csv_bytes([["Quantity", "Zip Code"], ["007", "007"]])
        r = await api.client.post(
            f"/data-items/{item['id']}/append-from-file/", files={"data_file": ("m.csv", more)}
        )
        assert r.status_code == 200, r.text
        last = (await rows_of(api, item))[-1]
        assert last["Quantity"] == Decimal(7) and last["Zip Code"] == "007"

    async def test_add_new_fields(self, api: Caller) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        more = files.csv_bytes([["Region", "Rating", "Due"], ["West", "4.5", "2026-05-01"]])
        r = await api.client.post(
            f"/data-items/{item['id']}/append-from-file/",
            data={"add_new_fields": "true"},
            files={"data_file": ("more.csv", more)},
        )
        assert r.status_code == 200, r.text
        assert r.json()["matched_columns"] == ["Region", "Rating", "Due"]
        assert r.json()["skipped_columns"] == []
        notes = r.json()["notes"]
        assert "Column 'Rating': decimal (every value is a number)." in notes
        assert not any("'Region'" in n for n in notes)  # an existing field: its type stands
        fields = (await api.client.get(f"/data-items/{item['id']}/fields/")).json()["fields"]
        assert [(f["field_label"], f["field_type"]) for f in fields][-2:] == [
            ("Rating", "decimal"),
            ("Due", "date"),
        ]
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        rows = await rows_of(api, detail)
        assert rows[-1]["Rating"] == Decimal("4.5") and rows[0]["Rating"] is None

    async def test_a_bad_value_fails_everything_and_names_row_column_value(
        self, api: Caller
    ) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        header = ["Region", "Revenue", "Closed"]
        body_rows = [["x", "1", "yes"]] * 5 + [["bad", "abc", "maybe"]] + [["y", "oops", "no"]] * 30
        r = await api.client.post(
            f"/data-items/{item['id']}/append-from-file/",
            files={"data_file": ("bad.csv", files.csv_bytes([header, *body_rows]))},
        )
        body = assert_error(r, 400, "INVALID_FILE")
        first = body["details"][0]
        assert first == {**first, "row": 7, "column": "Revenue", "value": "abc"}
        assert len(body["details"]) == 20 and "first 20" in body["error"]
        assert "row 7" in body["error"] and "'abc'" in body["error"]
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        assert detail["row_count"] == 4 and len(detail["reference_files"]) == 1

    async def test_nothing_matches(self, api: Caller) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        r = await api.client.post(
            f"/data-items/{item['id']}/append-from-file/",
            files={"data_file": ("x.csv", b"foo,bar\r\n1,2\r\n")},
        )
        assert "add_new_fields" in assert_error(r, 400)["error"]

    async def test_another_account_gets_404_and_nothing_changes(
        self, api: Caller, intruder: Caller
    ) -> None:
        item = await created(api, "sales.csv", files.sales_csv())
        r = await intruder.client.post(
            f"/data-items/{item['id']}/append-from-file/",
            data={"add_new_fields": "true"},
            files={"data_file": ("x.csv", files.sales_csv())},
        )
        assert_error(r, 404, "NOT_FOUND")
        ref = item["reference_file"]["id"]
        assert_error(
            await intruder.client.get(f"/data-items/{item['id']}/reference-files/{ref}/"), 404
        )
        theirs = await create_item(intruder.client, "theirs")
        assert_error(
            await intruder.client.get(f"/data-items/{theirs['id']}/reference-files/{ref}/"), 404
        )
        assert (await api.client.get(f"/data-items/{item['id']}/")).json()["row_count"] == 4
