"""Workbooks (.xlsx, .xls, .ods) read with fastexcel into a `Parsed` table."""

from __future__ import annotations

import re
from pathlib import Path

import fastexcel
import polars as pl

from app.core.digits import ascii_int
from app.ingestion.cell_errors import (
    SheetErrors,
    XlsSheetCells,
    clean_copy,
    clean_xls,
    clean_xlsx,
)
from app.ingestion.extent import check_xls
from app.ingestion.formats import check_ods, check_xlsx
from app.ingestion.tables import (
    FileFormatError,
    Parsed,
    ReadLimits,
    SourceFormat,
    too_many_columns,
    too_many_rows,
)


def read_excel(
    path: Path, fmt: SourceFormat, sheet: str | int | None, limits: ReadLimits
) -> Parsed:
    """Read one sheet. Runs in the reader's own process (`isolation.read_excel_isolated`): the
    extents are checked first, then calamine builds the sheet (from a copy without its error
    cells when it has some)."""
    clean = clean_copy(path, fmt)
    try:
        return _read_excel(path, fmt, sheet, limits, clean)
    finally:
        clean.unlink(missing_ok=True)


def _read_excel(
    path: Path, fmt: SourceFormat, sheet: str | int | None, limits: ReadLimits, clean: Path
) -> Parsed:
    xlsx_errors: dict[str, str] = {}
    xls_book = None
    if fmt == "xlsx":
        xlsx_errors = check_xlsx(path, limits)
    elif fmt == "ods":
        check_ods(path, limits)  # (no error-cell copy: error cells read as the reader reads them)
    else:
        xls_book = check_xls(path, limits)
    errors: SheetErrors | None = None
    try:
        reader = fastexcel.read_excel(str(path))
        names = list(reader.sheet_names)
        if not names:
            raise FileFormatError(f"The .{fmt} workbook has no sheets.")
        index = _sheet_index(names, sheet)
        if names[index] in xlsx_errors:
            errors = clean_xlsx(path, xlsx_errors[names[index]], clean)
        elif xls_book is not None and xls_book.sheets.get(names[index], _NO_CELLS).errors:
            errors = clean_xls(path, xls_book.stream, xls_book.sheets[names[index]], clean)
        if errors is not None:
            reader = fastexcel.read_excel(str(clean))
        loaded = reader.load_sheet(
            index, header_row=0, schema_sample_rows=None, n_rows=limits.max_rows + 1
        )
        if loaded.width == 0:  # (total_height is meaningless then: usize underflow)
            raise FileFormatError(f"The sheet '{names[index]}' is empty.")
        if loaded.width > limits.max_columns:
            raise too_many_columns(loaded.width, limits)
        if loaded.total_height > limits.max_rows:
            raise too_many_rows(limits)
        infos = loaded.available_columns()
        frame = loaded.to_polars()
        headers = [c.name for c in infos]
        if _names_altered(infos):
            raw = reader.load_sheet(index, header_row=None, n_rows=1, dtypes="string")
            first = raw.to_polars()
            headers = [
                "" if first.is_empty() or first[0, j] is None else str(first[0, j])
                for j in range(first.width)
            ][: frame.width]
    except (FileFormatError, MemoryError):
        raise
    except Exception as exc:
        raise _workbook_error(fmt, exc) from exc
    except BaseException as exc:  # a Rust panic surfaces as pyo3_runtime.PanicException
        if type(exc).__name__ != "PanicException":
            raise
        raise _workbook_error(fmt, exc) from exc
    frame = frame.rename({old: f"c{i}" for i, old in enumerate(frame.columns)})
    frame = frame.with_columns(_excel_column(frame[c]) for c in frame.columns)
    _refuse_nul(frame)
    notes = [
        f"Sheet '{names[index]}' used"
        + (f" (the workbook has {len(names)} sheets)." if len(names) > 1 else ".")
    ]
    rows = pl.int_range(2, frame.height + 2, eager=True, dtype=pl.Int64)
    return Parsed(
        headers,
        frame,
        rows,
        fmt,
        notes,
        sheet=names[index],
        cell_errors=_by_frame_column(errors, infos),
    )


