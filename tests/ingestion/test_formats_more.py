"""The formats beyond CSV and Excel, through real HTTP uploads: .tsv, .ods, .json (an array of
objects) and .ndjson/.jsonl. Each creates an item with the same inference as CSV (leading zeros
kept, dates, exact decimals), appends into an item, keeps its file with its content type, and
every malformed file is a 400 that says what is wrong and leaves nothing behind."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.ingestion.formats import CONTENT_TYPES
from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error
from tests.ingestion import files, ods_files

pytestmark = pytest.mark.asyncio

CREATE = "/data-items/create-from-file/"

# One table, in every format: a code with leading zeros, exact decimals, dates, yes/no values
# and a text with a comma, a quote and a non-ASCII letter.
HEADER = ["Code", "Amount", "Due", "Paid", "Note"]
ROWS = [
    ["00123", "45200.50", "2026-01-15", "true", 'a, "b"'],
    ["00456", "0.1", "2026-02-28", "false", "é"],
    ["07000", "12345678901234567890.5", "2026-12-31", "true", ""],
]
EXPECTED_TYPES = {
    "Code": "char",
    "Amount": "decimal",
    "Due": "date",
    "Paid": "boolean",
    "Note": "char",
}


async def upload(api: Caller, name: str, data: bytes, **form: str) -> httpx.Response:
    return await api.client.post(
        CREATE, data={"data_name": "Upload", **form}, files={"data_file": (name, data)}
    )


async def created(api: Caller, name: str, data: bytes, **form: str) -> dict[str, Any]:
    r = await upload(api, name, data, **form)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def append(api: Caller, item_id: int, name: str, data: bytes, **form: str) -> httpx.Response:
    return await api.client.post(
        f"/data-items/{item_id}/append-from-file/", data=form, files={"data_file": (name, data)}
    )


async def rows_of(api: Caller, item_id: int) -> list[dict[str, Any]]:
    fields = (await api.client.get(f"/data-items/{item_id}/fields/")).json()["fields"]
    by_id = {str(f["id"]): f["field_label"] for f in fields}
    r = await api.client.get(f"/data-items/{item_id}/rows/", params={"limit": 500})
    assert r.status_code == 200
    body = json.loads(r.content, parse_float=Decimal)
    return [{by_id[k]: v for k, v in row.items() if k != "_row_ref"} for row in body["rows"]]


def types(item: dict[str, Any]) -> dict[str, str]:
    return {f["field_label"]: f["field_type"] for f in item["fields"]}


async def assert_nothing_created(api: Caller) -> None:
    assert (await api.client.get("/data-items/")).json()["data_items"] == []


async def assert_reference_file(
    api: Caller, item: dict[str, Any], data: bytes, extension: str
) -> None:
    ref = item["reference_file"]
    r = await api.client.get(f"/data-items/{item['id']}/reference-files/{ref['id']}/")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"].split(";")[0] == CONTENT_TYPES[extension]


def tsv_bytes() -> bytes:
    return files.csv_bytes([HEADER, *ROWS], delimiter="\t")


def json_objects() -> list[str]:
    """ROWS as JSON objects: the decimals as JSON numbers written as in the CSV, the yes/no
    values as true/false, the empty note as null."""
    return [
        f'{{"Code": "{code}", "Amount": {amount}, "Due": "{due}", "Paid": {paid}, '
        f'"Note": {json.dumps(note, ensure_ascii=False) if note else "null"}}}'
        for code, amount, due, paid, note in ROWS
    ]


def json_array_bytes() -> bytes:
    return ("[\n  " + ",\n  ".join(json_objects()) + "\n]\n").encode()


def ndjson_bytes() -> bytes:
    return "\n".join(json_objects()).encode() + b"\n"


def ods_bytes() -> bytes:
    rows: list[list[object]] = [list(HEADER)]
    for code, amount, due, paid, note in ROWS:
        date = dt.date.fromisoformat(due)
        rows.append([code, Decimal(amount), date, paid == "true", note or None])
    return ods_files.ods_bytes({"Data": rows, "Second": [["Only"], ["x"]]})


async def assert_table(api: Caller, item: dict[str, Any], *, exact: bool = True) -> None:
    """The item holds ROWS with EXPECTED_TYPES (`exact`: the 21-digit amount too; a
    workbook's numbers are binary floats, exact to 15 digits as in Excel)."""
    assert types(item) == EXPECTED_TYPES
    assert item["rows_created"] == 3
    rows = await rows_of(api, item["id"])
    assert [r["Code"] for r in rows] == ["00123", "00456", "07000"]
    amounts = [r["Amount"] for r in rows]
    assert amounts[:2] == [Decimal("45200.5"), Decimal("0.1")]
    assert not exact or amounts[2] == Decimal("12345678901234567890.5")
    assert [r["Due"] for r in rows] == ["2026-01-15", "2026-02-28", "2026-12-31"]
    assert [r["Paid"] for r in rows] == [True, False, True]
    assert [r["Note"] for r in rows] == ['a, "b"', "é", None]


class TestTsv:
    async def test_creates_an_item_with_the_csv_inference(self, api: Caller) -> None:
        data = tsv_bytes()
        item = await created(api, "table.tsv", data)
        await assert_table(api, item)
        assert "Delimiter: tab (a .tsv file)." in item["notes"]
        await assert_reference_file(api, item, data, "tsv")

    async def test_commas_and_semicolons_stay_in_their_cell(self, api: Caller) -> None:
        data = b"Name;Tags,More\nAda;x,y\nLinus;z\n"  # no tab: one column, never split elsewhere
        item = await created(api, "one.tsv", data)
        assert types(item) == {"Name;Tags,More": "char"}
        rows = await rows_of(api, item["id"])
        assert [r["Name;Tags,More"] for r in rows] == ["Ada;x,y", "Linus;z"]

    async def test_a_row_with_more_cells_than_the_header_is_a_400(self, api: Caller) -> None:
        body = assert_error(await upload(api, "t.tsv", b"a\tb\n1\t2\t3\n"), 400, "INVALID_FILE")
        assert "Row 2 has 3 fields but the header has 2" in body["error"]
        await assert_nothing_created(api)

    async def test_appends_into_an_item(self, api: Caller) -> None:
        item = await created(api, "table.csv", files.csv_bytes([HEADER, *ROWS]))
        more = files.csv_bytes(
            [["Code", "Amount", "Due"], ["00999", "1.25", "2027-01-01"]], delimiter="\t"
        )
        r = await append(api, item["id"], "more.tsv", more)
        assert r.status_code == 200, r.text
        assert r.json()["rows_appended"] == 1
        last = (await rows_of(api, item["id"]))[-1]
        assert last["Code"] == "00999" and last["Amount"] == Decimal("1.25")
        assert last["Due"] == "2027-01-01"


class TestOds:
    async def test_creates_an_item_with_the_workbook_cell_types(self, api: Caller) -> None:
        data = ods_bytes()
        item = await created(api, "table.ods", data)
        await assert_table(api, item, exact=False)
        assert "Sheet 'Data' used (the workbook has 2 sheets)." in item["notes"]
        await assert_reference_file(api, item, data, "ods")

    @pytest.mark.parametrize("sheet", ["Second", "1"])
    async def test_a_sheet_by_name_or_index(self, api: Caller, sheet: str) -> None:
        item = await created(api, "table.ods", ods_bytes(), sheet=sheet)
        assert types(item) == {"Only": "char"}
        assert [r["Only"] for r in await rows_of(api, item["id"])] == ["x"]

    async def test_an_unknown_sheet_is_a_400_listing_the_sheets(self, api: Caller) -> None:
        body = assert_error(await upload(api, "t.ods", ods_bytes(), sheet="Third"), 400)
        assert "its sheets are 'Data', 'Second'" in body["error"]
        await assert_nothing_created(api)

    async def test_appends_into_an_item(self, api: Caller) -> None:
        item = await created(api, "table.csv", files.csv_bytes([HEADER, *ROWS]))
        more = ods_files.ods_bytes(
            {"S": [["Code", "Amount", "Due", "Paid"], ["00777", 2.5, dt.date(2027, 3, 1), False]]}
        )
        r = await append(api, item["id"], "more.ods", more)
        assert r.status_code == 200, r.text
        assert r.json()["matched_columns"] == ["Code", "Amount", "Due", "Paid"]
        last = (await rows_of(api, item["id"]))[-1]
        assert last == {**last, "Code": "00777", "Amount": Decimal("2.5"), "Due": "2027-03-01"}
        assert last["Paid"] is False

    @pytest.mark.parametrize(
        ("name", "data", "fragment"),
        [
            ("cut.ods", files.truncated(ods_bytes()), "damaged or truncated .ods file"),
            (
                "no-manifest.ods",
                ods_files.package(ods_files.content_xml({"S": ""}), manifest=False),
                "META-INF/manifest.xml is missing",
            ),
            (
                "writer.ods",
                ods_files.package(
                    ods_files.content_xml({}), mimetype="application/vnd.oasis.opendocument.text"
                ),
                "its mimetype is 'application/vnd.oasis.opendocument.text'",
            ),
            (
                "dtd.ods",
                ods_files.package(
                    ods_files.content_xml(
                        {"S": ods_files.row_xml(["a"])}, prolog='<!DOCTYPE x [<!ENTITY e "e">]>'
                    )
                ),
                "declares a DOCTYPE",
            ),
            (
                "broken.ods",
                ods_files.package(ods_files.content_xml({"S": "<table:table-row>"})),
                "not well-formed XML",
            ),
            ("empty.ods", ods_files.package(ods_files.content_xml({})), "has no sheets"),
        ],
    )
    async def test_malformed_files_are_400s(
        self, api: Caller, name: str, data: bytes, fragment: str
    ) -> None:
        body = assert_error(await upload(api, name, data), 400, "INVALID_FILE")
        assert fragment in body["error"]
        await assert_nothing_created(api)

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            (ods_files.repeated_ods(columns=2**40), "the limit is 1,000 columns"),
            (ods_files.repeated_ods(rows=10**12), "the limit is 5,000,000 data rows"),
            (ods_files.repeated_ods(columns=900, rows=100_000), "= 90,000,900 cells"),
        ],
    )
    async def test_huge_repeated_counts_are_400s_before_reading(
        self, api: Caller, data: bytes, fragment: str
    ) -> None:
        """A few hundred bytes that ask the reader for billions of cells: refused from the
        counts, in about the time a small workbook takes."""
        assert len(data) < 2_000
        started = time.perf_counter()
        body = assert_error(await upload(api, "bomb.ods", data), 400, "INVALID_FILE")
        assert time.perf_counter() - started < 10
        assert fragment in body["error"] and "'Bomb'" in body["error"]
        await assert_nothing_created(api)

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            (ods_files.deflate_bomb_ods(3 << 30), "would expand to 3,072 MiB"),
            (ods_files.deflate_bomb_ods(3 << 30, claim=100_000), "inflates to at least"),
        ],
    )
    async def test_a_zip_bomb_is_a_400_before_it_inflates(
        self, api: Caller, data: bytes, fragment: str
    ) -> None:
        started = time.perf_counter()
        body = assert_error(await upload(api, "bomb.ods", data), 400, "INVALID_FILE")
        assert time.perf_counter() - started < 10
        assert fragment in body["error"]
        await assert_nothing_created(api)

    async def test_all_sheets_together_count(self, api: Caller) -> None:
        """The reader builds every sheet when it opens an .ods file: two sheets of 9M cells
        each pass one by one, not together."""
        sheet = (
            ods_files.row_xml(["head"]) + '<table:table-row table:number-rows-repeated="10000">'
            '<table:table-cell office:value-type="float" office:value="1" '
            'table:number-columns-repeated="900"/></table:table-row>'
        )
        data = ods_files.package(ods_files.content_xml({"A": sheet, "B": sheet}))
        body = assert_error(await upload(api, "two.ods", data), 400, "INVALID_FILE")
        assert "The sheets of this .ods file ('A', 'B') together span" in body["error"]
        await assert_nothing_created(api)


