"""Error cells (``#DIV/0!``, ``#N/A``, ``#NAME?``, ``#SPILL!``, …) read as empty cells.

The reader (calamine through fastexcel) cannot be asked to: some error values make it refuse
the whole column ("could not determine dtype", ``#NAME?``), some the whole sheet (``#SPILL!``,
``#CALC!``: "Unsupported cell error value"), and the others are nulls nothing counts. So a
sheet that has error cells (the extent checks spot them while they scan every cell anyway:
``t="e"`` in .xlsx, BOOLERR and FORMULA records with an error result in .xls) is read from a
copy without them, and each one is counted by its column for the notes:

.xlsx
    The archive is copied (stored, not recompressed) with that sheet's part rewritten as it
    inflates: every ``<c … t="e">…</c>`` becomes ``<c r="…"/>``, an empty cell. Only the error
    cells are looked at in Python (a byte search finds them).
.xls
    The workbook stream keeps its size: each error record's type becomes BLANK (0x0201), a
    record the reader skips, and the copy's stream is overwritten in place.

The copy is what the reader sees: an error cell no longer counts against its column's type,
and a column of nothing but errors is empty. Cells above the header row are not counted.
"""

from __future__ import annotations

import re
import shutil
import struct
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from app.ingestion.tables import FileFormatError, SourceFormat

XLS_ERRORS = {
    0x00: "#NULL!",
    0x07: "#DIV/0!",
    0x0F: "#VALUE!",
    0x17: "#REF!",
    0x1D: "#NAME?",
    0x24: "#NUM!",
    0x2A: "#N/A",
    0x2B: "#GETTING_DATA",
}
_BLANK = struct.pack("<H", 0x0201)
_PIECE = 4 << 20
_ERROR_ATTRS = (b't="e"', b"t='e'")
_TAG = re.compile(rb"<((?:[\w.-]+:)?c)[\s/>]")
_REF = re.compile(rb"""\sr\s*=\s*["']([A-Z]{1,3})([0-9]{1,7})["']""")
_VALUE = re.compile(rb"<(?:[\w.-]+:)?v>([^<]*)<")
_ROW = re.compile(rb"<(?:[\w.-]+:)?row\b([^>]*)>(.*?)</(?:[\w.-]+:)?row>", re.S)
_ROW_NUMBER = re.compile(rb"""\sr\s*=\s*["']([0-9]{1,7})["']""")
_HAS_VALUE = re.compile(rb"<(?:[\w.-]+:)?(?:v|is)[\s>]")
_ROW_END = re.compile(rb"</(?:[\w.-]+:)?row>")


@dataclass
class SheetErrors:
    """The error cells of one sheet (0-based row, 0-based column, the error as Excel shows
    it) and the row the reader takes for the header (0-based; None: no value at all)."""

    cells: list[tuple[int, int, str]] = field(default_factory=list)
    header_row: int | None = None

    def by_column(self) -> dict[int, Counter[str]]:
        """Error values per (0-based, absolute) column, below the header row."""
        out: dict[int, Counter[str]] = {}
        if self.header_row is None:
            return out
        for row, col, text in self.cells:
            if row > self.header_row:
                out.setdefault(col, Counter())[text] += 1
        return out


def clean_copy(path: Path, fmt: SourceFormat) -> Path:
    """Where the copy of an upload without its error cells goes (next to it, so that the
    spool's clean-up covers it; the extension tells the reader the format)."""
    return path.with_name(f"{path.name}.clean.{fmt}")


def column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


# ----------------------------------------------------------------------------- .xlsx


def has_error_cells(xml: bytes, *, single_quotes: bool = False) -> bool:
    """Whether a piece of worksheet XML may hold an error cell (``t="e"``; ``t='e'`` too when
    `single_quotes`: the part quotes attributes so, which writers hardly ever do). One byte
    search, about 1.6 GB/s on sheet XML."""
    return _ERROR_ATTRS[0] in xml or (single_quotes and _ERROR_ATTRS[1] in xml)


def clean_xlsx(path: Path, part: str, out: Path) -> SheetErrors:
    """Copy the workbook to `out` with the error cells of worksheet `part` made empty."""
    errors = _XlsxCleaner()
    try:
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                with zin.open(info) as src, zout.open(info.filename, "w") as dst:
                    if info.filename == part:
                        for piece in errors.run(src):
                            dst.write(piece)
                    else:
                        shutil.copyfileobj(src, dst, _PIECE)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FileFormatError(f"The .xlsx workbook could not be read: {exc}") from None
    return errors.result


