"""How far each sheet of a workbook reaches, checked against the limits before any reader
allocates.

The Excel reader (calamine) builds a sheet as one dense rectangle spanning its used range: two
cells, at ``A1`` and ``XFD1048576``, make it allocate 17 billion cells (512 GiB) for a 1.5 KB
file. So the rectangle is measured first, from what the file says and from where its cells are:

.xlsx
    Each worksheet part's ``<dimension ref="A1:J100001">`` and the ``r="J100001"`` reference of
    every cell (and row). The parts are scanned while the zip-bomb check inflates them anyway
    (`formats.check_xlsx`). Only references beyond the largest seen so far are looked at in
    Python: a regex with a literal prefix skips the rest at about 1 GB/s, so a 100k-row sheet
    costs about 0.1 s on top of inflating it.
.xls
    Every worksheet's DIMENSIONS record and the row/column of every cell record (NUMBER, RK,
    LABELSST, FORMULA, MULRK, ...), in every sheet: calamine loads them all when it opens the
    file.

On the way, error cells are spotted (``t="e"`` in .xlsx; BOOLERR and FORMULA records with an
error result in .xls, with the first row that has a value): `cell_errors` reads such a sheet
from a copy without them.

Cells written without a reference are placed by the reader after the previous one; they cannot
reach further than the file has cells, and the reader's own process has an address-space
budget (`isolation.py`) for whatever a check like this cannot see.

One module, a little over 400 lines, on purpose: the .xlsx and .xls scans are the two halves of
one check, sharing `Extent`, the column arithmetic and this explanation; the .xls half alone is
about 110 lines, too small to stand apart from what it shares.
"""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.ingestion.cell_errors import XlsSheetCells, has_error_cells
from app.ingestion.tables import FileFormatError, FileLimitError, ReadLimits

# Adaptive scans fall back to reading every reference after this many "new maximum" hits (a
# sheet whose row elements do not carry `r` first makes every row one).
_MAX_ADAPTIVE_HITS = 2_000
_OVERLAP = 48  # bytes kept between chunks, longer than any reference
_ROW_ELEMENT = re.compile(rb'<row r="([0-9]{1,12})"')
_DIMENSION = re.compile(rb'<(?:[A-Za-z_][\w.-]*:)?dimension\s+ref="([^"]{1,40})"')
_REF = re.compile(rb'r="([A-Z]*)([0-9]*)')
_CELL_REF = re.compile(r"([A-Z]{1,4})([0-9]{1,12})")


def column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def column_letters(number: int) -> str:
    out = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        out = chr(65 + rest) + out
    return out


def _greater(value: str, lo: str, hi: str) -> str:
    """A regex matching the strings over [lo-hi] that are greater than `value` when compared by
    length, then character by character (numbers without leading zeros; column letters). Built
    as a trie, so that a string that is not greater fails on its first characters."""
    cls = f"[{lo}-{hi}]"

    def after(i: int) -> str:
        rest = len(value) - i - 1
        ch = value[i]
        alts = []
        if ch != hi:
            alts.append(f"[{chr(ord(ch) + 1)}-{hi}]" + (f"{cls}{{{rest}}}" if rest else ""))
        if rest:
            alts.append(re.escape(ch) + after(i + 1))
        if not alts:
            return "(?!)"
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return f"(?:{cls}{{{len(value) + 1},}}|{after(0)})"


