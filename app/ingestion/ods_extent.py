"""How far the sheets of an .ods file reach, checked while content.xml inflates, before the
reader (calamine) builds them.

OpenDocument writes runs of equal cells and rows once, with a count:
``<table:table-cell office:value="1" table:number-columns-repeated="16384"/>`` is 16,384
cells, and ``<table:table-row table:number-rows-repeated="1048576">`` a million rows. The reader
spreads every run it keeps into cells when it opens the file, every sheet at once, so a few
hundred bytes can ask for billions of cells. It keeps what a sheet spans from its first to its
last row with a value, and in a row up to the last cell with a value; empty runs after the last
value (LibreOffice ends every row and every sheet with one) cost nothing, and neither does this
check count them.

A cell has a value for the reader when it carries ``office:value``, ``office:string-value``,
``office:date-value``, ``office:time-value``, ``office:boolean-value`` or ``table:formula``, or
``office:value-type="string"``. The counts are added up as the XML streams by (expat, no
namespace processing: the reader matches the prefixed names as written, too), so a sheet over
the limits (rows, columns, rows x columns; and all sheets together, since all are built) is
refused at the row that passes them. A DOCTYPE is refused (no entity expansion), and so is a
cell whose ``<text:s text:c="…"/>`` spaces pass MAX_CELL_CHARS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat

from app.ingestion.extent import Extent, column_letters
from app.ingestion.tables import FileFormatError, FileLimitError, ReadLimits

_CELLS = frozenset({"table:table-cell", "table:covered-table-cell"})
_VALUE_ATTRS = (
    "office:value",
    "office:string-value",
    "office:date-value",
    "office:time-value",
    "office:boolean-value",
    "table:formula",
)
_COUNT = re.compile(r"\+?[0-9]+")
_HUGE = 10**15  # a count past any limit (the reader would fail on it or run out of memory)


def _count(value: str | None) -> int:
    """A repeat count as the reader parses it (an unsigned integer, `+` allowed); one when
    absent, and when the reader would refuse it (it fails on it, so it builds nothing)."""
    if value is None:
        return 1
    if _COUNT.fullmatch(value) is None:
        return 1
    digits = value.lstrip("+").lstrip("0")
    return _HUGE if len(digits) > 15 else int(digits or "0")


def _has_value(attrs: dict[str, str]) -> bool:
    if attrs.get("office:value-type") == "string":
        return True
    return any(name in attrs for name in _VALUE_ATTRS)


@dataclass
class _Sheet:
    name: str
    depth: int  # of its table:table element
    extent: Extent = field(default_factory=Extent)
    rows: int = 0  # rows so far, runs spread (the row number of the last one)
    in_row: bool = False
    row_repeats: int = 1
    row_position: int = 0  # cells so far in the current row, runs spread
    row_end: int = 0  # the row's last cell with a value (1-based; 0: none)


class OdsContentScanner:
    """Fed content.xml's bytes in order; `finish` checks what is left."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self._parser = expat.ParserCreate()
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.StartDoctypeDeclHandler = self._doctype
        self._depth = 0
        self._sheet: _Sheet | None = None
        self._sheets = 0
        self._cell_depth = 0  # inside a cell (its depth) or 0: nothing in it is a row or a sheet
        self._cell_spaces = 0
        self._cells = 0  # of the sheets done: the reader builds them all
        self._done: list[str] = []

    def feed(self, chunk: bytes) -> None:
        self._parse(chunk, final=False)

    def finish(self) -> None:
        self._parse(b"", final=True)

    def _parse(self, data: bytes, *, final: bool) -> None:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise FileFormatError(
                f"The .ods file's content.xml is not well-formed XML ({exc}); the file is "
                "damaged or was not written by a spreadsheet program."
            ) from None

    def _doctype(self, *_: object) -> None:
        raise FileFormatError(
            "The .ods file's content.xml declares a DOCTYPE, which spreadsheet programs never "
            "write; refusing a possibly crafted file."
        )

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        sheet = self._sheet
        if self._cell_depth:  # a cell's content: only its spaces count
            if name == "text:s":
                self._spaces(_count(attrs.get("text:c")))
            return
        if name in _CELLS:
            if sheet is not None and sheet.in_row:
                repeats = _count(attrs.get("table:number-columns-repeated"))
                sheet.row_position += repeats
                if _has_value(attrs):
                    sheet.row_end = sheet.row_position
                    if sheet.row_end > self.limits.max_columns:
                        self._close_row(sheet)  # (refused there, naming the cell)
            self._cell_depth = self._depth
            self._cell_spaces = 0
        elif name == "table:table-row":
            if sheet is not None:
                sheet.in_row = True
                sheet.row_repeats = _count(attrs.get("table:number-rows-repeated"))
                sheet.row_position = sheet.row_end = 0
        elif name == "table:table" and sheet is None:
            self._sheets += 1
            self._sheet = _Sheet(attrs.get("table:name") or f"sheet {self._sheets}", self._depth)

    def _end(self, name: str) -> None:
        depth = self._depth
        self._depth -= 1
        if self._cell_depth:
            if depth == self._cell_depth:
                self._cell_depth = 0
            return
        sheet = self._sheet
        if sheet is None:
            return
        if name == "table:table-row" and sheet.in_row:
            self._close_row(sheet)
            sheet.in_row = False
        elif name == "table:table" and depth == sheet.depth:
            sheet.extent.check(sheet.name, self.limits)
            self._cells += sheet.extent.rows * sheet.extent.columns
            self._done.append(sheet.name)
            self._sheet = None
            if self._cells > self.limits.max_cells:
                self._too_many_cells()

    def _close_row(self, sheet: _Sheet) -> None:
        sheet.rows += sheet.row_repeats  # the last row of the run
        if sheet.row_end:
            where = f"{column_letters(sheet.row_end)}{sheet.rows}"
            sheet.extent.include(sheet.rows, sheet.row_end, where)
            e, limits = sheet.extent, self.limits
            over_cells = e.rows * e.columns > limits.max_cells
            if e.rows - 1 > limits.max_rows or e.columns > limits.max_columns or over_cells:
                e.check(sheet.name, limits)
            if self._cells + e.rows * e.columns > limits.max_cells:
                self._too_many_cells(sheet.name, e.rows * e.columns)

    def _too_many_cells(self, current: str | None = None, current_cells: int = 0) -> None:
        total = self._cells + current_cells
        names = [*self._done, *([current] if current else [])]
        shown = ", ".join(f"'{n}'" for n in names[:5]) + (", …" if len(names) > 5 else "")
        raise FileLimitError(
            f"The sheets of this .ods file ({shown}) together span {total:,} cells, and the "
            f"limit is {self.limits.max_cells:,} (EXCEL_MAX_CELLS: the reader builds every "
            "sheet of an .ods file when it opens it). Remove stray cells far from the data, "
            "or save the sheet you need as CSV.",
            details=[{"sheets": names, "cells": total, "limit": self.limits.max_cells}],
        )

    def _spaces(self, count: int) -> None:
        self._cell_spaces += count
        if self._cell_spaces > self.limits.max_cell_chars:
            sheet = self._sheet
            where = f" in sheet '{sheet.name}', row {sheet.rows + 1:,}" if sheet else ""
            raise FileLimitError(
                f"A cell{where} holds more than {self.limits.max_cell_chars:,} spaces "
                f"(<text:s text:c=…>); the limit is {self.limits.max_cell_chars:,} characters.",
                details=[{"limit": self.limits.max_cell_chars}],
            )