class _XlsxCleaner:
    """Rewrites a worksheet part as it inflates, whole rows at a time (a cell never spans two
    pieces), and notes where each error cell was and the first row with a value."""

    def __init__(self) -> None:
        self.result = SheetErrors()
        self._rows_seen = 0  # for rows without an r attribute

    def run(self, src: IO[bytes]) -> Iterator[bytes]:
        buf = b""
        while chunk := src.read(_PIECE):
            buf += chunk
            cut = _last_row_end(buf)
            if cut > 0:
                yield self._clean(buf[:cut])
                buf = buf[cut:]
        if buf:
            yield self._clean(buf)

    def _clean(self, piece: bytes) -> bytes:
        out: list[bytes] = []
        pos = 0
        for hit in _hits(piece):
            if hit < pos:
                continue
            lt = piece.rfind(b"<", pos, hit)
            tag = _TAG.match(piece, lt) if lt >= 0 else None
            gt = piece.find(b">", hit)
            if tag is None or gt < 0 or piece.find(b">", lt, hit) >= 0:
                continue  # not in a cell's start tag
            name = tag.group(1)
            if piece[gt - 1 : gt] == b"/":
                end, inner = gt + 1, b""
            else:
                close = piece.find(b"</" + name + b">", gt)
                if close < 0:
                    continue
                end, inner = close + len(name) + 3, piece[gt + 1 : close]
            ref = _REF.search(piece, lt, gt)
            value = _VALUE.search(inner)
            text = value.group(1).decode("utf-8", "replace").strip() if value else ""
            out.append(piece[pos:lt])
            if ref is None:
                out.append(b"<" + name + b"/>")  # (unplaced: the reader counts it in the row)
            else:
                out.append(b"<" + name + b' r="' + ref.group(1) + ref.group(2) + b'"/>')
                row, col = int(ref.group(2)) - 1, column_number(ref.group(1)) - 1
                self.result.cells.append((row, col, text or "#ERROR"))
            pos = end
        out.append(piece[pos:])
        cleaned = b"".join(out) if len(out) > 1 else piece
        if self.result.header_row is None:
            self._find_header(cleaned)
        return cleaned

    def _find_header(self, piece: bytes) -> None:
        for row in _ROW.finditer(piece):
            self._rows_seen += 1
            number = _ROW_NUMBER.search(row.group(1))
            index = int(number.group(1)) - 1 if number else self._rows_seen - 1
            self._rows_seen = index + 1
            if _HAS_VALUE.search(row.group(2)):
                self.result.header_row = index
                return


def _hits(piece: bytes) -> list[int]:
    """Positions of ``t="e"`` and ``t='e'`` (attributes), in order."""
    return sorted(at for attr in _ERROR_ATTRS for at in _find_all(piece, attr))


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        if at == 0 or data[at - 1 : at] in b" \t\r\n":
            yield at
        at = data.find(needle, at + 1)


def _last_row_end(buf: bytes) -> int:
    """Where the last complete row element ends in `buf` (0: none)."""
    at = buf.rfind(b"row>")
    while at >= 0:
        m = _ROW_END.match(buf, buf.rfind(b"</", 0, at + 1))
        if m is not None and m.end() == at + 4:
            return at + 4
        at = buf.rfind(b"row>", 0, at)
    return 0


# ----------------------------------------------------------------------------- .xls


@dataclass
class XlsSheetCells:
    """What the extent check saw of a worksheet: its error records (offset in the workbook
    stream, row, column, error code) and the first row with a value."""

    errors: list[tuple[int, int, int, int]] = field(default_factory=list)
    first_value_row: int | None = None

    def saw_value(self, row: int) -> None:
        if self.first_value_row is None or row < self.first_value_row:
            self.first_value_row = row


def clean_xls(path: Path, stream: str, cells: XlsSheetCells, out: Path) -> SheetErrors:
    """Copy the workbook to `out` with the sheet's error records turned into BLANK records
    (same size: the stream is overwritten in place)."""
    import olefile

    shutil.copyfile(path, out)
    try:
        with olefile.OleFileIO(str(out), write_mode=True) as ole:
            data = bytearray(ole.openstream(stream).read())
            for offset, _row, _col, _code in cells.errors:
                data[offset : offset + 2] = _BLANK
            ole.write_stream(stream, bytes(data))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FileFormatError(f"The .xls workbook could not be read: {first}") from None
    return SheetErrors(
        [
            (row, col, XLS_ERRORS.get(code, f"#ERROR 0x{code:02X}"))
            for _, row, col, code in cells.errors
        ],
        cells.first_value_row,
    )
