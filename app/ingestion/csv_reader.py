"""CSV files: layout sniffing (blank lines, delimiter, header width) and parsing with Polars
into a `Parsed` table (the text itself comes from `csv_text.TextSource`). A `.tsv` file is read
the same way, its delimiter always a tab."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from app.ingestion.csv_text import NUL, SNIFF_BYTES, TextSource, line_endings_note
from app.ingestion.tables import (
    FileFormatError,
    FileLimitError,
    Parsed,
    ReadLimits,
    blank_rows,
    too_many_columns,
    too_many_rows,
)

SAMPLE_RECORDS = 50
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (byte order mark removed)",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1252": "Windows-1252 (the file is not UTF-8)",
}


@dataclass
class _Layout:
    skip: int  # blank lines before the header
    separator: str
    width: int


def _sniff(text: str, whole: bool, limits: ReadLimits, delimiter: str | None = None) -> _Layout:
    """Leading blank lines, delimiter and header width from the first 1 MiB of text; with
    `delimiter` (a .tsv file: tab), only the header width."""
    pos, skip = 0, 0
    while True:
        nl = text.find("\n", pos)
        if text[pos : nl if nl >= 0 else len(text)].strip():
            break
        if nl < 0:
            if whole:
                raise FileFormatError("The file is empty.")
            raise FileLimitError("The first 1 MiB of the file holds no header row.")
        skip, pos = skip + 1, nl + 1
    if _record_end(text, pos) is None and not whole:
        raise FileLimitError(
            "The header row is longer than 1 MiB (or has an unclosed quote); refusing the file.",
            details=[{"limit_bytes": SNIFF_BYTES}],
        )
    region = text[pos:] if whole else text[pos : text.rfind("\n") + 1]
    if delimiter is not None:  # given: one column when the header has none
        counts = _sample_counts(region, delimiter, truncated=not whole)
        separator, width = delimiter, max(counts[:1] or [1])
        if width > limits.max_columns:
            raise too_many_columns(width, limits)
        return _Layout(skip, separator, width)
    best: tuple[tuple[bool, float, int], str, int] | None = None
    for candidate in DELIMITERS:
        counts = _sample_counts(region, candidate, truncated=not whole)
        if not counts or counts[0] < 2:
            continue
        consistent = sum(c == counts[0] for c in counts) / len(counts)
        key = (consistent == 1.0, consistent, counts[0])
        if best is None or key > best[0]:
            best = (key, candidate, counts[0])
    separator, width = (best[1], best[2]) if best else (NUL, 1)
    if width > limits.max_columns:
        raise too_many_columns(width, limits)
    return _Layout(skip, separator, width)


def _record_end(text: str, start: int) -> int | None:
    """Index of the newline that ends the record starting at ``start`` (quote-aware)."""
    quotes, pos = 0, start
    while (nl := text.find("\n", pos)) >= 0:
        quotes += text.count('"', pos, nl)
        if quotes % 2 == 0:
            return nl
        pos = nl + 1
    return None


def _sample_counts(region: str, delimiter: str, *, truncated: bool) -> list[int]:
    """Field counts of the first non-blank records (quote-aware, Python's csv module)."""
    reader = csv.reader(io.StringIO(region), delimiter=delimiter, quotechar='"', strict=False)
    counts: list[int] = []
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                counts.append(len(record))
            if len(counts) > SAMPLE_RECORDS:
                return counts[:SAMPLE_RECORDS]
    except csv.Error:
        return counts
    return counts[:-1] if truncated and len(counts) > 1 else counts


def read_csv(path: Path, limits: ReadLimits, *, tsv: bool = False) -> Parsed:
    """A CSV file, or with `tsv` a tab-separated one (the delimiter is not sniffed then)."""
    delimiter = "\t" if tsv else None
    if path.stat().st_size == 0:
        raise FileFormatError("The file is empty.")
    source = TextSource(path)
    try:
        source.prepare()
        try:
            text, whole = source.sample()
        except UnicodeDecodeError:
            source.not_utf8()
            text, whole = source.sample()
        if not text.strip() and whole:
            raise FileFormatError("The file is empty.")
        layout = _sniff(text, whole, limits, delimiter)
        try:
            frame = _polars_read(source.file, layout, limits)
        except _NotUtf8:
            source.not_utf8()
            layout = _sniff(*source.sample(), limits, delimiter)
            frame = _polars_read(source.file, layout, limits)
        if frame.height - 1 > limits.max_rows:
            raise too_many_rows(limits)
        return _csv_parsed(source, layout, frame, "tsv" if tsv else "csv")
    finally:
        source.close()


class _NotUtf8(Exception):
    pass


def _polars_read(file: Path, layout: _Layout, limits: ReadLimits) -> pl.DataFrame:
    try:
        return pl.read_csv(
            file,
            has_header=False,
            separator=layout.separator,
            quote_char='"',
            schema={f"c{i}": pl.String for i in range(layout.width)},
            skip_lines=layout.skip,
            n_rows=limits.max_rows + 2,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        message = str(exc)
        if "invalid utf-8" in message:
            raise _NotUtf8 from exc
        if "more fields than defined" in message:
            raise _more_fields_error(file, layout) from exc
        raise FileFormatError(
            f"The CSV file could not be parsed: {_polars_reason(message)}"
        ) from exc


def _polars_reason(message: str) -> str:
    found = re.search(r"Original error: ```\s*(.*?)\s*```", message, re.S)
    reason = " ".join((found.group(1) if found else message.splitlines()[0]).split())[:300]
    if "malformed" in reason or "properly escaped" in reason:
        reason = 'a quote (") is unbalanced or appears inside an unquoted field'
    offset = re.search(r"offset in the file is ([0-9]+) bytes", message)
    return reason + (f" (near byte offset {int(offset.group(1)):,})" if offset else "")


def _more_fields_error(file: Path, layout: _Layout) -> FileFormatError:
    counts = _field_counts(file, layout.separator)
    over = (counts > layout.width).arg_true()
    if over.is_empty():
        return FileFormatError(f"A row has more fields than the header ({layout.width}).")
    row = int(over[0]) + 1
    over = counts.gather(over)
    return FileFormatError(
        f"Row {row} has {int(over[0])} fields but the header has {layout.width}.",
        details=[{"row": row, "fields": int(over[0]), "header_fields": layout.width}],
    )


def _lines(file: Path) -> pl.LazyFrame:
    """The raw lines of the file (NUL never occurs in it, so nothing is split)."""
    return pl.scan_csv(
        file, has_header=False, separator=NUL, quote_char=None, schema={"l": pl.String}
    )


def _fields_outside_quotes(text: pl.Expr, separator: str) -> pl.Expr:
    quoted = text.str.contains('"', literal=True)
    unquoted = pl.when(quoted).then(text.str.replace_all('"[^"]*"', "")).otherwise(text)
    return unquoted.str.count_matches(separator, literal=True).cast(pl.Int64) + 1


def _field_counts(file: Path, separator: str) -> pl.Series:
    """Fields per record (index = row number - 1), counted outside quotes from the raw lines;
    records spanning lines (quoted line breaks) are found by quote parity, as Polars does."""
    lines = _lines(file)
    line = pl.col("l").fill_null("")
    quotes = lines.select(line.str.count_matches('"', literal=True).cast(pl.Int64))
    q = quotes.collect(engine="streaming").to_series()
    inside = (q.cum_sum() - q) % 2 == 1
    if not inside.any():
        counts = lines.select(_fields_outside_quotes(line, separator))
        return counts.collect(engine="streaming").to_series()
    text = lines.collect().with_columns(rec=(~inside).cum_sum() - 1)
    joined = text.group_by("rec", maintain_order=True).agg(line.str.join("\n"))
    return joined.select(_fields_outside_quotes(pl.col("l"), separator)).to_series()


def _fields_of(file: Path, separator: str, wanted: pl.Series, records: int) -> pl.Series:
    """Field counts of the records at the (sorted) indices ``wanted``.

    When every record is one line (the usual case) only those lines are examined. Records
    never outnumber lines, so a line at index ``records`` exists exactly when some record
    spans lines (a quoted line break); then every record is counted by quote parity.
    """
    probe = pl.Series([records], dtype=pl.UInt32)
    index = pl.concat([wanted.cast(pl.UInt32), probe]).implode()
    fields = _fields_outside_quotes(pl.col("l").fill_null(""), separator).alias("n")
    picked = _lines(file).with_row_index("i").filter(pl.col("i").is_in(index))
    found = picked.select("i", fields).collect(engine="streaming")
    if found.height > wanted.len():
        return _field_counts(file, separator).gather(wanted)
    return found["n"]


def _csv_parsed(
    source: TextSource, layout: _Layout, frame: pl.DataFrame, fmt: Literal["csv", "tsv"]
) -> Parsed:
    headers = ["" if h is None else str(h) for h in frame.row(0)]
    headers[0] = headers[0].removeprefix("\ufeff")
    data = frame.slice(1)
    first_row = layout.skip + 2
    rows = pl.int_range(first_row, first_row + data.height, eager=True, dtype=pl.Int64)
    delimiter = None if layout.separator == NUL else layout.separator
    shown = _DELIMITER_NAMES[delimiter] if delimiter else "none (one column)"
    shown += f" ('{delimiter}')" if delimiter and delimiter != "\t" else ""
    shown += " (a .tsv file)" if fmt == "tsv" else ""
    notes = [f"Encoding: {_ENCODING_NAMES[source.encoding]}."]
    endings = line_endings_note(source.line_endings)
    if endings:
        notes.append(endings)
    notes.append(f"Delimiter: {shown}.")
    if layout.skip:
        notes.append(
            f"Skipped {layout.skip} blank line{'s' if layout.skip > 1 else ''} before the header."
        )
    short = _short_rows(source.file, layout, data, rows)
    if short:
        notes.append(short)
    return Parsed(headers, data, rows, fmt, notes, encoding=source.encoding, delimiter=delimiter)


def _short_rows(file: Path, layout: _Layout, data: pl.DataFrame, rows: pl.Series) -> str | None:
    """Note on rows with fewer fields than the header (Polars pads them with nulls, exactly
    like unquoted empty trailing cells, so only rows ending in a null cell are counted)."""
    if layout.width < 2 or data.is_empty():
        return None
    candidate = data[data.columns[-1]].is_null() & ~blank_rows(data)
    if not candidate.any():
        return None
    wanted = rows.filter(candidate) - 1
    fields = _fields_of(file, layout.separator, wanted, int(rows[-1]))
    short = wanted.filter(fields < layout.width)
    if short.is_empty():
        return None
    n = short.len()
    return (
        f"{n:,} row{'s' if n > 1 else ''} had fewer fields than the header (first: row "
        f"{int(short[0]) + 1}); the missing cells are empty."
    )
