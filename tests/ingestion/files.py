"""Generators of real upload files (bytes), reusable by reader, inference and HTTP tests.

Every function returns the file's bytes; ``write`` puts them in a directory. Nothing here is
mocked: CSVs are encoded text, workbooks are written by openpyxl (.xlsx) and xlwt (.xls).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import openpyxl
import xlsxwriter
import xlwt
from xlwt import BIFFRecords

from app.ingestion.readers import ReadLimits

Cell = object
Rows = Sequence[Sequence[Cell]]


class ReadOptions(TypedDict, total=False):
    """`read_table`'s keyword arguments, for the tests' helpers that pass them on."""

    sheet: str | int | None
    limits: ReadLimits


class CsvOptions(TypedDict, total=False):
    """`csv_bytes`'s keyword arguments."""

    delimiter: str
    encoding: str
    bom: bool
    newline: str


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- CSV


def csv_text(rows: Rows, *, delimiter: str = ",", newline: str = "\r\n") -> str:
    """RFC 4180 text: quotes only where needed, doubled quotes inside."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerows([["" if c is None else str(c) for c in row] for row in rows])
    return buf.getvalue()


def csv_bytes(
    rows: Rows,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
    newline: str = "\r\n",
) -> bytes:
    """A CSV in the given encoding; ``bom`` adds the encoding's byte order mark
    (``utf-16-le``/``utf-16-be`` as Excel's "Unicode text" always has one)."""
    text = csv_text(rows, delimiter=delimiter, newline=newline)
    marks = {"utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}
    return (marks[encoding] if bom else b"") + text.encode(encoding)


SALES_HEADER = ["Region", "Zip Code", "Revenue", "Quantity", "Close Date", "Signed", "Closed"]
SALES_ROWS = [
    ["North", "02134", "45,200.50", "3", "2026-01-15", "01/13/2026", "yes"],
    ["South", "10001", "-0.25", "12", "2026-02-28", "02/01/2026", "No"],
    ["East", "00501", "1e3", "7", "2026-03-01", "12/31/2025", "N/A"],
    ["West", "94105", "", "1", "", "03/04/2026", "y"],
]


def sales_csv(**kwargs: Unpack[CsvOptions]) -> bytes:
    """A small sales table touching every type (leading zeros, separators, exponent,
    US dates decided by a day over 12, yes/no with a missing marker)."""
    return csv_bytes([SALES_HEADER, *SALES_ROWS], **kwargs)


def legacy_cp1252_csv() -> bytes:
    """Windows-1252 text with an accent, a euro sign (0x80) and 0x81 (undefined in cp1252)."""
    text = "Année;Prix;Note\r\n2025;12,50;€ offert\r\n2026;3;x"
    return text.encode("cp1252") + b"\x81\r\n"


def invalid_utf8_csv() -> bytes:
    """Mostly UTF-8 ("Köln") with one invalid byte on line 3 at offset 28."""
    return b"name,city\r\nAnna,K\xc3\xb6ln\r\nBob,Z\xfcrich\r\n"


def nul_csv() -> bytes:
    return b"a,b\r\n1,2\x00\r\n"


def wide_header_csv(columns: int = 100_000) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    return (header + "\r\n" + ",".join("1" for _ in range(columns)) + "\r\n").encode()


def long_header_csv(size: int = 2 << 20) -> bytes:
    """A single header line longer than the 1 MiB header limit (no newline at all)."""
    return b"h" * size


# ----------------------------------------------------------------------------- binary


def exe_bytes() -> bytes:
    """The start of a Windows PE executable."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240


def png_bytes() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + b"\0" * 8


def pdf_bytes() -> bytes:
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


def plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "not a workbook")
    return buf.getvalue()


def ods_like_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", "<office:document-content/>")
    return buf.getvalue()


def zip_bomb_xlsx(member_bytes: int = 16 << 20) -> bytes:
    """A small .xlsx-looking zip whose sheet part inflates ~1000x (16 MiB of spaces)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b" " * member_bytes)
    return buf.getvalue()


def lying_size_xlsx(claimed: int = 3 << 30) -> bytes:
    """A zip whose central directory claims a 3 GiB sheet part (size fields patched)."""
    data = bytearray(zip_bomb_xlsx(1024))
    name = b"xl/worksheets/sheet1.xml"
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, claimed)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


# ----------------------------------------------------------------------------- Excel


class ExcelError(str):
    """An error cell as a constant (``#DIV/0!``, ``#SPILL!``, ...): openpyxl writes it as
    ``<c t="e"><v>#SPILL!</v></c>``, xlwt as a BOOLERR record."""


