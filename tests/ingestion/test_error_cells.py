"""Workbook error cells (#DIV/0!, #N/A, #NAME?, #SPILL!, ...), as constants and as formula
results: each reads as an empty cell, does not count against its column's type, and the notes
count them per column (read_table, create-from-file, append-from-file; .xlsx and .xls)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any, Unpack

import polars as pl
import pytest

from app.ingestion.readers import RawTable, read_table
from app.ingestion.upload import remove_stale_spools
from tests.conftest import Caller
from tests.ingestion import files
from tests.ingestion.files import ExcelError as E
from tests.ingestion.files import Formula as F

CREATE = "/data-items/create-from-file/"
DAY = dt.datetime(2026, 1, 15)

# every error Excel shows, as a constant, in columns of each type
CONSTANTS: list[list[Any]] = [
    ["Amount", "When", "Paid", "Name", "Only errors"],
    [1.5, DAY, True, "Ada", E("#REF!")],
    [E("#NAME?"), E("#SPILL!"), E("#CALC!"), "Grace", E("#NULL!")],
    [E("#DIV/0!"), DAY, E("#N/A"), E("#GETTING_DATA"), None],
    [2, E("#VALUE!"), False, E("#NUM!"), E("#NAME?")],
]
CONSTANT_NOTES = [
    "Column 'Amount': 2 error cells (#NAME?, #DIV/0!) read as empty.",
    "Column 'When': 2 error cells (#SPILL!, #VALUE!) read as empty.",
    "Column 'Paid': 2 error cells (#CALC!, #N/A) read as empty.",
    "Column 'Name': 2 error cells (#GETTING_DATA, #NUM!) read as empty.",
    "Column 'Only errors': 3 error cells (#REF!, #NULL!, #NAME?) read as empty.",
]
# formulas saved with an error result (as Excel saves =1/0), next to one saved with a number
FORMULAS: list[list[Any]] = [
    ["Ratio", "Lookup", "Label"],
    [0.5, F("=VLOOKUP(1,A1:B2,2,FALSE)", "#N/A"), "a"],
    [F("=1/0", "#DIV/0!"), 3, F("=FOO()", "#NAME?")],
    [F("=1+1", 2), F('=1+"x"', "#VALUE!"), "b"],
    [F("=SQRT(-1)", "#NUM!"), 4, F("=A1 B1", "#NULL!")],
]
FORMULA_NOTES = [
    "Column 'Ratio': 2 error cells (#DIV/0!, #NUM!) read as empty.",
    "Column 'Lookup': 2 error cells (#N/A, #VALUE!) read as empty.",
    "Column 'Label': 2 error cells (#NAME?, #NULL!) read as empty.",
]
# .xls has no #SPILL! or #CALC! (BIFF8 knows eight error codes)
XLS_ROWS: list[list[Any]] = [
    ["Amount", "When", "Paid", "Name", "Ratio"],
    [1.5, DAY, True, "Ada", 0.5],
    [E("#NAME?"), E("#GETTING_DATA"), E("#REF!"), "Grace", F("1/0", "#DIV/0!")],
    [E("#DIV/0!"), DAY, E("#N/A"), E("#NULL!"), F("NA()", "#N/A")],
    [2, E("#VALUE!"), False, E("#NUM!"), 3],
]
XLS_NOTES = [
    "Column 'Amount': 2 error cells (#NAME?, #DIV/0!) read as empty.",
    "Column 'When': 2 error cells (#GETTING_DATA, #VALUE!) read as empty.",
    "Column 'Paid': 2 error cells (#REF!, #N/A) read as empty.",
    "Column 'Name': 2 error cells (#NULL!, #NUM!) read as empty.",
    "Column 'Ratio': 2 error cells (#DIV/0!, #N/A) read as empty.",
]


def read(tmp_path: Path, name: str, data: bytes, **kwargs: Unpack[files.ReadOptions]) -> RawTable:
    path = files.write(tmp_path, name, data)
    table = read_table(path, name, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # the clean copy is gone
    return table


def test_xlsx_error_constants_are_empty_cells_of_their_typed_columns(tmp_path: Path) -> None:
    table = read(tmp_path, "c.xlsx", files.xlsx_bytes({"S": CONSTANTS}))
    assert table.frame.schema.dtypes() == [
        pl.Float64,
        pl.Datetime("ms"),
        pl.Boolean,
        pl.String,
        pl.String,
    ]
    assert table.frame.rows() == [
        (1.5, DAY, True, "Ada", None),
        (None, None, None, "Grace", None),
        (None, DAY, None, None, None),
        (2.0, None, False, None, None),
    ]
    assert table.notes == ["Sheet 'S' used.", *CONSTANT_NOTES]


def test_xlsx_formulas_saved_with_an_error_result(tmp_path: Path) -> None:
    table = read(tmp_path, "f.xlsx", files.xlsx_formulas_bytes({"S": FORMULAS}))
    assert table.frame.schema.dtypes() == [pl.Float64, pl.Float64, pl.String]
    assert table.frame.rows() == [
        (0.5, None, "a"),
        (None, 3.0, None),
        (2.0, None, "b"),
        (None, 4.0, None),
    ]
    assert table.notes == ["Sheet 'S' used.", *FORMULA_NOTES]


def test_xls_error_constants_and_formula_results(tmp_path: Path) -> None:
    table = read(tmp_path, "e.xls", files.xls_bytes({"S": XLS_ROWS}))
    assert table.frame.schema.dtypes() == [
        pl.Float64,
        pl.Datetime("ms"),
        pl.Boolean,
        pl.String,
        pl.Float64,
    ]
    assert table.frame.rows() == [
        (1.5, DAY, True, "Ada", 0.5),
        (None, None, None, "Grace", None),
        (None, DAY, None, None, None),
        (2.0, None, False, None, 3.0),
    ]
    assert table.notes == ["Sheet 'S' used.", *XLS_NOTES]


@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
def test_a_row_of_errors_is_blank_and_a_header_error_is_no_header(tmp_path: Path, fmt: str) -> None:
    make = files.xlsx_bytes if fmt == "xlsx" else files.xls_bytes
    rows: files.Rows = [["id", E("#REF!")], [1, "a"], [E("#N/A"), E("#DIV/0!")], [2, "b"]]
    table = read(tmp_path, f"b.{fmt}", make({"S": rows}))
    assert table.labels == ["id", "Column 2"]
    assert table.frame.rows() == [(1.0, "a"), (2.0, "b")]
    assert table.notes == [
        "Sheet 'S' used.",
        "Skipped 1 blank row (first: row 3).",
        "Column 2 has no header; named 'Column 2'.",
        "Column 'id': 1 error cell (#N/A) read as empty.",
        "Column 'Column 2': 1 error cell (#DIV/0!) read as empty.",
    ]


@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
def test_only_the_chosen_sheet_counts(tmp_path: Path, fmt: str) -> None:
    make = files.xlsx_bytes if fmt == "xlsx" else files.xls_bytes
    broken: files.Rows = [["n", "m"], [1, "a"], [E("#NAME?"), "b"]]
    data = make({"Clean": [["n"], [1], [2]], "Broken": broken})
    assert read(tmp_path, f"s.{fmt}", data).notes == [
        "Sheet 'Clean' used (the workbook has 2 sheets)."
    ]
    (tmp_path / f"s.{fmt}").unlink()
    table = read(tmp_path, f"s.{fmt}", data, sheet="Broken")
    assert table.frame.rows() == [(1.0, "a"), (None, "b")]
    assert table.notes == [
        "Sheet 'Broken' used (the workbook has 2 sheets).",
        "Column 'n': 1 error cell (#NAME?) read as empty.",
    ]


def test_a_sheet_whose_name_xml_escapes(tmp_path: Path) -> None:
    data = files.xlsx_bytes({'R&D <"2026">': [["n", "m"], [1, "a"], [E("#NAME?"), "b"]]})
    table = read(tmp_path, "x.xlsx", data)
    assert table.frame.rows() == [(1.0, "a"), (None, "b")]
    assert table.notes[-1] == "Column 'n': 1 error cell (#NAME?) read as empty."


def test_a_sheet_starting_right_of_column_a(tmp_path: Path) -> None:
    """Columns are matched by the sheet's own column, wherever the data starts."""
    rows: files.Rows = [[None, None, "x", "y"], [None, None, 1, E("#DIV/0!")], [None, None, 2, 3]]
    table = read(tmp_path, "o.xlsx", files.xlsx_bytes({"S": rows}))
    assert table.labels == ["x", "y"]
    assert table.frame.rows() == [(1.0, None), (2.0, 3.0)]
    assert table.notes[-1] == "Column 'y': 1 error cell (#DIV/0!) read as empty."