class TestJson:
    async def test_an_array_of_objects_creates_an_item(self, api: Caller) -> None:
        data = json_array_bytes()
        item = await created(api, "table.json", data)
        await assert_table(api, item)
        assert "JSON: an array of 3 objects; their keys are the columns" in " ".join(item["notes"])
        await assert_reference_file(api, item, data, "json")

    @pytest.mark.parametrize("extension", ["ndjson", "jsonl"])
    async def test_one_object_per_line_creates_an_item(self, api: Caller, extension: str) -> None:
        data = ndjson_bytes()
        item = await created(api, f"table.{extension}", data)
        await assert_table(api, item)
        await assert_reference_file(api, item, data, extension)

    async def test_keys_values_and_nesting(self, api: Caller) -> None:
        data = (
            b'[{"id": 1, "tags": ["a", 1.50, null], "meta": {"z": 1, "a": {"k": true}}},\n'
            b' {"id": 2, "extra": "new key", "tags": [], "meta": null},\n'
            b' {"meta": {"deep": "\\u00e9\\ud83d\\ude00"}, "id": 1e3, "empty": null}]'
        )
        item = await created(api, "nested.json", data)
        assert types(item) == {
            "id": "decimal", "tags": "char", "meta": "char", "extra": "char", "empty": "char",
        }  # fmt: skip
        assert [f["field_label"] for f in item["fields"]] == list(types(item))
        rows = await rows_of(api, item["id"])
        assert [r["tags"] for r in rows] == ['["a",1.50,null]', "[]", None]
        assert [r["meta"] for r in rows] == [
            '{"z":1,"a":{"k":true}}',
            None,
            '{"deep":"é😀"}',
        ]
        assert [r["extra"] for r in rows] == [None, "new key", None]
        assert [r["id"] for r in rows] == [Decimal(1), Decimal(2), Decimal(1000)]
        assert (
            "Column 'meta': 2 nested values (objects or arrays) kept as JSON text."
            in (item["notes"])
        )

    async def test_numbers_keep_their_exact_text(self, api: Caller) -> None:
        data = (
            b'[{"n": 0.1, "code": "0042", "big": 12345678901234567890}, {"n": 1e-7, "code": "7"}]'
        )
        item = await created(api, "numbers.json", data)
        assert types(item) == {"n": "decimal", "code": "char", "big": "decimal"}
        rows = await rows_of(api, item["id"])
        assert [r["n"] for r in rows] == [Decimal("0.1"), Decimal("1E-7")]
        assert rows[0]["big"] == Decimal("12345678901234567890")
        assert [r["code"] for r in rows] == ["0042", "7"]

    async def test_appends_into_an_item_by_key(self, api: Caller) -> None:
        item = await created(api, "table.csv", files.csv_bytes([HEADER, *ROWS]))
        more = b'{"Code": "00888", "Paid": false, "Amount": 3, "Due": "2027-04-05"}\n'
        r = await append(api, item["id"], "more.jsonl", more)
        assert r.status_code == 200, r.text
        assert r.json()["matched_columns"] == ["Code", "Paid", "Amount", "Due"]
        last = (await rows_of(api, item["id"]))[-1]
        assert last == {**last, "Code": "00888", "Paid": False, "Amount": Decimal(3)}

    async def test_append_into_another_accounts_item_is_a_404(
        self, api: Caller, intruder: Caller
    ) -> None:
        item = await created(api, "table.json", json_array_bytes())
        r = await append(intruder, item["id"], "more.json", b'[{"Code": "1"}]')
        assert_error(r, 404, "NOT_FOUND")
        assert len(await rows_of(api, item["id"])) == 3

    @pytest.mark.parametrize(
        ("name", "data", "fragment"),
        [
            (
                "object.json",
                b'{"rows": [{"a": 1}]}',
                "holds one object at the top level, not an array of objects",
            ),
            ("scalars.json", b'[{"a": 1}, "b"]', "Item 2 of the array (line 1, character 12) is a"),
            ("cut.json", b'[{"a": 1}, {"a": 2', "ends inside object 2 of the array"),
            ("open.json", b'[{"a": 1},\n', "before the array is closed"),
            ("trailing.json", b'[{"a": 1},]', "JSON allows no trailing comma"),
            ("more.json", b'[{"a": 1}] [{"a": 2}]', "goes on after the array's closing bracket"),
            ("nan.json", b'[{"a": NaN}]', "NaN is not valid JSON"),
            ("bad.json", b'[{"a": 1}, {"a" 2}]', "line 1, character 17 (in object 2"),
            ("lone.json", b'[{"a": "x"}, {"a": "x\\ud800y"}]', "object 2 holds \\ud800"),
            ("lonekey.json", b'[{"\\udc00": 1}]', "has a key that holds \\udc00"),
            ("nul.json", b'[{"a": "x\\u0000"}]', "holds \\u0000"),
            ("deep.json", b'[{"a": ' + b"[" * 70 + b"]" * 70 + b"}]", "more than 64 levels"),
            ("deeper.json", b'[{"a": ' + b"[" * 10**5 + b"]" * 10**5 + b"}]", "64 levels"),
            ("empty.json", b"[]", "no objects"),
            ("keyless.json", b"[{}, {}]", "no keys"),
            ("latin1.json", b'[{"a": "caf\xe9"}]', "not valid UTF-8"),
            ("lines.ndjson", b'{"a": 1}\n{"a": 2, "b":\n{"a": 3}\n', "on line 2 does not end"),
            ("array.ndjson", b'{"a": 1}\n\n[1, 2]\n', "Line 3 is an array, not an object"),
            ("junk.jsonl", b'{"a": 1}\n{"a": 1} x\n', "Line 2 goes on after its object"),
            ("text.ndjson", b"a,b\n1,2\n", "Line 1 is not valid JSON (it starts with 'a')"),
        ],
    )
    async def test_malformed_files_are_400s(
        self, api: Caller, name: str, data: bytes, fragment: str
    ) -> None:
        body = assert_error(await upload(api, name, data), 400, "INVALID_FILE")
        assert fragment in body["error"], body["error"]
        await assert_nothing_created(api)

    async def test_a_bad_line_in_an_append_leaves_the_item_as_it_was(self, api: Caller) -> None:
        item = await created(api, "table.ndjson", ndjson_bytes())
        r = await append(api, item["id"], "more.ndjson", b'{"Code": "1"}\n{"Code": \n')
        body = assert_error(r, 400, "INVALID_FILE")
        assert "The object on line 2 does not end on that line" in body["error"]
        assert len(await rows_of(api, item["id"])) == 3
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        assert len(detail["reference_files"]) == 1