@dataclass
class Extent:
    """The rectangle a reader allocates for a sheet: from row/column 1 to the largest seen
    (an upper bound: the reader starts at the smallest, which is at least 1), and where each
    was seen (a cell reference, or "row N" for a row element)."""

    rows: int = 0
    columns: int = 0
    row_at: str = ""
    column_at: str = ""

    def include(self, row: int, column: int, where: str) -> None:
        if row > self.rows or (row == self.rows and self.row_at.startswith("row ")):
            self.rows, self.row_at = row, where if row else self.row_at
        if column > self.columns:
            self.columns, self.column_at = column, where

    def check(self, sheet: str, limits: ReadLimits, *, declared: bool = False) -> None:
        rows, cols = self.rows, self.columns
        says = "declares a used range" if declared else "has cells"
        span = f"{rows:,} rows by {cols:,} columns"
        if rows - 1 > limits.max_rows:
            at = "" if self.row_at.startswith("row ") else f" (at {self.row_at})"
            raise FileLimitError(
                f"The sheet '{sheet}' {says} down to row {rows:,}{at}; the limit "
                f"is {limits.max_rows:,} data rows. Remove the stray cells far below the data, "
                "or split the file.",
                details=[
                    {"sheet": sheet, "cell": self.row_at, "rows": rows, "limit": limits.max_rows}
                ],
            )
        if cols > limits.max_columns:
            raise FileLimitError(
                f"The sheet '{sheet}' {says} out to column {column_letters(cols)} ({cols:,} "
                f"columns, at {self.column_at}); the limit is {limits.max_columns:,} columns. "
                "Remove the stray cells far to the right of the data.",
                details=[
                    {
                        "sheet": sheet,
                        "cell": self.column_at,
                        "columns": cols,
                        "limit": limits.max_columns,
                    }
                ],
            )
        if rows * cols > limits.max_cells:
            at = (
                self.row_at if self.row_at == self.column_at else f"{self.column_at}, {self.row_at}"
            )
            raise FileLimitError(
                f"The sheet '{sheet}' {says} spanning {span} = {rows * cols:,} cells (at {at}), "
                f"and the limit for a workbook sheet is {limits.max_cells:,} (EXCEL_MAX_CELLS: "
                "the reader allocates the whole range). Remove stray cells far from the data, "
                "or save the sheet as CSV.",
                details=[
                    {"sheet": sheet, "cell": at, "cells": rows * cols, "limit": limits.max_cells}
                ],
            )


# ----------------------------------------------------------------------------- .xlsx


class XlsxSheetScanner:
    """Fed the inflated bytes of one worksheet part in order; `finish` checks the extent."""

    def __init__(self, sheet: str, limits: ReadLimits) -> None:
        self.sheet = sheet
        self.limits = limits
        self.extent = Extent()
        self.has_errors = False  # an error cell (t="e"): `cell_errors` reads a copy without
        self._single_quotes = False
        self._tail = b""
        self._first = True
        self._hits = 0
        self._pattern = self._compile()

    def _compile(self) -> re.Pattern[bytes]:
        cols = (
            _greater(column_letters(self.extent.columns), "A", "Z")
            if self.extent.columns
            else "[A-Z]+"
        )
        rows = _greater(str(self.extent.rows), "0", "9") if self.extent.rows else "[0-9]+"
        # possessive: the letters before a row number are never given back to try again
        return re.compile(f'r="(?:{cols}[0-9]|[A-Z]*+{rows}")'.encode())

    def feed(self, chunk: bytes) -> None:
        buf = self._tail + chunk
        if self._first:
            self._first = False
            self._dimension(buf)
            self._single_quotes = b"='" in buf  # attributes quoted so too?
        if not self.has_errors:
            self.has_errors = has_error_cells(buf, single_quotes=self._single_quotes)
        # Rows come in order: the chunk's last row element seeds the largest row, so that only
        # references beyond it (a stray cell, rows out of order) are looked at one by one.
        last = _ROW_ELEMENT.match(buf, max(buf.rfind(b"<row r="), 0))
        if last is not None and int(last.group(1)) > self.extent.rows:
            self.extent.include(int(last.group(1)), 0, f"row {last.group(1).decode()}")
            self._pattern = self._compile()
        if self._hits > _MAX_ADAPTIVE_HITS:
            self._every_reference(buf)
        else:
            self._adaptive(buf)
        self._tail = buf[-_OVERLAP:]
        self._check_early()

    def _adaptive(self, buf: bytes) -> None:
        pos = 0
        while (m := self._pattern.search(buf, pos)) is not None:
            pos = m.start() + 1
            ref = _REF.match(buf, m.start())
            assert ref is not None  # the pattern matched a reference here
            self._include(ref.group(1).decode(), ref.group(2).decode())
            self._hits += 1
            if self._hits > _MAX_ADAPTIVE_HITS:
                self._every_reference(buf[pos:])
                return
            self._pattern = self._compile()
            self._check_early()

    def _every_reference(self, buf: bytes) -> None:
        letters = set(re.findall(rb'r="([A-Z]+)[0-9]', buf))
        digits = set(re.findall(rb'r="[A-Z]*([0-9]+)"', buf))
        if letters:
            col = max(letters, key=lambda s: (len(s), s)).decode()
            self._include(col, "")
        if digits:
            row = max(digits, key=lambda s: (len(s), s)).decode()
            self._include("", row)

    def _include(self, letters: str, digits: str) -> None:
        letters, digits = letters[:20], digits[:40]  # (already far past any limit)
        self.extent.include(
            int(digits) if digits else 0,
            column_number(letters) if letters else 0,
            f"{letters}{digits}" if letters and digits else (letters or f"row {digits}"),
        )

    def _dimension(self, buf: bytes) -> None:
        m = _DIMENSION.search(buf, 0, 1 << 16)
        if m is None:
            return
        declared = Extent()
        for ref in m.group(1).decode("latin-1").split(":"):
            cell = _CELL_REF.fullmatch(ref.replace("$", ""))
            if cell:
                declared.include(int(cell.group(2)), column_number(cell.group(1)), cell.group(0))
        declared.check(self.sheet, self.limits, declared=True)

    def _check_early(self) -> None:
        """Stop reading as soon as the extent is over a limit (a bomb of references)."""
        e = self.extent
        if e.rows - 1 > self.limits.max_rows or e.columns > self.limits.max_columns:
            e.check(self.sheet, self.limits)
        if e.rows * e.columns > self.limits.max_cells:
            e.check(self.sheet, self.limits)

    def finish(self) -> None:
        self.extent.check(self.sheet, self.limits)