def test_a_killed_service_leaves_no_copy_behind(tmp_path: Path) -> None:
    """The copy without error cells (and the reader's table) lie next to the upload: the
    start-up clean-up of a dead process's spool files takes them too."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    upload = f"upload-{gone.pid}-0123abcd.part"
    for name in (upload, f"{upload}.clean.xlsx", f"{upload}.table.arrow"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_spools(tmp_path) == 3
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- HTTP


def by_label(item: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = {str(f["id"]): f["field_label"] for f in item["fields"]}
    return [{labels[k]: v for k, v in row.items() if k != "_row_ref"} for row in rows]


async def rows_of(api: Caller, item: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item['id']}/rows/")
    assert r.status_code == 200, r.text
    return by_label(item, json.loads(r.content, parse_float=Decimal)["rows"])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "make", "rows", "notes"),
    [
        ("c.xlsx", files.xlsx_bytes, CONSTANTS, CONSTANT_NOTES),
        ("f.xlsx", files.xlsx_formulas_bytes, FORMULAS, FORMULA_NOTES),
        ("e.xls", files.xls_bytes, XLS_ROWS, XLS_NOTES),
    ],
)
async def test_create_from_a_workbook_with_error_cells(
    api: Caller, name: str, make: Any, rows: list[list[Any]], notes: list[str]
) -> None:
    r = await api.client.post(
        CREATE, data={"data_name": "Errors"}, files={"data_file": (name, make({"S": rows}))}
    )
    assert r.status_code == 201, r.text
    item = r.json()
    for note in notes:
        assert note in item["notes"]
    types = {f["field_label"]: f["field_type"] for f in item["fields"]}
    if name != "f.xlsx":
        assert types == {
            "Amount": "decimal",
            "When": "date",
            "Paid": "boolean",
            "Name": "char",
            **({"Ratio": "decimal"} if name == "e.xls" else {"Only errors": "char"}),
        }
    else:
        assert types == {"Ratio": "decimal", "Lookup": "decimal", "Label": "char"}
    stored = await rows_of(api, item)
    first = stored[0]
    if name == "f.xlsx":
        assert [r["Ratio"] for r in stored] == [Decimal("0.5"), None, Decimal(2), None]
        assert first == {"Ratio": Decimal("0.5"), "Lookup": None, "Label": "a"}
    else:
        assert [r["Amount"] for r in stored] == [Decimal("1.5"), None, None, Decimal(2)]
        assert [r["When"] for r in stored] == ["2026-01-15", None, "2026-01-15", None]
        assert [r["Paid"] for r in stored] == [True, None, None, False]
    assert item["rows_created"] == 4


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
async def test_append_from_a_workbook_with_error_cells(api: Caller, fmt: str) -> None:
    start = files.csv_bytes([["Amount", "Name"], ["1", "Ada"]])
    r = await api.client.post(
        CREATE, data={"data_name": "Append"}, files={"data_file": ("start.csv", start)}
    )
    assert r.status_code == 201, r.text
    item = r.json()
    make = files.xlsx_bytes if fmt == "xlsx" else files.xls_bytes
    more = make(
        {"S": [["Amount", "Name"], [E("#NAME?"), "Bob"], [2.5, E("#DIV/0!")], [E("#N/A"), "Cy"]]}
    )
    r = await api.client.post(
        f"/data-items/{item['id']}/append-from-file/", files={"data_file": (f"m.{fmt}", more)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows_appended"] == 3
    assert r.json()["notes"] == [
        "Sheet 'S' used.",
        "Column 'Amount': 2 error cells (#NAME?, #N/A) read as empty.",
        "Column 'Name': 1 error cell (#DIV/0!) read as empty.",
    ]
    assert await rows_of(api, item) == [
        {"Amount": Decimal(1), "Name": "Ada"},
        {"Amount": None, "Name": "Bob"},
        {"Amount": Decimal("2.5"), "Name": None},
        {"Amount": None, "Name": "Cy"},
    ]