@pytest_asyncio.fixture
async def small_limits_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(
            max_upload_rows=3,
            max_upload_columns=3,
            max_cell_chars=10,
            upload_dir=tmp_path / "spool",
        ),
        database_url=database_url,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("rows.json", json.dumps([{"a": i} for i in range(4)]).encode(), "the limit is 3."),
        ("cols.ndjson", b'{"a": 1, "b": 2}\n{"c": 3, "d": 4}\n', "4 columns; the limit is 3"),
        ("cell.json", b'[{"a": "12345678901"}]', "11 characters; the limit is 10"),
        ("nested.json", b'[{"a": {"b": [1, 2, 3]}}]', "characters; the limit is 10"),
        ("rows.tsv", b"a\n1\n2\n3\n4\n", "the limit is 3."),
        ("cols.ods", ods_files.ods_bytes({"S": [["a", "b", "c", "d"]]}), "limit is 3 columns"),
    ],
)
async def test_the_csv_limits_hold(
    small_limits_app: FastAPI, api: Caller, name: str, data: bytes, fragment: str
) -> None:
    transport = httpx.ASGITransport(app=small_limits_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t/api/v1", headers={"X-Api-Key": api.api_key}
    ) as client:
        r = await client.post(CREATE, data={"data_name": "x"}, files={"data_file": (name, data)})
    body = assert_error(r, 400, "INVALID_FILE")
    assert fragment in body["error"], body["error"]
    await assert_nothing_created(api)
