"""Export, then create an item from the exported file: the same labels, types and values come
back, for CSV and xlsx, including the values that are easy to lose on the way."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from tests.conftest import Caller
from tests.ingestion import files
from tests.transfer.helpers import rows_by_label, types, upload

pytestmark = pytest.mark.asyncio

HEADER = [
    "Code", "Big", "Amount", "Pi", "When", "Day first", "Odd dates", "Flag", "Notes", "Place",
    "Nothing",
]  # fmt: skip
ROWS = [
    ["02134", "1234567890123456789", "45,200.50", "3.14159265358979323846", "2026-01-15",
     "13/01/2026", "2026-01-15 00:00", "yes", "line one\nline two", "North", ""],
    ["00501", "-0.25", "-0.25", "", "2026-01-15T10:30:00", "05/02/2026", "1899-12-31", "no",
     'He said "hi", then left', "", ""],
    ["10001", "", "1e3", "2.5", "2026-02-28 08:05:03.25", "", "2026-03-01T10:00:00.123456", "",
     "", "South, East", ""],
    ["94105", "98765432109876543210", "0.1", "0", "", "31/12/2025", "", "Y", "tab\there",
     "  padded  ", ""],
]  # fmt: skip
EXPECTED_TYPES = [
    ("Code", "char"), ("Big", "decimal"), ("Amount", "decimal"), ("Pi", "decimal"),
    ("When", "date"), ("Day first", "date"), ("Odd dates", "date"), ("Flag", "boolean"),
    ("Notes", "text"), ("Place", "char"), ("Nothing", "char"),
]  # fmt: skip


async def original(api: Caller) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    item = await upload(api, "tricky.csv", files.csv_bytes([HEADER, *ROWS]), data_name="Tricky")
    assert types(item) == EXPECTED_TYPES
    rows = await rows_by_label(api, item["id"])
    assert [r["Code"] for r in rows] == ["02134", "00501", "10001", "94105"]
    assert [r["Big"] for r in rows] == [
        Decimal("1234567890123456789"), Decimal("-0.25"), None, Decimal("98765432109876543210"),
    ]  # fmt: skip
    assert rows[0]["Pi"] == Decimal("3.14159265358979323846")
    assert [r["Day first"] for r in rows] == ["2026-01-13", "2026-02-05", None, "2025-12-31"]
    assert [r["Odd dates"] for r in rows] == [
        "2026-01-15T00:00:00", "1899-12-31", "2026-03-01T10:00:00.123456", None,
    ]  # fmt: skip
    assert [r["When"] for r in rows] == [
        "2026-01-15", "2026-01-15T10:30:00", "2026-02-28T08:05:03.25", None,
    ]  # fmt: skip
    return item, rows


async def export(api: Caller, item_id: int, fmt: str) -> bytes:
    r = await api.client.get(f"/data-items/{item_id}/export/", params={"format": fmt})
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_export_then_create_from_file_gives_the_same_item(api: Caller, fmt: str) -> None:
    item, rows = await original(api)
    data = await export(api, item["id"], fmt)
    again = await upload(api, f"tricky.{fmt}", data, data_name="Again")
    assert types(again) == EXPECTED_TYPES
    assert await rows_by_label(api, again["id"]) == rows
    # and once more: a second round trip is stable too
    third = await upload(api, f"again.{fmt}", await export(api, again["id"], fmt))
    assert await rows_by_label(api, third["id"]) == rows


async def test_csv_is_the_stored_text(api: Caller) -> None:
    item, _ = await original(api)
    text = (await export(api, item["id"], "csv")).decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == "Code,Big,Amount,Pi,When,Day first,Odd dates,Flag,Notes,Place,Nothing"
    assert lines[1] == (
        "02134,1234567890123456789,45200.5,3.14159265358979323846,2026-01-15,2026-01-13,"
        '2026-01-15T00:00:00,true,"line one\nline two",North,'
    )  # the newline inside the quoted cell stays a bare LF; record ends are CRLF
    assert lines[2] == (
        "00501,-0.25,-0.25,,2026-01-15T10:30:00,2026-02-05,1899-12-31,false,"
        '"He said ""hi"", then left",,'
    )
    assert lines[3].startswith("10001,,1000,2.5,2026-02-28T08:05:03.25,,")
    assert lines[4] == "94105,98765432109876543210,0.1,0,,2025-12-31,,true,tab\there,  padded  ,"
    assert lines[5] == "" and len(lines) == 6


async def test_xlsx_cells_keep_their_types(api: Caller) -> None:
    item, _ = await original(api)
    book = openpyxl.load_workbook(io.BytesIO(await export(api, item["id"], "xlsx")))
    sheet = book.worksheets[0]
    assert sheet.title == "Tricky" and sheet.freeze_panes == "A2"
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == HEADER
    col = {label: i for i, label in enumerate(HEADER)}
    first, second = values[1], values[2]
    assert first[col["Code"]] == "02134"  # text, zeros kept
    assert first[col["Big"]] == "1234567890123456789"  # 19 digits: text, not a rounded float
    assert first[col["Amount"]] == 45200.5 and isinstance(first[col["Amount"]], float)
    assert first[col["Pi"]] == "3.14159265358979323846"
    assert first[col["When"]] == dt.datetime(2026, 1, 15)  # a real date cell
    assert second[col["When"]] == dt.datetime(2026, 1, 15, 10, 30)
    assert values[3][col["When"]] == dt.datetime(2026, 2, 28, 8, 5, 3, 250000)
    assert sheet.cell(row=2, column=col["When"] + 1).number_format == "yyyy-mm-dd"
    # a column an Excel date cannot give back exactly is ISO text, all of it
    assert [v[col["Odd dates"]] for v in values[1:]] == [
        "2026-01-15T00:00:00", "1899-12-31", "2026-03-01T10:00:00.123456", None,
    ]  # fmt: skip
    assert [v[col["Flag"]] for v in values[1:]] == [True, False, None, True]
    assert second[col["Notes"]] == 'He said "hi", then left'
    assert values[4][col["Place"]] == "  padded  "
