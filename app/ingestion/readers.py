"""Uploaded file -> ``RawTable``: one column per header cell, nothing typed yet (CSV) or the
workbook's own cell types (Excel).

Format
    Decided by extension *and* content: ``.csv`` must be text, ``.xlsx`` a zip holding
    ``xl/workbook.xml``, ``.xls`` an OLE2 compound file. Anything else is a ``FileFormatError``
    naming the accepted types and what the content looked like.
CSV encoding
    UTF-8 (a byte order mark is dropped); UTF-16 LE/BE with a byte order mark; otherwise, when
    the bytes are not UTF-8 and hold no valid multi-byte UTF-8 sequence, Windows-1252 (bytes it
    leaves undefined read as Latin-1). Mostly-UTF-8 files with a bad byte, and NUL bytes, are
    errors. Transcoding streams in 4 MiB chunks to a temporary UTF-8 file for Polars.
CSV layout
    The delimiter (``,`` ``;`` tab ``|``) is the one that splits the first 50 records
    (quote-aware) into the same number (>1) of fields; none -> one column. Leading blank lines
    are skipped; the first record is the header. Blank rows are skipped (and counted in the row
    numbers); short rows are padded with empty cells; a row with more fields than the header is
    an error.
Excel
    Read with fastexcel (calamine), types inferred from *all* rows: numbers -> Float64 (Int64
    for .xls integers), booleans -> Boolean, dates -> Datetime, error cells (``#N/A``) -> null;
    a column mixing types comes out as String (numbers as their shortest text, dates as
    ``2020-01-01 00:00:00``). Time-of-day cells become ``HH:MM:SS`` text. Rows count from the
    first non-empty row of the sheet (fastexcel does not expose the sheet's origin).
Labels
    Trimmed header cells; a blank one becomes ``Column N`` (N = 1-based position); duplicates
    (case-insensitive) get `` (2)``, `` (3)``; generated names never take a real header's name.
    A column with a blank header and no values at all (a trailing delimiter) is dropped.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import fastexcel
import polars as pl

__all__ = ["FileFormatError", "FileLimitError", "RawTable", "ReadLimits", "read_table"]

ACCEPTED = ".csv, .xlsx or .xls"
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
MAX_UNCOMPRESSED = 1 << 30
MAX_RATIO = 200
RATIO_MIN_BYTES = 4 << 20
MAX_LINE_BYTES = 32 << 20
SourceFormat = Literal["csv", "xlsx", "xls"]


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


@dataclass
class RawTable:
    labels: list[str]
    headers: list[str]
    frame: pl.DataFrame
    row_numbers: pl.Series
    source_format: SourceFormat
    notes: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


@dataclass
class _Parsed:
    """A format reader's result before the common rules (blank rows, labels, caps)."""

    headers: list[str]
    frame: pl.DataFrame
    row_numbers: pl.Series
    source_format: SourceFormat
    notes: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


def read_table(
    path: Path, filename: str, *, sheet: str | int | None = None, limits: ReadLimits = ReadLimits()
) -> RawTable:
    """Read an uploaded CSV/Excel file (see the module docstring for the rules)."""
    fmt = detect_format(path, filename)
    if fmt == "csv":
        return _finish(_read_csv(path, limits), limits)
    return _finish(_read_excel(path, fmt, sheet, limits), limits)


# ----------------------------------------------------------------------------- format


_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "an executable program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
)


def detect_format(path: Path, filename: str) -> SourceFormat:
    ext = Path(filename).suffix.lower()
    with open(path, "rb") as f:
        head = f.read(8192)
    if ext not in (".csv", ".xlsx", ".xls"):
        shown = f"'{ext}'" if ext else "no extension"
        raise _unsupported(filename, path, head, f"the file type ({shown}) is not supported")
    if ext == ".xlsx":
        names = _zip_names(path) if head.startswith(b"PK") else []
        if names is None:
            raise FileFormatError(f"'{filename}' is a damaged or truncated .xlsx file.")
        if "xl/workbook.xml" in names:
            _check_zip_bomb(path)
            return "xlsx"
        raise _unsupported(filename, path, head, "it is not an .xlsx workbook")
    if ext == ".xls":
        if head.startswith(OLE2_MAGIC):
            return "xls"
        raise _unsupported(filename, path, head, "it is not a legacy .xls workbook")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", OLE2_MAGIC)) or _binary_signature(head):
        raise _unsupported(filename, path, head, "it is not a text file")
    return "csv"


