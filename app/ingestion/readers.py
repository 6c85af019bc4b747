"""Uploaded file -> ``RawTable``: one column per header cell, nothing typed yet (CSV, TSV, JSON)
or the workbook's own cell types (Excel, OpenDocument).

Format
    Decided by extension *and* content: ``.csv``, ``.tsv``, ``.json``, ``.ndjson``/``.jsonl``
    must be text, ``.xlsx`` a zip holding ``xl/workbook.xml``, ``.ods`` a zip holding
    ``content.xml`` and ``META-INF/manifest.xml`` (and a spreadsheet's ``mimetype``), ``.xls``
    an OLE2 compound file. Anything else is a ``FileFormatError`` naming the accepted types and
    what the content looked like.
CSV encoding
    UTF-8 (a byte order mark is dropped); UTF-16 LE/BE with a byte order mark; otherwise, when
    the bytes are not UTF-8 and hold no valid multi-byte UTF-8 sequence, Windows-1252 (bytes it
    leaves undefined read as Latin-1). Mostly-UTF-8 files with a bad byte, and NUL bytes, are
    errors. Transcoding streams in 4 MiB chunks to a temporary UTF-8 file for Polars.
CSV line endings
    LF, CRLF and lone CR (classic Mac) all end records, mixed too; quoted fields keep theirs.
    Only a file with a lone CR outside quotes is rewritten (LF for those CRs), streaming and
    quote-aware (``csv_text``). The notes say which kinds end records.
CSV layout
    The delimiter (``,`` ``;`` tab ``|``) is the one that splits the first 50 records
    (quote-aware) into the same number (>1) of fields; none -> one column. Leading blank lines
    are skipped; the first record is the header. Blank rows are skipped (and counted in the row
    numbers); short rows are padded with empty cells; a row with more fields than the header is
    an error.
    A ``.tsv`` file is read the same way, its delimiter a tab whatever its records look like.
Excel
    Read with fastexcel (calamine), types inferred from *all* rows: numbers -> Float64 (Int64
    for .xls integers), booleans -> Boolean, dates -> Datetime; a column mixing types comes out
    as String (numbers as their shortest text, dates as ``2020-01-01 00:00:00``). Time-of-day
    cells become ``HH:MM:SS`` text. Error cells (``#DIV/0!``, ``#N/A``, ``#NAME?``,
    ``#SPILL!``, ...; constants or formula results) are empty cells that do not count against
    the column's type: the sheet is read from a copy without them (``cell_errors``), and the
    notes count them per column. Rows count from the first non-empty row of the sheet
    (fastexcel does not expose the sheet's origin).
OpenDocument (.ods)
    Read like Excel (fastexcel, in the same isolated process), after the same zip-bomb checks;
    content.xml's repeated rows and cells are counted against the limits first
    (``ods_extent``). Date and time cells become dates and ``HH:MM:SS`` text as in Excel.
JSON
    An array of objects (``.json``) or one object per line (``.ndjson``/``.jsonl``): the keys
    are the headers, every cell is text (numbers as written); see ``json_reader``.
Labels
    Trimmed header cells; a blank one becomes ``Column N`` (N = 1-based position); duplicates
    (case-insensitive) get `` (2)``, `` (3)``; generated names never take a real header's name.
    A column with a blank header and no values at all (a trailing delimiter) is dropped.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from app.ingestion.csv_reader import read_csv
from app.ingestion.formats import detect_format
from app.ingestion.isolation import read_excel_isolated
from app.ingestion.json_reader import read_json
from app.ingestion.tables import (
    FileFormatError,
    FileLimitError,
    Parsed,
    RawTable,
    ReadLimits,
    blank_rows,
    too_many_columns,
    too_many_rows,
)

__all__ = ["FileFormatError", "FileLimitError", "RawTable", "ReadLimits", "read_table"]


def read_table(
    path: Path,
    filename: str,
    *,
    sheet: str | int | None = None,
    # ReadLimits is frozen; ruff knows that only in the module that defines it
    limits: ReadLimits = ReadLimits(),  # noqa: B008
) -> RawTable:
    """Read an uploaded file (see the module docstring for the rules)."""
    fmt = detect_format(path, filename)
    if fmt in ("csv", "tsv"):
        return _finish(read_csv(path, limits, tsv=fmt == "tsv"), limits)
    if fmt in ("json", "ndjson"):
        return _finish(read_json(path, limits, lines=fmt == "ndjson"), limits)
    return _finish(read_excel_isolated(path, fmt, sheet, limits), limits)


# ----------------------------------------------------------------------------- common


def _finish(parsed: Parsed, limits: ReadLimits) -> RawTable:
    """Blank rows, empty unnamed columns, caps and labels: the same for CSV and Excel."""
    frame, rows, headers, notes = parsed.frame, parsed.row_numbers, parsed.headers, parsed.notes
    headers = headers + [""] * (frame.width - len(headers))
    if frame.width > limits.max_columns:
        raise too_many_columns(frame.width, limits)
    if frame.height > limits.max_rows:
        raise too_many_rows(limits)
    blank = blank_rows(frame)
    if blank.any():
        first = rows.filter(blank)[0]
        count = int(blank.sum())
        notes.append(f"Skipped {count:,} blank row{'s' if count > 1 else ''} (first: row {first}).")
        frame, rows = frame.filter(~blank), rows.filter(~blank)
    if frame.height == 0:
        raise FileFormatError("The file has a header row but no data rows.")
    keep = [
        i for i, c in enumerate(frame.columns) if headers[i].strip() or not _blank_column(frame[c])
    ]
    cell_errors = {
        new: parsed.cell_errors[old] for new, old in enumerate(keep) if old in parsed.cell_errors
    }
    if len(keep) < frame.width:
        dropped = frame.width - len(keep)
        notes.append(
            f"Ignored {dropped} empty column{'s' if dropped > 1 else ''} without a header."
        )
        frame = frame.select(frame.columns[i] for i in keep)
        headers = [headers[i] for i in keep]
    frame = frame.rename({c: f"c{i}" for i, c in enumerate(frame.columns)})
    labels, label_notes = make_labels(headers)
    _check_cell_lengths(frame, rows, labels, limits)
    error_notes = [_error_note(labels[i], found) for i, found in sorted(cell_errors.items())]
    return RawTable(
        labels=labels,
        headers=headers,
        frame=frame,
        row_numbers=rows.alias("row"),
        source_format=parsed.source_format,
        notes=[*notes, *label_notes, *error_notes],
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        sheet=parsed.sheet,
        cell_errors=cell_errors,
    )


def _error_note(label: str, found: dict[str, int]) -> str:
    """The note on a column's error cells, the most frequent error first: "Column 'Ratio':
    3 error cells (#DIV/0!, #NAME?) read as empty."."""
    n = sum(found.values())
    return (
        f"Column {label!r}: {n:,} error cell{'s' if n > 1 else ''} ({', '.join(found)}) "
        "read as empty."
    )


def _blank_column(s: pl.Series) -> bool:
    if s.dtype == pl.String:
        return bool((s.str.strip_chars().str.len_bytes() == 0).fill_null(True).all())
    return s.null_count() == s.len()


def _check_cell_lengths(
    frame: pl.DataFrame, rows: pl.Series, labels: list[str], limits: ReadLimits
) -> None:
    text = [(i, c) for i, (c, t) in enumerate(frame.schema.items()) if t == pl.String]
    if not text:
        return
    longest = frame.select(pl.col(c).str.len_bytes().max() for _, c in text).row(0)
    for (i, name), size in zip(text, longest, strict=True):
        if size is None or size <= limits.max_cell_chars:
            continue  # a cell has at least as many bytes as characters
        chars = frame[name].str.len_chars()
        over = chars > limits.max_cell_chars
        if over.any():
            row, length = int(rows.filter(over)[0]), int(chars.filter(over)[0])
            raise FileLimitError(
                f"The cell in row {row}, column '{labels[i]}' has {length:,} characters; "
                f"the limit is {limits.max_cell_chars:,}.",
                details=[{"row": row, "column": labels[i], "limit": limits.max_cell_chars}],
            )


def make_labels(headers: list[str]) -> tuple[list[str], list[str]]:
    """Field labels from header cells, and notes on every generated or renamed one."""
    base = [h.strip() or f"Column {i + 1}" for i, h in enumerate(headers)]
    generated = [not h.strip() for h in headers]
    reserved = {b.casefold() for b, g in zip(base, generated, strict=True) if not g}
    order = [i for i, g in enumerate(generated) if not g] + [
        i for i, g in enumerate(generated) if g
    ]
    labels = [""] * len(headers)
    used: set[str] = set()
    notes: list[tuple[int, str]] = []
    for i in order:
        name = base[i]
        label = name
        if name.casefold() in used or (generated[i] and name.casefold() in reserved):
            k = 2
            while f"{name} ({k})".casefold() in used | reserved:
                k += 1
            label = f"{name} ({k})"
        used.add(label.casefold())
        labels[i] = label
        if generated[i]:
            notes.append((i, f"Column {i + 1} has no header; named '{label}'."))
        elif label != name:
            notes.append((i, f"Column {i + 1}: duplicate header '{name}' renamed '{label}'."))
    return labels, [note for _, note in sorted(notes)]
