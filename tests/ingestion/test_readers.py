"""read_table on real generated files: formats, encodings, delimiters, layout rules, caps."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Unpack

import polars as pl
import pytest

from app.ingestion.readers import (
    FileFormatError,
    FileLimitError,
    RawTable,
    ReadLimits,
    read_table,
)
from tests.ingestion import files

ACCEPTED = "Upload a .csv, .tsv, .xlsx, .xls, .ods, .json, .ndjson or .jsonl file"


def read(tmp_path: Path, name: str, data: bytes, **kwargs: Unpack[files.ReadOptions]) -> RawTable:
    return read_table(files.write(tmp_path, name, data), name, **kwargs)


def fails(
    tmp_path: Path, name: str, data: bytes, **kwargs: Unpack[files.ReadOptions]
) -> FileFormatError:
    with pytest.raises(FileFormatError) as info:
        read(tmp_path, name, data, **kwargs)
    return info.value


# ----------------------------------------------------------------------------- CSV basics


def test_csv_quotes_crlf_and_quoted_newlines(tmp_path: Path) -> None:
    data = files.csv_bytes(
        [
            ["name", "note", "amount"],
            ["Smith, J", 'says "hi"', "1"],
            ["multi", "line one\nline two", "2"],
        ]
    )
    table = read(tmp_path, "People.CSV", data)
    assert table.source_format == "csv"
    assert table.labels == ["name", "note", "amount"]
    assert table.frame.columns == ["c0", "c1", "c2"]
    assert table.frame.schema.dtypes() == [pl.String] * 3
    assert table.frame.rows() == [
        ("Smith, J", 'says "hi"', "1"),
        ("multi", "line one\nline two", "2"),
    ]
    assert table.row_numbers.to_list() == [2, 3]
    # the LF inside the quoted cell is content: the records end in CRLF
    assert table.notes == [
        "Encoding: UTF-8.",
        "Line endings: CRLF (Windows).",
        "Delimiter: comma (',').",
    ]
    assert (table.encoding, table.delimiter, table.sheet) == ("utf-8", ",", None)


def test_utf8_bom_is_removed_from_first_header(tmp_path: Path) -> None:
    table = read(tmp_path, "s.csv", files.sales_csv(bom=True))
    assert table.headers[0] == "Region"
    assert table.labels[0] == "Region"
    assert table.encoding == "utf-8-sig"
    assert table.notes[0] == "Encoding: UTF-8 (byte order mark removed)."


@pytest.mark.parametrize(
    ("encoding", "delimiter", "note"),
    [
        ("utf-16-le", "\t", "Delimiter: tab."),
        ("utf-16-be", ";", "Delimiter: semicolon (';')."),
    ],
)
def test_utf16_with_bom(tmp_path: Path, encoding: str, delimiter: str, note: str) -> None:
    data = files.sales_csv(encoding=encoding, delimiter=delimiter, bom=True)
    table = read(tmp_path, "s.csv", data)
    assert table.encoding == encoding
    assert table.delimiter == delimiter
    assert table.labels == files.SALES_HEADER
    assert table.frame.row(0) == tuple(files.SALES_ROWS[0])
    assert note in table.notes


def test_legacy_cp1252_keeps_accents(tmp_path: Path) -> None:
    table = read(tmp_path, "legacy.csv", files.legacy_cp1252_csv())
    assert table.labels == ["Année", "Prix", "Note"]
    assert table.frame.rows() == [("2025", "12,50", "€ offert"), ("2026", "3", "x\x81")]
    assert table.encoding == "cp1252"
    assert table.notes[0] == "Encoding: Windows-1252 (the file is not UTF-8)."


def test_invalid_utf8_mid_file_names_offset(tmp_path: Path) -> None:
    error = fails(tmp_path, "bad.csv", files.invalid_utf8_csv())
    assert error.message == (
        "The file is mostly UTF-8 but has an invalid byte 0xFC at byte offset 28 (line 3); "
        "save it as UTF-8 and upload it again."
    )
    assert error.details == [{"offset": 28, "line": 3}]


def test_invalid_utf8_after_first_mebibyte(tmp_path: Path) -> None:
    """The sample is valid; Polars finds the bad byte later and the file is rejected."""
    good = "id,name\r\n" + "".join(f"{i},Zoë\r\n" for i in range(150_000))
    error = fails(tmp_path, "late.csv", good.encode() + b"x,\xff\r\n")
    assert "invalid byte 0xFF" in error.message


def test_nul_bytes_are_binary(tmp_path: Path) -> None:
    error = fails(tmp_path, "nul.csv", files.nul_csv())
    assert error.message.startswith("The file contains NUL bytes (binary content")
    assert error.details == [{"offset": 8}]


@pytest.mark.parametrize(
    ("delimiter", "name"), [(";", "semicolon (';')"), ("\t", "tab"), ("|", "pipe ('|')")]
)
def test_delimiters(tmp_path: Path, delimiter: str, name: str) -> None:
    rows = [["a", "b,c", "d"], ["1", "2,5", "x"], ["3", "4", "y"]]
    table = read(tmp_path, "d.csv", files.csv_bytes(rows, delimiter=delimiter))
    assert table.delimiter == delimiter
    assert table.labels == ["a", "b,c", "d"]
    assert table.frame.rows() == [("1", "2,5", "x"), ("3", "4", "y")]
    assert f"Delimiter: {name}." in table.notes


def test_delimiter_inside_quotes_does_not_count(tmp_path: Path) -> None:
    data = b'"a;b",c\n"1;2",3\n"5;6",7\n'
    table = read(tmp_path, "q.csv", data)
    assert table.delimiter == ","
    assert table.labels == ["a;b", "c"]


def test_single_column_file(tmp_path: Path) -> None:
    table = read(tmp_path, "one.csv", b'Name\nSmith, J\n"Doe; Jane"\n')
    assert table.delimiter is None
    assert table.labels == ["Name"]
    assert table.frame.rows() == [("Smith, J",), ("Doe; Jane",)]
    assert "Delimiter: none (one column)." in table.notes


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    assert fails(tmp_path, "e.csv", data).message == "The file is empty."


@pytest.mark.parametrize("data", [b"a,b\r\n", b"a,b", b"a,b\n\n,\n"])
def test_header_only(tmp_path: Path, data: bytes) -> None:
    error = fails(tmp_path, "h.csv", data)
    assert error.message == "The file has a header row but no data rows."


def test_more_fields_than_header_names_row(tmp_path: Path) -> None:
    data = b'a,b,c\n1,2,3\n"x\ny",2,3\n4,5,6,7\n8,9,10,11,12\n'
    error = fails(tmp_path, "r.csv", data)
    assert error.message == "Row 4 has 4 fields but the header has 3."
    assert error.details == [{"row": 4, "fields": 4, "header_fields": 3}]


def test_short_rows_padded_and_reported(tmp_path: Path) -> None:
    data = b"a,b,c\n1,2,3\n4,5\n7,8,\n9\n"
    table = read(tmp_path, "r.csv", data)
    assert table.frame.rows() == [
        ("1", "2", "3"),
        ("4", "5", None),
        ("7", "8", None),
        ("9", None, None),
    ]
    note = "2 rows had fewer fields than the header (first: row 3); the missing cells are empty."
    assert note in table.notes


def test_short_rows_with_quoted_newlines(tmp_path: Path) -> None:
    data = b'a,b,c\n"x\n,y",2,\n4\n'
    table = read(tmp_path, "r.csv", data)
    assert table.frame.rows() == [("x\n,y", "2", None), ("4", None, None)]
    note = "1 row had fewer fields than the header (first: row 3); the missing cells are empty."
    assert note in table.notes


def test_blank_rows_skipped_but_counted(tmp_path: Path) -> None:
    data = b"\r\n  \r\nid,v\r\n1,a\r\n\r\n , \r\n2,b\r\n"
    table = read(tmp_path, "b.csv", data)
    assert table.frame.rows() == [("1", "a"), ("2", "b")]
    assert table.row_numbers.to_list() == [4, 7]
    assert "Skipped 2 blank lines before the header." in table.notes
    assert "Skipped 2 blank rows (first: row 5)." in table.notes


def test_blank_and_duplicate_headers(tmp_path: Path) -> None:
    data = b" name ,,Name,NAME,Column 2, \n1,2,3,4,5,6\n"
    table = read(tmp_path, "h.csv", data)
    assert table.headers == [" name ", "", "Name", "NAME", "Column 2", " "]
    assert table.labels == ["name", "Column 2 (2)", "Name (2)", "NAME (3)", "Column 2", "Column 6"]
    assert table.notes[3:] == [
        "Column 2 has no header; named 'Column 2 (2)'.",
        "Column 3: duplicate header 'Name' renamed 'Name (2)'.",
        "Column 4: duplicate header 'NAME' renamed 'NAME (3)'.",
        "Column 6 has no header; named 'Column 6'.",
    ]


def test_trailing_delimiter_column_is_dropped(tmp_path: Path) -> None:
    table = read(tmp_path, "t.csv", b"a,b,\n1,2,\n3,4,\n")
    assert table.labels == ["a", "b"]
    assert table.frame.columns == ["c0", "c1"]
    assert "Ignored 1 empty column without a header." in table.notes


def test_malformed_quote_is_a_format_error(tmp_path: Path) -> None:
    error = fails(tmp_path, "q.csv", b'a,b\n1,"x\n')
    assert error.message.startswith(
        'The CSV file could not be parsed: a quote (") is unbalanced or appears inside an '
        "unquoted field (near byte offset"
    )


# ----------------------------------------------------------------------------- caps


def test_column_cap(tmp_path: Path) -> None:
    error = fails(tmp_path, "c.csv", b"a,b,c\n1,2,3\n", limits=ReadLimits(max_columns=2))
    assert isinstance(error, FileLimitError)
    assert error.message == "The file has 3 columns; the limit is 2."


def test_row_cap(tmp_path: Path) -> None:
    error = fails(tmp_path, "r.csv", b"a\n1\n2\n3\n", limits=ReadLimits(max_rows=2))
    assert isinstance(error, FileLimitError)
    assert error.message == (
        "The file has more than 2 data rows (blank rows included); the limit is 2."
    )
    assert read(tmp_path, "r.csv", b"a\n1\n2\n", limits=ReadLimits(max_rows=2)).frame.height == 2


def test_cell_cap(tmp_path: Path) -> None:
    data = b"a,b\n1,ok\n2," + "é".encode() * 11 + b"\n"
    error = fails(tmp_path, "c.csv", data, limits=ReadLimits(max_cell_chars=10))
    assert isinstance(error, FileLimitError)
    assert error.message == "The cell in row 3, column 'b' has 11 characters; the limit is 10."


def test_hundred_thousand_column_header_fails_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    error = fails(tmp_path, "w.csv", files.wide_header_csv())
    assert isinstance(error, FileLimitError)
    assert error.message == "The file has 100,000 columns; the limit is 1,000."
    assert time.perf_counter() - start < 2


def test_huge_header_line_fails_fast(tmp_path: Path) -> None:
    error = fails(tmp_path, "l.csv", files.long_header_csv())
    assert isinstance(error, FileLimitError)
    assert error.message.startswith("The header row is longer than 1 MiB")


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "data", "why", "looks"),
    [
        ("setup.csv", files.exe_bytes(), "it is not a text file", "a Windows executable"),
        ("photo.xlsx", files.png_bytes(), "it is not an .xlsx workbook", "a PNG image"),
        ("a.xlsx", files.plain_zip(), "it is not an .xlsx workbook", "a ZIP archive"),
        (
            "calc.xlsx",
            files.ods_like_zip(),
            "it is not an .xlsx workbook",
            "an OpenDocument file (.ods/.odt)",
        ),
        (
            "calc.ods",
            files.ods_like_zip(),
            "it is not a complete .ods spreadsheet (META-INF/manifest.xml is missing)",
            "an OpenDocument file (.ods/.odt)",
        ),
        ("doc.pdf", files.pdf_bytes(), "the file type ('.pdf') is not supported", "a PDF document"),
        ("data.zip", files.plain_zip(), "the file type ('.zip') is not supported", "a ZIP archive"),
        ("data", b"a,b\n1,2\n", "the file type (no extension) is not supported", "text"),
        (
            "new.xls",
            files.xlsx_bytes({"S": [["a"], [1]]}),
            "it is not a legacy .xls workbook",
            "an Excel .xlsx workbook",
        ),
        (
            "old.xlsx",
            files.xls_bytes({"S": [["a"], [1]]}),
            "it is not an .xlsx workbook",
            "a legacy Office file (OLE2: .xls, .doc or .ppt)",
        ),
        ("page.xls", b"<html><table></table></html>", "it is not a legacy .xls workbook", "text"),
    ],
)
def test_unsupported_content(tmp_path: Path, name: str, data: bytes, why: str, looks: str) -> None:
    error = fails(tmp_path, name, data)
    assert error.message == (
        f"Unsupported file '{name}': {why}. {ACCEPTED}; the content looks like {looks}."
    )


# ----------------------------------------------------------------------------- Excel


@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
def test_excel_typed_cells(tmp_path: Path, fmt: str) -> None:
    make = files.xlsx_bytes if fmt == "xlsx" else files.xls_bytes
    data = make({"Data": files.EXCEL_ROWS, "Other": [["k"], [1]]})
    table = read(tmp_path, f"book.{fmt}", data)
    assert table.source_format == fmt
    assert table.sheet == "Data"
    assert table.labels == [
        "Name",
        "Amount",
        "Column 3",
        "name (2)",
        "When",
        "Paid",
        "Code",
        "Mixed",
    ]
    assert table.headers == ["Name", "Amount", "", "name", "When", "Paid", "Code", "Mixed"]
    assert table.frame.schema.dtypes() == [
        pl.String,
        pl.Float64,
        pl.String,
        pl.String,
        pl.Datetime("ms"),
        pl.Boolean,
        pl.String,
        pl.String,
    ]
    assert table.frame["c1"].to_list() == [1.5, 103.0, 0.1]
    assert table.frame["c4"].to_list() == [
        dt.datetime(2026, 1, 15),
        dt.datetime(2026, 1, 15, 10, 30),
        dt.datetime(2026, 1, 16),
    ]
    assert table.frame["c5"].to_list() == [True, False, None]
    # a column mixing types is text; numbers and dates are rendered by fastexcel
    assert table.frame["c7"].to_list() == ["1", "text", "2020-01-01 00:00:00"]
    assert table.row_numbers.to_list() == [2, 4, 5]
    # openpyxl writes "#N/A" as an error cell; xlwt as text
    errors = ["Column 'Code': 1 error cell (#N/A) read as empty."] if fmt == "xlsx" else []
    assert table.notes == [
        "Sheet 'Data' used (the workbook has 2 sheets).",
        "Skipped 1 blank row (first: row 3).",
        "Column 3 has no header; named 'Column 3'.",
        "Column 4: duplicate header 'name' renamed 'name (2)'.",
        *errors,
    ]


def test_xlsx_error_cells_are_null(tmp_path: Path) -> None:
    table = read(tmp_path, "e.xlsx", files.xlsx_bytes({"S": files.EXCEL_ROWS}))
    assert table.frame["c6"].to_list() == ["02134", "00501", None]


@pytest.mark.parametrize(
    ("sheet", "expected"), [("Other", "Other"), (1, "Other"), ("1", "Other"), (0, "Data")]
)
def test_excel_sheet_choice(tmp_path: Path, sheet: str | int, expected: str) -> None:
    data = files.xlsx_bytes({"Data": files.EXCEL_ROWS, "Other": [["k"], [1]]})
    table = read(tmp_path, "b.xlsx", data, sheet=sheet)
    assert table.sheet == expected


def test_excel_digit_sheet_name_wins_over_index(tmp_path: Path) -> None:
    data = files.xlsx_bytes({"0": [["a"], [1]], "1": [["b"], [2]]})
    assert read(tmp_path, "b.xlsx", data, sheet="1").labels == ["b"]
    assert read(tmp_path, "b.xlsx", data, sheet=1).labels == ["b"]


def test_excel_unknown_sheet_lists_names(tmp_path: Path) -> None:
    data = files.xlsx_bytes({"Data": [["a"], [1]], "Other": [["k"], [1]]})
    error = fails(tmp_path, "b.xlsx", data, sheet="Nope")
    assert error.message == (
        "The workbook has no sheet 'Nope'; its sheets are 'Data', 'Other' (by name or 0-based index)."
    )
    assert fails(tmp_path, "b.xlsx", data, sheet=2).details == [
        {"sheet": 2, "sheets": ["Data", "Other"]}
    ]


def test_excel_header_only_and_empty_sheet(tmp_path: Path) -> None:
    header_only = files.xlsx_bytes({"S": [["a", "b"]]})
    assert fails(tmp_path, "h.xlsx", header_only).message == (
        "The file has a header row but no data rows."
    )
    empty = files.xlsx_bytes({"S": []})
    assert fails(tmp_path, "e.xlsx", empty).message == "The sheet 'S' is empty."


def test_excel_time_of_day_cells_become_text(tmp_path: Path) -> None:
    data = files.xlsx_bytes({"S": [["t", "n"], [dt.time(10, 4), 1], [dt.time(23, 59, 30), 2]]})
    table = read(tmp_path, "t.xlsx", data)
    assert table.frame["c0"].to_list() == ["10:04:00", "23:59:30"]


def test_excel_caps(tmp_path: Path) -> None:
    data = files.xlsx_bytes({"S": [["a", "b", "c"], [1, 2, 3], [4, 5, 6]]})
    assert isinstance(
        fails(tmp_path, "c.xlsx", data, limits=ReadLimits(max_columns=2)), FileLimitError
    )
    assert isinstance(
        fails(tmp_path, "c.xlsx", data, limits=ReadLimits(max_rows=1)), FileLimitError
    )


@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
def test_truncated_workbook(tmp_path: Path, fmt: str) -> None:
    make = files.xlsx_bytes if fmt == "xlsx" else files.xls_bytes
    error = fails(tmp_path, f"t.{fmt}", files.truncated(make({"S": files.EXCEL_ROWS})))
    assert not isinstance(error, FileLimitError)
    assert "damaged" in error.message


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    error = fails(tmp_path, "bomb.xlsx", files.zip_bomb_xlsx())
    assert isinstance(error, FileLimitError)
    assert error.message.startswith(
        "The workbook part 'xl/worksheets/sheet1.xml' is compressed 1,0"
    )
    assert error.message.endswith("times (limit 200); refusing a possible decompression bomb.")


def test_zip_bomb_total_size(tmp_path: Path) -> None:
    error = fails(tmp_path, "bomb.xlsx", files.lying_size_xlsx())
    assert isinstance(error, FileLimitError)
    assert error.message == "The workbook would expand to 3,072 MiB; the limit is 1,024 MiB."


def test_cp1252_byte_after_first_mebibyte(tmp_path: Path) -> None:
    """Pure ASCII for 2 MB, then one cp1252 byte: Polars rejects it, the file is transcoded."""
    ascii_part = "id,city\r\n" + "".join(f"{i},Paris\r\n" for i in range(200_000))
    table = read(tmp_path, "late.csv", ascii_part.encode() + b"x,Z\xfcrich\r\n")
    assert table.encoding == "cp1252"
    assert table.frame.row(-1) == ("x", "Zürich")
    assert table.row_numbers[-1] == 200_002


def test_stray_quote_inside_a_field_is_reported(tmp_path: Path) -> None:
    """Polars (like RFC 4180) rejects a quote inside an unquoted field: a 400, not a crash."""
    error = fails(tmp_path, "inch.csv", b'item,size\npizza,12" large\nsalad,small\n')
    assert error.message == (
        'The CSV file could not be parsed: a quote (") is unbalanced or appears inside an '
        "unquoted field"
    )


def test_excel_text_with_nul_is_refused(tmp_path: Path) -> None:
    data = files.xls_bytes({"S": [["a", "b"], ["ok", "x"], ["fine", "bad\x00cell"]]})
    error = fails(tmp_path, "nul.xls", data)
    assert error.message == "The cell in row 3, column 2 contains a NUL character."