def _binary_signature(head: bytes) -> str | None:
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if head.startswith(b"MZ") and b"\x00" in head:
        return "a Windows executable"
    return None


def _describe(path: Path, head: bytes) -> str:
    if not head:
        return "an empty file"
    if head.startswith(OLE2_MAGIC):
        return "a legacy Office file (OLE2: .xls, .doc or .ppt)"
    if head.startswith(b"PK"):
        names = _zip_names(path)
        if names is None:
            return "a damaged ZIP archive"
        if "xl/workbook.xml" in names:
            return "an Excel .xlsx workbook"
        if "mimetype" in names and "content.xml" in names:
            return "an OpenDocument file (.ods/.odt)"
        if "word/document.xml" in names:
            return "a Word .docx document"
        return "a ZIP archive"
    signature = _binary_signature(head)
    if signature:
        return signature
    if b"\x00" in head:
        return "binary data"
    return "text"


def _unsupported(filename: str, path: Path, head: bytes, why: str) -> FileFormatError:
    what = _describe(path, head)
    return FileFormatError(
        f"Unsupported file '{filename}': {why}. Upload a {ACCEPTED} file; "
        f"the content looks like {what}.",
        details=[{"accepted": ACCEPTED, "content": what}],
    )


def _zip_names(path: Path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _check_zip_bomb(path: Path) -> None:
    """Refuse archives that would inflate beyond 1 GiB or members compressed > 200x: first by
    the sizes the archive declares, then by inflating every member, which must come to exactly
    its declared size (see `_inflated_size`)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    _check_sizes(infos)
    total = 0
    with open(path, "rb") as f:
        for info in infos:
            size = _inflated_size(f, info, MAX_UNCOMPRESSED - total)
            if size != info.file_size:
                raise FileFormatError(
                    f"The workbook part '{info.filename}' inflates to {size:,} bytes but the "
                    f"archive says {info.file_size:,}; refusing an inconsistent (possibly "
                    "crafted) .xlsx file.",
                    details=[{"member": info.filename, "declared": info.file_size}],
                )
            total += size


def _inflated_size(f: io.BufferedReader, info: zipfile.ZipInfo, cap: int) -> int:
    """The size a member really inflates to: its deflate stream (which ends itself) inflated to
    the end, in bounded steps, stopping past `cap`. The sizes in the central directory are only
    claims: the local header may say otherwise, and calamine inflates until the stream ends, so a
    small claim could hide gigabytes."""
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise FileFormatError("The .xlsx file is damaged (a local zip header is missing).")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    f.seek(info.header_offset + 30 + name_len + extra_len)
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size  # stored: never more than the file itself
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise FileFormatError(
            f"The workbook part '{info.filename}' uses zip compression method "
            f"{info.compress_type}; .xlsx files use deflate."
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = 0
    try:
        while not inflater.eof:
            pending = f.read(1 << 20)
            if not pending:
                raise FileFormatError(f"The workbook part '{info.filename}' is truncated.")
            while pending and not inflater.eof:
                size += len(inflater.decompress(pending, 16 << 20))
                pending = inflater.unconsumed_tail
                if size > cap:
                    raise FileLimitError(
                        f"The workbook expands to more than {MAX_UNCOMPRESSED >> 20:,} MiB (its "
                        f"part '{info.filename}' alone to more than {size >> 20:,} MiB); the "
                        f"limit is {MAX_UNCOMPRESSED >> 20:,} MiB.",
                        details=[{"member": info.filename, "limit": MAX_UNCOMPRESSED}],
                    )
    except zlib.error as exc:
        raise FileFormatError(f"The workbook part '{info.filename}' is damaged: {exc}.") from None
    return size


def _check_sizes(infos: list[zipfile.ZipInfo], *, total: int | None = None) -> None:
    if total is None:
        total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise FileLimitError(
            f"The workbook would expand to {total / (1 << 20):,.0f} MiB; the limit is "
            f"{MAX_UNCOMPRESSED >> 20:,} MiB.",
            details=[{"uncompressed_bytes": total, "limit": MAX_UNCOMPRESSED}],
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and ratio > MAX_RATIO:
            raise FileLimitError(
                f"The workbook part '{info.filename}' is compressed {ratio:,.0f} times "
                f"(limit {MAX_RATIO}); refusing a possible decompression bomb.",
                details=[{"member": info.filename, "ratio": round(ratio), "limit": MAX_RATIO}],
            )


# ----------------------------------------------------------------------------- Excel


def _read_excel(
    path: Path, fmt: SourceFormat, sheet: str | int | None, limits: ReadLimits
) -> _Parsed:
    try:
        reader = fastexcel.read_excel(str(path))
        names = list(reader.sheet_names)
        index = _sheet_index(names, sheet)
        loaded = reader.load_sheet(
            index, header_row=0, schema_sample_rows=None, n_rows=limits.max_rows + 1
        )
        if loaded.width == 0:  # (total_height is meaningless then: usize underflow)
            raise FileFormatError(f"The sheet '{names[index]}' is empty.")
        if loaded.width > limits.max_columns:
            raise _too_many_columns(loaded.width, limits)
        if loaded.total_height > limits.max_rows:
            raise _too_many_rows(limits)
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
    except FileFormatError:
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
    return _Parsed(headers, frame, rows, fmt, notes, sheet=names[index])


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
    index = sheet if isinstance(sheet, int) else int(sheet) if sheet.strip().isdigit() else -1
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
        match = re.fullmatch(r"(.*)_\d+", info.name)
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


def _too_many_columns(n: int, limits: ReadLimits) -> FileLimitError:
    return FileLimitError(
        f"The file has {n:,} columns; the limit is {limits.max_columns:,}.",
        details=[{"columns": n, "limit": limits.max_columns}],
    )


def _too_many_rows(limits: ReadLimits) -> FileLimitError:
    return FileLimitError(
        f"The file has more than {limits.max_rows:,} data rows (blank rows included); "
        f"the limit is {limits.max_rows:,}.",
        details=[{"limit": limits.max_rows}],
    )


# ----------------------------------------------------------------------------- common


def _finish(parsed: _Parsed, limits: ReadLimits) -> RawTable:
    """Blank rows, empty unnamed columns, caps and labels: the same for CSV and Excel."""
    frame, rows, headers, notes = parsed.frame, parsed.row_numbers, parsed.headers, parsed.notes
    headers = headers + [""] * (frame.width - len(headers))
    if frame.width > limits.max_columns:
        raise _too_many_columns(frame.width, limits)
    if frame.height > limits.max_rows:
        raise _too_many_rows(limits)
    blank = _blank_rows(frame)
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
    return RawTable(
        labels=labels,
        headers=headers,
        frame=frame,
        row_numbers=rows.alias("row"),
        source_format=parsed.source_format,
        notes=[*notes, *label_notes],
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        sheet=parsed.sheet,
    )


def _blank_cell(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return (col.str.strip_chars().str.len_bytes() == 0).fill_null(True)
    return col.is_null()


def _blank_rows(frame: pl.DataFrame) -> pl.Series:
    if frame.width == 0 or frame.height == 0:
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    first = frame.columns[0]
    candidates = frame.select(_blank_cell(first, frame.schema[first])).to_series()
    if not candidates.any():
        return candidates
    exprs = [_blank_cell(c, t) for c, t in frame.schema.items()]
    return frame.select(pl.all_horizontal(exprs)).to_series()


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


# ----------------------------------------------------------------------------- CSV

CHUNK_BYTES = 4 << 20
SNIFF_BYTES = 1 << 20
SAMPLE_RECORDS = 50
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_NUL = "\x00"  # separator for one-column files and line scans: NUL never reaches Polars
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (byte order mark removed)",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1252": "Windows-1252 (the file is not UTF-8)",
}


def _latin1_fallback(err: UnicodeError) -> tuple[str, int]:
    """Bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as Latin-1."""
    if not isinstance(err, UnicodeDecodeError):  # pragma: no cover - decode only
        raise err
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error("ingestion-latin-1", _latin1_fallback)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


class _TextSource:
    """The upload as UTF-8 for Polars: the file itself, or a transcoded temporary copy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp: Path | None = None
        self.encoding = "utf-8"

    @property
    def file(self) -> Path:
        return self.temp or self.path

    def close(self) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)
            self.temp = None

    def prepare(self) -> None:
        with open(self.path, "rb") as f:
            head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"
            self._transcode("utf-16", "strict", "UTF-16")
            return
        offset = 0
        lines = _LineGuard()
        for chunk in _chunks(self.path):
            at = chunk.find(b"\x00")
            if at >= 0:
                raise _nul_error(offset + at)
            lines.feed(chunk)
            offset += len(chunk)
        self.encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"

    def not_utf8(self) -> None:
        """The upload is not valid UTF-8: Windows-1252 if it has no valid multi-byte UTF-8
        sequence at all, otherwise an error naming the first bad byte."""
        if self.temp is not None:  # pragma: no cover - transcoded files are valid UTF-8
            raise FileFormatError("The file could not be decoded as text.")
        bad = _first_invalid_utf8(self.path)
        if bad is not None and _has_utf8_multibyte(self.path):
            offset, line, byte = bad
            raise FileFormatError(
                f"The file is mostly UTF-8 but has an invalid byte 0x{byte:02X} at byte offset "
                f"{offset:,} (line {line:,}); save it as UTF-8 and upload it again.",
                details=[{"offset": offset, "line": line}],
            )
        self.encoding = "cp1252"
        self._transcode("cp1252", "ingestion-latin-1", "Windows-1252")

    def _transcode(self, codec: str, errors: str, label: str) -> None:
        decoder = codecs.getincrementaldecoder(codec)(errors)
        fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".csv")
        self.temp = Path(name)
        offset = 0
        lines = _LineGuard()
        with os.fdopen(fd, "wb") as out:
            for chunk in itertools.chain(_chunks(self.path), [b""]):
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    raise FileFormatError(
                        f"The file is not valid {label} text (near byte offset "
                        f"{offset + max(exc.start, 0):,}).",
                        details=[{"offset": offset + max(exc.start, 0)}],
                    ) from exc
                if _NUL in text:
                    raise _nul_error(offset + text.index(_NUL) * (2 if label == "UTF-16" else 1))
                encoded = text.encode("utf-8")
                lines.feed(encoded)
                out.write(encoded)
                offset += len(chunk)

    def sample(self) -> tuple[str, bool]:
        """The first 1 MiB as text, and whether that is the whole file."""
        with open(self.file, "rb") as f:
            data = f.read(SNIFF_BYTES + 1)
        whole = len(data) <= SNIFF_BYTES
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        return decoder.decode(data[:SNIFF_BYTES], final=whole).removeprefix("\ufeff"), whole