_RELATIONSHIP = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Relationship\b([^>]*)>")
_SHEET = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?sheet\b([^>]*)>")
_ATTR = re.compile(rb'([\w:.-]+)\s*=\s*"([^"]*)"')


def _attrs(raw: bytes) -> dict[str, str]:
    """An element's attributes, values unescaped (a sheet named "R&D" is `name="R&amp;D"`)."""
    return {
        k.decode("latin-1"): html.unescape(v.decode("utf-8", "replace"))
        for k, v in _ATTR.findall(raw)
    }


def worksheet_parts(read: Callable[[str], bytes | None], names: list[str]) -> dict[str, str]:
    """Worksheet part name -> sheet name, from the workbook and its relationships (where the
    reader looks), plus any other part under xl/worksheets/ (named by its file)."""
    parts: dict[str, str] = {}
    workbook, rels = read("xl/workbook.xml"), read("xl/_rels/workbook.xml.rels")
    targets: dict[str, str] = {}
    for m in _RELATIONSHIP.finditer(rels or b""):
        a = _attrs(m.group(1))
        if a.get("Type", "").endswith("/worksheet") and "Id" in a and "Target" in a:
            target = a["Target"]
            targets[a["Id"]] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    for m in _SHEET.finditer(workbook or b""):
        a = _attrs(m.group(1))
        rid = next((v for k, v in a.items() if k.endswith(":id")), None)
        if rid in targets:
            parts[_normalise(targets[rid])] = a.get("name", rid or "")
    for name in names:
        if name.startswith("xl/worksheets/") and name.endswith(".xml") and name not in parts:
            parts[name] = name.rsplit("/", 1)[-1].removesuffix(".xml")
    return parts


def _normalise(path: str) -> str:
    out: list[str] = []
    for piece in path.split("/"):
        if piece == "..":
            if out:
                out.pop()
        elif piece not in ("", "."):
            out.append(piece)
    return "/".join(out)


# ----------------------------------------------------------------------------- .xls

_BOF, _EOF, _DIMENSIONS, _ROW = 0x0809, 0x000A, 0x0200, 0x0208
_WORKSHEET = 0x0010
_BOUNDSHEET = 0x0085
# records that start with (row, column) of one cell
_CELL_RECORDS = frozenset({0x0006, 0x00D6, 0x00FD, 0x0201, 0x0203, 0x0204, 0x0205, 0x027E})
_MULTI_RECORDS = frozenset({0x00BD, 0x00BE})  # MULRK, MULBLANK: row, first col, ..., last col
_FORMULA, _BOOLERR, _MULRK = 0x0006, 0x0205, 0x00BD
# records of one cell with a value (NUMBER, LABEL, BOOLERR, RK, LABELSST, FORMULA): not BLANK
_VALUE_RECORDS = frozenset({0x0006, 0x00FD, 0x0203, 0x0204, 0x0205, 0x027E})
_U16x2 = struct.Struct("<HH")
_U16 = struct.Struct("<H")


@dataclass
class XlsBook:
    """The workbook stream's name and, per worksheet, its error records and first value row."""

    stream: str
    sheets: dict[str, XlsSheetCells]


