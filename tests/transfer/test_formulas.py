"""Formulas in CSV exports (issue 14, point 6): `escape_formulas` puts `'` before a char or text
cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first); on by default
with `bom=true` (an export meant for Excel), off otherwise, so the plain CSV stays the stored
text and round-trips exactly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item
from tests.ingestion import files
from tests.transfer.helpers import rows_by_label, types, upload

pytestmark = pytest.mark.asyncio

DANGEROUS = [
    '=HYPERLINK("http://evil/","x")',
    "+cmd|/c calc!A1",
    "@SUM(1)",
    "-2+3",
    "\tindented",
    "\r=1+1",
]
HARMLESS = ["North", "a=b", " =not first", "'already quoted", "", "5"]


async def add_rows(api: Caller, sales: Sales, rows: list[dict[str, Any]]) -> None:
    r = await api.client.post(
        f"/data-items/{sales.id}/rows/bulk/", json={"rows": [sales.row(**row) for row in rows]}
    )
    assert r.status_code == 201, r.text


async def export_rows(api: Caller, item_id: int, **params: str) -> list[list[str]]:
    r = await api.client.get(f"/data-items/{item_id}/export/", params=params)
    assert r.status_code == 200, r.text
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))


async def item_with_every_kind_of_cell(api: Caller, sales: Sales) -> None:
    await add_rows(
        api,
        sales,
        [
            {"region": value, "notes": value, "revenue": "-5", "date": "2026-01-15"}
            for value in DANGEROUS + HARMLESS
        ],
    )


async def test_escape_formulas_quotes_text_cells_that_start_a_formula(
    api: Caller, sales: Sales
) -> None:
    await item_with_every_kind_of_cell(api, sales)
    table = await export_rows(api, sales.id, escape_formulas="true")
    assert table[0] == ["Region", "Revenue", "Close Date", "Closed", "Notes"]
    regions = [row[0] for row in table[1:]]
    notes = [row[4] for row in table[1:]]
    expected = ["'" + v for v in DANGEROUS] + ["" if v == "" else v for v in HARMLESS]
    assert regions == expected and notes == expected
    # a decimal is a number, never a formula: -5 stays -5; dates and booleans never start so
    assert {row[1] for row in table[1:]} == {"-5"}
    assert {row[2] for row in table[1:]} == {"2026-01-15"}


async def test_on_by_default_for_a_spreadsheet_export_and_can_be_turned_off(
    api: Caller, sales: Sales
) -> None:
    await item_with_every_kind_of_cell(api, sales)
    for_excel = await export_rows(api, sales.id, bom="true")
    assert for_excel[1][0] == "'" + DANGEROUS[0] and for_excel[1][1] == "-5"
    raw_with_bom = await export_rows(api, sales.id, bom="true", escape_formulas="false")
    assert [row[0] for row in raw_with_bom[1:]] == DANGEROUS + HARMLESS


async def test_default_export_is_the_stored_text(api: Caller, sales: Sales) -> None:
    await item_with_every_kind_of_cell(api, sales)
    table = await export_rows(api, sales.id)
    assert [row[0] for row in table[1:]] == DANGEROUS + HARMLESS
    assert [row[4] for row in table[1:]] == DANGEROUS + HARMLESS


async def test_labels_are_escaped_too(api: Caller) -> None:
    item = await create_item(
        api.client, "Labels", [{"field_label": "=SUM(A1)"}, {"field_label": "@x"}]
    )
    assert (await export_rows(api, item["id"], escape_formulas="true"))[0] == ["'=SUM(A1)", "'@x"]
    assert (await export_rows(api, item["id"]))[0] == ["=SUM(A1)", "@x"]


@pytest.mark.parametrize("value", ["maybe", "2", ""])
async def test_a_bad_value_is_400(api: Caller, sales: Sales, value: str) -> None:
    r = await api.client.get(f"/data-items/{sales.id}/export/", params={"escape_formulas": value})
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert "escape_formulas" in body["error"]


async def test_the_default_csv_export_round_trips_formula_like_values(api: Caller) -> None:
    header = ["Code", "Formula", "Amount", "Note"]
    rows = [
        ["A1", '=HYPERLINK("http://evil/","x")', "-5", "+cmd|/c calc!A1"],
        ["A2", "@SUM(1)", "12.50", "-not a number"],
        ["A3", "=1+1", "-0.25", "\tindented"],
    ]
    item = await upload(api, "formulas.csv", files.csv_bytes([header, *rows]), data_name="F")
    assert types(item) == [
        ("Code", "char"), ("Formula", "char"), ("Amount", "decimal"), ("Note", "char"),
    ]  # fmt: skip
    before = await rows_by_label(api, item["id"])
    assert [r["Amount"] for r in before] == [Decimal("-5"), Decimal("12.5"), Decimal("-0.25")]
    r = await api.client.get(f"/data-items/{item['id']}/export/")
    assert r.status_code == 200, r.text
    again = await upload(api, "again.csv", r.content, data_name="Again")
    assert types(again) == types(item)
    assert await rows_by_label(api, again["id"]) == before