class _LineGuard:
    """Refuses a line longer than MAX_LINE_BYTES while the file streams past (in UTF-8, before
    Polars sees it): Polars and the checks after it hold a line several times over, so one 200 MB
    line took ~2 GB. Only newlines at chunk edges are looked for (C-speed find/rfind), so the
    cost does not grow with the number of lines; a line inside one chunk is shorter than the
    chunk, which is shorter than the limit."""

    def __init__(self) -> None:
        self.offset = 0  # of the chunk being fed
        self.start = 0  # where the current line starts
        self.line = 1

    def feed(self, chunk: bytes) -> None:
        assert len(chunk) <= MAX_LINE_BYTES
        first = chunk.find(b"\n")
        end = self.offset + (first if first >= 0 else len(chunk))
        if end - self.start > MAX_LINE_BYTES:
            raise FileLimitError(
                f"Line {self.line:,} of the file is longer than {MAX_LINE_BYTES >> 20} MiB (the "
                f"limit for one line); refusing the file.",
                details=[{"line": self.line, "limit_bytes": MAX_LINE_BYTES}],
            )
        if first >= 0:
            self.line += chunk.count(b"\n")
            self.start = self.offset + chunk.rfind(b"\n") + 1
        self.offset += len(chunk)


def _nul_error(offset: int) -> FileFormatError:
    return FileFormatError(
        f"The file contains NUL bytes (binary content, or UTF-16 text without a byte order "
        f"mark) at byte offset {offset:,}; a .csv file must be text.",
        details=[{"offset": offset}],
    )