def check_xls(path: Path, limits: ReadLimits) -> XlsBook:
    """Every worksheet's DIMENSIONS and cell positions against the limits (the reader builds
    every sheet when it opens the file); on the way, the error cells of each sheet."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            stream = next((s for s in ("Workbook", "Book") if ole.exists(s)), None)
            if stream is None:
                raise FileFormatError("The .xls file has no workbook stream (is it an .xls?).")
            data = ole.openstream(stream).read()
    except FileFormatError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FileFormatError(f"The .xls workbook is damaged: {first}") from None
    sheets: dict[str, XlsSheetCells] = {}
    for name, extent, declared, cells in _xls_sheets(data):
        declared.check(name, limits, declared=True)
        extent.check(name, limits)
        sheets.setdefault(name, cells)
    return XlsBook(stream, sheets)


def _xls_sheets(data: bytes) -> list[tuple[str, Extent, Extent, XlsSheetCells]]:
    names: dict[int, str] = {}  # BOF offset -> sheet name (from BOUNDSHEET)
    sheets: list[tuple[str, Extent, Extent, XlsSheetCells]] = []
    current: tuple[str, Extent, Extent, XlsSheetCells] | None = None
    pos, end, unpack, u16 = 0, len(data), _U16x2.unpack_from, _U16.unpack_from
    while pos + 4 <= end:
        start = pos
        rtype, size = unpack(data, pos)
        body = pos + 4
        pos = body + size
        if current is not None and rtype in _CELL_RECORDS and size >= 4:
            row, col = unpack(data, body)
            current[1].include(row + 1, col + 1, f"{column_letters(col + 1)}{row + 1}")
            if rtype in _VALUE_RECORDS:
                code = _error_code(data, rtype, body, size)
                if code is None:
                    current[3].saw_value(row)
                else:
                    current[3].errors.append((start, row, col, code))
        elif current is not None and rtype in _MULTI_RECORDS and size >= 6:
            row = u16(data, body)[0]
            col = u16(data, body + size - 2)[0]
            current[1].include(row + 1, col + 1, f"{column_letters(col + 1)}{row + 1}")
            if rtype == _MULRK:
                current[3].saw_value(row)
        elif rtype == _BOF and size >= 4:
            kind = u16(data, body + 2)[0]
            current = None
            if kind == _WORKSHEET:
                name = names.get(start, f"sheet {len(sheets) + 1}")
                current = (name, Extent(), Extent(), XlsSheetCells())
                sheets.append(current)
        elif rtype == _EOF:
            current = None
        elif rtype == _BOUNDSHEET and size >= 8:
            offset = struct.unpack_from("<I", data, body)[0]
            names[offset] = _xls_sheet_name(data[body + 6 : body + size])
        elif current is not None and rtype == _DIMENSIONS:
            if size >= 14:
                _r0, r1, _c0, c1 = struct.unpack_from("<IIHH", data, body)
            elif size >= 8:
                _r0, r1, _c0, c1 = struct.unpack_from("<HHHH", data, body)
            else:
                continue
            if r1 and c1:
                current[2].include(r1, c1, f"{column_letters(c1)}{r1}")
        elif current is not None and rtype == _ROW and size >= 6:
            row, _first, last = struct.unpack_from("<HHH", data, body)
            if last:
                current[1].include(row + 1, 0, f"row {row + 1}")
    return sheets


def _error_code(data: bytes, rtype: int, body: int, size: int) -> int | None:
    """The error code of a BOOLERR record holding an error, or of a FORMULA record whose
    cached result is one; None for any other value."""
    if rtype == _BOOLERR and size >= 8 and data[body + 7] == 1:
        return data[body + 6]
    result = data[body + 6 : body + 14] if rtype == _FORMULA and size >= 20 else b""
    if result[:1] == b"\x02" and result[6:] == b"\xff\xff":
        return result[2]
    return None


def _xls_sheet_name(raw: bytes) -> str:
    """BOUNDSHEET's name: a length byte, then (BIFF8) a flags byte and Latin-1 or UTF-16."""
    if len(raw) < 2:
        return "?"
    length, flags = raw[0], raw[1]
    if flags & 1:
        return raw[2 : 2 + 2 * length].decode("utf-16-le", "replace")
    return raw[2 : 2 + length].decode("latin-1")