@dataclass(frozen=True)
class Formula:
    """A formula cell and the result saved with it (``=1/0`` and ``#DIV/0!``): XlsxWriter
    writes ``<c t="e"><f>1/0</f><v>#DIV/0!</v></c>``, xlwt a FORMULA record whose cached
    result is that error."""

    formula: str
    result: str | float  # an error (xlwt: only an error)


XLS_ERROR_CODES = {
    "#NULL!": 0x00,
    "#DIV/0!": 0x07,
    "#VALUE!": 0x0F,
    "#REF!": 0x17,
    "#NAME?": 0x1D,
    "#NUM!": 0x24,
    "#N/A": 0x2A,
    "#GETTING_DATA": 0x2B,
}


def xlsx_bytes(sheets: dict[str, Rows]) -> bytes:
    """A workbook written by openpyxl; cells keep their Python types (numbers, bools,
    dates, datetimes, strings; ``"#N/A"`` and the other classic error texts become error
    cells, as does any `ExcelError`)."""
    wb = openpyxl.Workbook()
    default_sheet = wb.active
    assert default_sheet is not None
    wb.remove(default_sheet)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
            for cell, value in zip(ws[ws.max_row], row, strict=False):
                if isinstance(value, ExcelError):
                    cell.data_type = "e"  # (openpyxl only knows the classic seven)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_formulas_bytes(sheets: dict[str, Rows]) -> bytes:
    """A workbook written by XlsxWriter, with `Formula` cells saved with their results (as
    Excel saves them); other cells as XlsxWriter writes Python values."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    for title, rows in sheets.items():
        ws = book.add_worksheet(title)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, Formula):
                    ws.write_formula(r, c, value.formula, None, value.result)
                elif isinstance(value, dt.date):
                    ws.write_datetime(r, c, value, dates)
                elif value is not None:
                    ws.write(r, c, value)
    book.close()
    return buf.getvalue()


class _XlsErrorCell:
    """An xlwt cell writing a BOOLERR record with an error (xlwt's own map lacks
    ``#GETTING_DATA`` and mislabels ``#VALUE!``)."""

    def __init__(self, row: int, col: int, xf: int, code: int) -> None:
        self.row, self.col, self.xf, self.code = row, col, xf, code

    def get_biff_data(self) -> bytes:
        return bytes(BIFFRecords.BoolErrRecord(self.row, self.col, self.xf, self.code, 1).get())


class _XlsErrorFormulaCell:
    """An xlwt cell writing a FORMULA record whose cached result is an error (xlwt itself
    always saves an empty result)."""

    def __init__(self, row: int, col: int, xf: int, code: int, formula: str) -> None:
        self.row, self.col, self.xf, self.code = row, col, xf, code
        self.rpn: bytes = xlwt.Formula(formula).rpn()  # (xlwt has no type stubs)

    def get_biff_data(self) -> bytes:
        result = bytes([2, 0, self.code, 0, 0, 0, 0xFF, 0xFF])
        body = struct.pack("<3H", self.row, self.col, self.xf) + result + b"\0" * 6 + self.rpn
        return struct.pack("<2H", 0x0006, len(body)) + body


def xls_bytes(sheets: dict[str, Rows]) -> bytes:
    """A legacy .xls written by xlwt; dates and datetimes get date formats; `ExcelError`
    cells are BOOLERR records, `Formula` cells FORMULA records with an error result."""
    book = xlwt.Workbook()
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    datetime_style = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
    for title, rows in sheets.items():
        sheet = book.add_sheet(title, cell_overwrite_ok=True)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, (ExcelError, Formula)):
                    sheet.write(r, c, 0)  # (sizes the row and the sheet's dimensions)
                    xf = 15  # the default cell format
                    text = str(value if isinstance(value, ExcelError) else value.result)
                    cell = (
                        _XlsErrorCell(r, c, xf, XLS_ERROR_CODES[text])
                        if isinstance(value, ExcelError)
                        else _XlsErrorFormulaCell(r, c, xf, XLS_ERROR_CODES[text], value.formula)
                    )
                    sheet.row(r).insert_cell(c, cell)
                elif isinstance(value, dt.datetime):
                    sheet.write(r, c, value, datetime_style)
                elif isinstance(value, dt.date):
                    sheet.write(r, c, value, date_style)
                else:
                    sheet.write(r, c, value)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


EXCEL_ROWS: list[list[Cell]] = [
    ["Name", "Amount", None, "name", "When", "Paid", "Code", "Mixed"],
    ["Ada", 1.5, "x", "a", dt.datetime(2026, 1, 15), True, "02134", 1],
    [None, None, None, None, None, None, None, None],
    ["Linus", 103, "y", "b", dt.datetime(2026, 1, 15, 10, 30), False, "00501", "text"],
    ["Grace", 0.1, "z", "c", dt.datetime(2026, 1, 16), None, "#N/A", dt.datetime(2020, 1, 1)],
]


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]