def _by_frame_column(
    errors: SheetErrors | None, infos: list[fastexcel.ColumnInfo]
) -> dict[int, dict[str, int]]:
    """The error cells below the header, per column of the frame (`absolute_index`: the
    sheet's column; the frame starts at the first one with a value)."""
    if errors is None:
        return {}
    columns = errors.by_column()
    out: dict[int, dict[str, int]] = {}
    for i, info in enumerate(infos):
        found = columns.get(info.absolute_index)
        if found:
            out[i] = dict(found.most_common())
    return out


_NO_CELLS = XlsSheetCells()


def _refuse_nul(frame: pl.DataFrame) -> None:
    """Text cells with NUL characters cannot be stored (PostgreSQL refuses them)."""
    for i, (name, dtype) in enumerate(frame.schema.items()):
        if dtype == pl.String:
            hits = frame[name].str.contains("\x00", literal=True).fill_null(False).arg_true()
            if not hits.is_empty():
                row = int(hits[0]) + 2
                raise FileFormatError(
                    f"The cell in row {row}, column {i + 1} contains a NUL character.",
                    details=[{"row": row, "column": i + 1}],
                )


def _sheet_index(names: list[str], sheet: str | int | None) -> int:
    if sheet is None:
        return 0
    if isinstance(sheet, str) and sheet in names:
        return names.index(sheet)
    if isinstance(sheet, int):
        index = sheet
    else:
        number = ascii_int(sheet.strip(), max_digits=9)
        index = -1 if number is None else number
    if 0 <= index < len(names):
        return index
    listed = ", ".join(f"'{n}'" for n in names)
    raise FileFormatError(
        f"The workbook has no sheet {sheet!r}; its sheets are {listed} (by name or 0-based index).",
        details=[{"sheet": sheet, "sheets": names}],
    )


def _names_altered(infos: list[fastexcel.ColumnInfo]) -> bool:
    """fastexcel generates names for blank/non-text headers and renames duplicates
    (``name_1``); then the header row has to be read as text."""
    seen: set[str] = set()
    for info in infos:
        if info.column_name_from != "looked_up":
            return True
        match = re.fullmatch(r"(.*)_[0-9]+", info.name)
        if match and match.group(1) in seen:
            return True
        seen.add(info.name)
    return False


def _excel_column(s: pl.Series) -> pl.Series:
    """Null columns -> String; time-of-day cells (before 1900) and durations -> HH:MM:SS."""
    if s.dtype == pl.Null:
        return s.cast(pl.String)
    if isinstance(s.dtype, pl.Duration):
        secs = s.dt.total_seconds()
        return _clock(secs // 3600, (secs % 3600) // 60, secs % 60).alias(s.name)
    early = isinstance(s.dtype, pl.Datetime) and s.null_count() < s.len()
    if early and bool((s.dt.year() < 1900).fill_null(True).all()):
        return _clock(s.dt.hour(), s.dt.minute(), s.dt.second()).alias(s.name)
    return s


def _clock(h: pl.Series, m: pl.Series, s: pl.Series) -> pl.Series:
    def two(x: pl.Series) -> pl.Series:
        return x.cast(pl.String).str.pad_start(2, "0")

    return (
        pl.DataFrame({"h": two(h), "m": two(m), "s": two(s)})
        .select(pl.concat_str("h", pl.lit(":"), "m", pl.lit(":"), "s"))
        .to_series()
    )


def _workbook_error(fmt: SourceFormat, exc: BaseException) -> FileFormatError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return FileFormatError(
        f"The .{fmt} workbook could not be read (damaged, truncated or password-protected?): "
        f"{first}"
    )
