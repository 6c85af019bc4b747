"""The types every reader shares: limits, errors, a reader's `Parsed` result and the final
`RawTable` (the rules are in `readers.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

# the formats readers know (`formats.detect_format` picks one from the name and the content)
SourceFormat = Literal["csv", "tsv", "xlsx", "xls", "ods", "json", "ndjson"]


class FileFormatError(Exception):
    """The file cannot be read as a table (an HTTP 400)."""

    def __init__(self, message: str, *, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, object]] = details or []


class FileLimitError(FileFormatError):
    """A cap (rows, columns, cell length, archive size) was exceeded."""


@dataclass(frozen=True)
class ReadLimits:
    max_rows: int = 5_000_000
    max_columns: int = 1_000
    max_cell_chars: int = 100_000
    # a workbook sheet's used range (rows x columns): the reader allocates all of it
    max_cells: int = 16_000_000
    # the workbook reader's own process: address space (MiB) and wall time (s)
    excel_memory_mb: int = 4096
    excel_timeout: float = 600.0


@dataclass
class Parsed:
    """A format reader's result before the common rules (blank rows, labels, caps)."""

    headers: list[str]
    frame: pl.DataFrame
    row_numbers: pl.Series
    source_format: SourceFormat
    notes: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    # workbooks: error cells read as empty, per frame column index: {"#DIV/0!": 2, ...}
    cell_errors: dict[int, dict[str, int]] = field(default_factory=dict)


@dataclass(kw_only=True)
class RawTable(Parsed):
    """The table after the common rules: `labels` are the field labels its headers give."""

    labels: list[str]


def too_many_columns(n: int, limits: ReadLimits) -> FileLimitError:
    return FileLimitError(
        f"The file has {n:,} columns; the limit is {limits.max_columns:,}.",
        details=[{"columns": n, "limit": limits.max_columns}],
    )


def too_many_rows(limits: ReadLimits) -> FileLimitError:
    return FileLimitError(
        f"The file has more than {limits.max_rows:,} data rows (blank rows included); "
        f"the limit is {limits.max_rows:,}.",
        details=[{"limit": limits.max_rows}],
    )


def _blank_cell(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return (col.str.strip_chars().str.len_bytes() == 0).fill_null(True)
    return col.is_null()


def blank_rows(frame: pl.DataFrame) -> pl.Series:
    if frame.width == 0 or frame.height == 0:
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    first = frame.columns[0]
    candidates = frame.select(_blank_cell(first, frame.schema[first])).to_series()
    if not candidates.any():
        return candidates
    exprs = [_blank_cell(c, t) for c, t in frame.schema.items()]
    return frame.select(pl.all_horizontal(exprs)).to_series()
