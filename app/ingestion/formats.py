"""Upload format detection by extension and content, the content type each format is stored
with, and the zip-bomb checks for .xlsx and .ods files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from app.ingestion.extent import XlsxSheetScanner, worksheet_parts
from app.ingestion.ods_extent import OdsContentScanner
from app.ingestion.tables import FileFormatError, FileLimitError, ReadLimits, SourceFormat

ACCEPTED = ".csv, .tsv, .xlsx, .xls, .ods, .json, .ndjson or .jsonl"
# extension -> the format read
EXTENSIONS: dict[str, SourceFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".xlsx": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
# extension (without its dot) -> the content type a reference file is stored and served with
CONTENT_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "jsonl": "application/x-ndjson",
}
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
MAX_UNCOMPRESSED = 1 << 30
MAX_RATIO = 200
RATIO_MIN_BYTES = 4 << 20

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
    fmt = EXTENSIONS.get(ext)
    if fmt is None:
        shown = f"'{ext}'" if ext else "no extension"
        raise _unsupported(filename, path, head, f"the file type ({shown}) is not supported")
    if ext == ".ods":
        return _check_ods_package(path, filename, head)
    if ext == ".xlsx":
        names = _zip_names(path) if head.startswith(b"PK") else []
        if names is None:
            raise FileFormatError(f"'{filename}' is a damaged or truncated .xlsx file.")
        if "xl/workbook.xml" in names:
            return "xlsx"  # inflated and measured by check_xlsx, in the reader's process
        raise _unsupported(filename, path, head, "it is not an .xlsx workbook")
    if ext == ".xls":
        if head.startswith(OLE2_MAGIC):
            return "xls"
        raise _unsupported(filename, path, head, "it is not a legacy .xls workbook")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", OLE2_MAGIC)) or _binary_signature(head):
        raise _unsupported(filename, path, head, "it is not a text file")
    return fmt  # csv, tsv, json, ndjson: text, read (and refused when it is not) by its reader


def _check_ods_package(path: Path, filename: str, head: bytes) -> SourceFormat:
    """An OpenDocument spreadsheet: a zip with content.xml and META-INF/manifest.xml (the
    reader needs both) whose `mimetype` member, when there is one, names a spreadsheet."""
    names = _zip_names(path) if head.startswith(b"PK") else []
    if names is None:
        raise FileFormatError(f"'{filename}' is a damaged or truncated .ods file.")
    if "content.xml" not in names:
        raise _unsupported(filename, path, head, "it is not an .ods spreadsheet")
    if "META-INF/manifest.xml" not in names:
        why = "it is not a complete .ods spreadsheet (META-INF/manifest.xml is missing)"
        raise _unsupported(filename, path, head, why)
    if "mimetype" in names:
        try:
            with zipfile.ZipFile(path) as zf, zf.open("mimetype") as member:
                mimetype = member.read(200).strip()
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, zlib.error):
            raise FileFormatError(f"'{filename}' is a damaged or truncated .ods file.") from None
        if mimetype != ODS_MIMETYPE:
            shown = mimetype.decode("ascii", "replace")[:100]
            raise _unsupported(
                filename, path, head, f"it is not an .ods spreadsheet (its mimetype is {shown!r})"
            )
    return "ods"  # inflated and measured by check_ods, in the reader's process


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


def check_ods(path: Path, limits: ReadLimits) -> None:
    """The zip-bomb checks of `check_xlsx` for an .ods file; content.xml, which holds every
    sheet, is measured as it inflates (`ods_extent.OdsContentScanner`: the reader builds every
    sheet when it opens the file, spreading the repeated rows and cells)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    _check_sizes(infos)
    total = 0
    with open(path, "rb") as f:
        for info in infos:
            scanner = OdsContentScanner(limits) if info.filename == "content.xml" else None
            size = _inflated_size(
                f, info, MAX_UNCOMPRESSED - total, scanner.feed if scanner else None
            )
            _check_inflated(info, size)  # (first: a part cut short is not well-formed XML)
            if scanner is not None:
                scanner.finish()
            total += size


def check_xlsx(path: Path, limits: ReadLimits) -> dict[str, str]:
    """Refuse archives that would inflate beyond 1 GiB or members compressed > 200x: first by
    the sizes the archive declares, then by inflating every member, which must come to exactly
    its declared size (see `_inflated_size`). Worksheet parts are measured as they inflate
    (`extent.XlsxSheetScanner`): a sheet reaching past the limits is refused before any reader
    allocates its range. Returns the sheets that have error cells: name -> worksheet part."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        _check_sizes(infos)
        names = [i.filename for i in infos]
        sheets = worksheet_parts(lambda n: _small_member(zf, n), names)
    total = 0
    with_errors: dict[str, str] = {}
    with open(path, "rb") as f:
        for info in infos:
            sheet = sheets.get(info.filename)
            scanner = XlsxSheetScanner(sheet, limits) if sheet is not None else None
            size = _inflated_size(
                f, info, MAX_UNCOMPRESSED - total, scanner.feed if scanner else None
            )
            if scanner is not None:
                scanner.finish()
                if scanner.has_errors:
                    with_errors.setdefault(scanner.sheet, info.filename)
            _check_inflated(info, size)
            total += size
    return with_errors


def _check_inflated(info: zipfile.ZipInfo, size: int) -> None:
    if size != info.file_size:
        least = "at least " if size > info.file_size else ""
        raise FileFormatError(
            f"The workbook part '{info.filename}' inflates to {least}{size:,} bytes but the "
            f"archive says {info.file_size:,}; refusing an inconsistent (possibly "
            "crafted) workbook file.",
            details=[{"member": info.filename, "declared": info.file_size}],
        )


def _small_member(zf: zipfile.ZipFile, name: str) -> bytes | None:
    """A workbook part read whole (only the small ones: workbook.xml and its relationships)."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > 16 << 20:
        raise FileLimitError(f"The workbook part '{name}' is implausibly large.")
    with zf.open(info) as member:
        return member.read(16 << 20)


def _inflated_size(
    f: io.BufferedReader,
    info: zipfile.ZipInfo,
    cap: int,
    feed: Callable[[bytes], None] | None = None,
) -> int:
    """The size a member really inflates to: its deflate stream (which ends itself) inflated to
    the end, in bounded steps, stopping past `cap`. The sizes in the central directory are only
    claims: the local header may say otherwise, and calamine inflates until the stream ends, so a
    small claim could hide gigabytes."""
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise FileFormatError("The workbook file is damaged (a local zip header is missing).")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    f.seek(info.header_offset + 30 + name_len + extra_len)
    if info.compress_type == zipfile.ZIP_STORED:
        if feed is not None:
            left = info.compress_size
            while left > 0 and (piece := f.read(min(left, 8 << 20))):
                feed(piece)
                left -= len(piece)
        return info.compress_size  # stored: never more than the file itself
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise FileFormatError(
            f"The workbook part '{info.filename}' uses zip compression method "
            f"{info.compress_type}; workbooks use deflate."
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = 0
    try:
        while not inflater.eof:
            pending = f.read(1 << 20)
            if not pending:
                raise FileFormatError(f"The workbook part '{info.filename}' is truncated.")
            while pending and not inflater.eof:
                piece = inflater.decompress(pending, 16 << 20)
                size += len(piece)
                if feed is not None and size <= cap:
                    feed(piece)
                pending = inflater.unconsumed_tail
                if size > info.file_size and size <= cap:
                    return size  # already more than the archive says: refused as inconsistent
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
