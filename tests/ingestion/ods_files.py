"""OpenDocument spreadsheets (.ods) for the upload tests, written by hand (no ODF library is
installed): the three parts a reader needs (``mimetype``, stored first; ``content.xml``;
``META-INF/manifest.xml``), the cells as LibreOffice writes them, each row ending in a run of
empty cells and each sheet in a run of empty rows, as LibreOffice does too."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import zlib
from collections.abc import Sequence
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from tests.ingestion.hostile_files import _stored, _zip  # (the zip writer of hostile uploads)

MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"
NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)
MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
    f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{MIMETYPE}"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)
FILL_ROW = (
    '<table:table-row table:number-rows-repeated="1048570">'
    '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
)

Cell = object


def cell(value: Cell) -> str:
    """One cell as LibreOffice writes it (its value typed in the attributes, its display text
    in a paragraph)."""
    if value is None:
        return "<table:table-cell/>"
    if isinstance(value, bool):
        word = "true" if value else "false"
        return (
            f'<table:table-cell office:value-type="boolean" office:boolean-value="{word}">'
            f"<text:p>{word.upper()}</text:p></table:table-cell>"
        )
    if isinstance(value, (int, float, Decimal)):
        return (
            f'<table:table-cell office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    if isinstance(value, dt.datetime | dt.date):
        iso = value.isoformat()
        return (
            f'<table:table-cell office:value-type="date" office:date-value="{iso}">'
            f"<text:p>{iso}</text:p></table:table-cell>"
        )
    text = str(value)
    return (
        '<table:table-cell office:value-type="string">'
        f"<text:p>{escape(text)}</text:p></table:table-cell>"
    )


def row_xml(cells: Sequence[Cell], *, repeated: int = 1) -> str:
    runs = f' table:number-rows-repeated="{repeated}"' if repeated > 1 else ""
    return (
        f"<table:table-row{runs}>{''.join(cell(c) for c in cells)}"
        '<table:table-cell table:number-columns-repeated="1000"/></table:table-row>'
    )


def content_xml(tables: dict[str, str], *, prolog: str = "") -> str:
    """content.xml holding each sheet's rows (XML) under its name."""
    body = "".join(
        f"<table:table table:name={quoteattr(name)}>{rows}</table:table>"
        for name, rows in tables.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<office:document-content {NAMESPACES}>'
        f"<office:body><office:spreadsheet>{body}</office:spreadsheet></office:body>"
        "</office:document-content>"
    )


def package(content: str, *, mimetype: str = MIMETYPE, manifest: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # stored, first
        zf.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        if manifest:
            zf.writestr("META-INF/manifest.xml", MANIFEST, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def ods_bytes(sheets: dict[str, Sequence[Sequence[Cell]]]) -> bytes:
    """A workbook with these sheets (name -> rows of cells)."""
    tables = {name: "".join(row_xml(r) for r in rows) + FILL_ROW for name, rows in sheets.items()}
    return package(content_xml(tables))


def repeated_ods(*, columns: int = 1, rows: int = 1) -> bytes:
    """A header, then one number repeated `columns` times across and `rows` times down: a
    few hundred bytes asking the reader for columns x rows cells."""
    runs = (
        f'<table:table-cell office:value-type="float" office:value="1" '
        f'table:number-columns-repeated="{columns}"><text:p>1</text:p></table:table-cell>'
    )
    body = (
        row_xml(["head"])
        + f'<table:table-row table:number-rows-repeated="{rows}">{runs}</table:table-row>'
    )
    return package(content_xml({"Bomb": body}))


def deflate_bomb_ods(inflated: int, *, claim: int | None = None) -> bytes:
    """An .ods whose content.xml holds `inflated` bytes of spaces between two rows, deflated
    ~1000x (as `hostile_files.deflate_bomb_xlsx`: each MiB one self-contained deflate block,
    repeated); `claim`: the size the archive declares for it (default: the truth)."""
    mib = 1 << 20
    before, after = content_xml({"S": row_xml(["a"]) + "\x00" + row_xml([1])}).split("\x00")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(before.encode()) + compressor.flush(zlib.Z_FULL_FLUSH)
    spaces = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = spaces.compress(b" " * mib) + spaces.flush(zlib.Z_FULL_FLUSH)
    count = inflated // mib
    tail = compressor.compress(after.encode()) + compressor.flush()
    size = len(before.encode()) + count * mib + len(after.encode())
    # (the crc is not checked before the size is)
    content = ("content.xml", head + block * count + tail, 8, claim or size, 0)
    return _zip(
        [
            _stored("mimetype", MIMETYPE.encode()),
            content,
            _stored("META-INF/manifest.xml", MANIFEST.encode()),
        ]
    )