def _first_invalid_utf8(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, line, byte value) of the first invalid UTF-8 byte, if any."""
    base, line, carry = 0, 1, b""
    for chunk in itertools.chain(_chunks(path), [b""]):
        buf = carry + chunk
        try:
            buf.decode("utf-8")
            used, carry = len(buf), b""
        except UnicodeDecodeError as exc:
            if chunk and exc.reason == "unexpected end of data":
                used, carry = exc.start, buf[exc.start :]
            else:
                return base + exc.start, line + buf.count(b"\n", 0, exc.start), buf[exc.start]
        line += buf.count(b"\n", 0, used)
        base += used
    return None


def _has_utf8_multibyte(path: Path) -> bool:
    tail = b""
    for chunk in _chunks(path):
        if _UTF8_MULTIBYTE.search(tail + chunk):
            return True
        tail = chunk[-3:]
    return False


@dataclass
class _Layout:
    skip: int  # blank lines before the header
    separator: str
    width: int


def _sniff(text: str, whole: bool, limits: ReadLimits) -> _Layout:
    """Leading blank lines, delimiter and header width from the first 1 MiB of text."""
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
    best: tuple[tuple[bool, float, int], str, int] | None = None
    for delimiter in DELIMITERS:
        counts = _sample_counts(region, delimiter, truncated=not whole)
        if not counts or counts[0] < 2:
            continue
        consistent = sum(c == counts[0] for c in counts) / len(counts)
        key = (consistent == 1.0, consistent, counts[0])
        if best is None or key > best[0]:
            best = (key, delimiter, counts[0])
    separator, width = (best[1], best[2]) if best else (_NUL, 1)
    if width > limits.max_columns:
        raise _too_many_columns(width, limits)
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


def _read_csv(path: Path, limits: ReadLimits) -> _Parsed:
    if path.stat().st_size == 0:
        raise FileFormatError("The file is empty.")
    source = _TextSource(path)
    try:
        source.prepare()
        try:
            text, whole = source.sample()
        except UnicodeDecodeError:
            source.not_utf8()
            text, whole = source.sample()
        if not text.strip() and whole:
            raise FileFormatError("The file is empty.")
        layout = _sniff(text, whole, limits)
        try:
            frame = _polars_read(source.file, layout, limits)
        except _NotUtf8:
            source.not_utf8()
            layout = _sniff(*source.sample(), limits)
            frame = _polars_read(source.file, layout, limits)
        if frame.height - 1 > limits.max_rows:
            raise _too_many_rows(limits)
        return _csv_parsed(source, layout, frame)
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
    offset = re.search(r"offset in the file is (\d+) bytes", message)
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
        file, has_header=False, separator=_NUL, quote_char=None, schema={"l": pl.String}
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


def _csv_parsed(source: _TextSource, layout: _Layout, frame: pl.DataFrame) -> _Parsed:
    headers = ["" if h is None else str(h) for h in frame.row(0)]
    headers[0] = headers[0].removeprefix("\ufeff")
    data = frame.slice(1)
    first_row = layout.skip + 2
    rows = pl.int_range(first_row, first_row + data.height, eager=True, dtype=pl.Int64)
    delimiter = None if layout.separator == _NUL else layout.separator
    shown = _DELIMITER_NAMES[delimiter] if delimiter else "none (one column)"
    shown += f" ('{delimiter}')" if delimiter and delimiter != "\t" else ""
    notes = [f"Encoding: {_ENCODING_NAMES[source.encoding]}.", f"Delimiter: {shown}."]
    if layout.skip:
        notes.append(
            f"Skipped {layout.skip} blank line{'s' if layout.skip > 1 else ''} before the header."
        )
    short = _short_rows(source.file, layout, data, rows)
    if short:
        notes.append(short)
    return _Parsed(headers, data, rows, "csv", notes, encoding=source.encoding, delimiter=delimiter)


def _short_rows(file: Path, layout: _Layout, data: pl.DataFrame, rows: pl.Series) -> str | None:
    """Note on rows with fewer fields than the header (Polars pads them with nulls, exactly
    like unquoted empty trailing cells, so only rows ending in a null cell are counted)."""
    if layout.width < 2 or data.is_empty():
        return None
    candidate = data[data.columns[-1]].is_null() & ~_blank_rows(data)
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
