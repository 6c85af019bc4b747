"""Hostile uploads, built in bounded memory: decompression bombs that inflate to gigabytes
(with honest or lying sizes), entity-expanding and deeply nested XML inside an .xlsx, and
multi-hundred-megabyte CSV lines streamed in chunks."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from tests.ingestion import files

NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="' + NS + b'"><sheetData>'
SHEET_TAIL = b"</sheetData></worksheet>"
ROW1 = b'<row r="1"><c r="A1" t="inlineStr"><is><t>head</t></is></c></row>'


def _workbook_parts() -> list[tuple[str, bytes]]:
    """Every part of a real one-sheet workbook except the sheet itself."""
    import io
    import zipfile

    real = zipfile.ZipFile(io.BytesIO(files.xlsx_bytes({"S": [["a"], [1]]})))
    return [(n, real.read(n)) for n in real.namelist() if n != "xl/worksheets/sheet1.xml"]


def _zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip from (name, data as stored, method, declared uncompressed size, crc)."""
    out = bytearray()
    central = bytearray()
    for name, data, method, size, crc in members:
        offset = len(out)
        encoded = name.encode()
        fixed = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, len(data), size)
        out += b"PK\x03\x04" + fixed + struct.pack("<HH", len(encoded), 0) + encoded + data
        central += (
            b"PK\x01\x02"
            + struct.pack("<H", 20)
            + fixed
            + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, offset)
            + encoded
        )
    end = struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + b"PK\x05\x06" + end)


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return (name, data, 0, len(data), zlib.crc32(data))


def deflate_bomb_xlsx(inflated: int, *, claim: int | None = None) -> bytes:
    """An .xlsx whose sheet is `inflated` bytes (spaces inside the sheet XML) deflated ~1000x: a
    few MB that inflate to gigabytes, built without ever holding them. Each MiB of spaces is one
    full-flushed (self-contained) deflate block, repeated. `claim`: the size the archive
    declares for the sheet (default: the truth)."""
    mib = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(SHEET_HEAD + ROW1) + compressor.flush(zlib.Z_FULL_FLUSH)
    spaces = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = spaces.compress(b" " * mib) + spaces.flush(zlib.Z_FULL_FLUSH)
    count = inflated // mib
    tail = compressor.compress(SHEET_TAIL) + compressor.flush()
    stream = head + block * count + tail
    size = len(SHEET_HEAD + ROW1) + count * mib + len(SHEET_TAIL)
    crc = 0  # not checked before the size is (and computing it means inflating gigabytes)
    sheet = ("xl/worksheets/sheet1.xml", stream, 8, size if claim is None else claim, crc)
    return _zip([*(_stored(n, d) for n, d in _workbook_parts()), sheet])


def _sheet_xlsx(sheet_xml: bytes) -> bytes:
    return _zip(
        [
            *(_stored(n, d) for n, d in _workbook_parts()),
            _stored("xl/worksheets/sheet1.xml", sheet_xml),
        ]
    )


def billion_laughs_xlsx() -> bytes:
    """The sheet XML declares ten levels of entities, each ten of the one below: expanded, the
    one cell would be 10^9 "lol"s (3 GB)."""
    entities = [b'<!ENTITY lol0 "lol">'] + [
        b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)
    ]
    doctype = b"<!DOCTYPE worksheet [" + b"".join(entities) + b"]>\n"
    body = b'<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
    return _sheet_xlsx(SHEET_HEAD.replace(b"\n", b"\n" + doctype, 1) + ROW1 + body + SHEET_TAIL)


def external_entity_xlsx() -> bytes:
    """XXE: an entity that would pull in a local file."""
    doctype = b'<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    body = b'<row r="2"><c r="A2" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
    return _sheet_xlsx(SHEET_HEAD.replace(b"\n", b"\n" + doctype, 1) + ROW1 + body + SHEET_TAIL)


def deep_xml_xlsx(depth: int = 500_000) -> bytes:
    """Half a million nested elements inside a cell (a recursive parser would overflow)."""
    cell = b'<row r="2"><c r="A2"><v>' + b"<x>" * depth + b"</x>" * depth + b"</v></c></row>"
    return _sheet_xlsx(SHEET_HEAD + ROW1 + cell + SHEET_TAIL)


def long_line_csv(size: int, *, prefix: bytes = b"a,b\r\n1,") -> Iterator[bytes]:
    """A CSV whose second line is `size` bytes, as 1 MiB chunks."""
    yield prefix
    chunk = b"y" * (1 << 20)
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        yield piece
        sent += len(piece)
    yield b"\r\n"


# ----------------------------------------------------------------------------- sparse workbooks


def _inline(ref: bytes, text: bytes) -> bytes:
    return b'<c r="' + ref + b'" t="inlineStr"><is><t>' + text + b"</t></is></c>"


def sparse_xlsx(far: str, *, dimension: str | None = None, rows_without_r: bool = False) -> bytes:
    """Two cells: a header at A1 and `far` (e.g. ``XFD1048576``): a 1.5 KB file whose used range
    is the rectangle between them. `dimension`: a `<dimension ref>` to declare (a lie, or the
    truth); `rows_without_r`: the row elements carry no `r` (the reader counts them)."""
    row = "".join(ch for ch in far if ch.isdigit()).encode()
    open_row = (lambda _n: b"<row>") if rows_without_r else (lambda n: b'<row r="' + n + b'">')
    body = open_row(b"1") + _inline(b"A1", b"head") + b"</row>"
    body += open_row(row) + _inline(far.encode(), b"far") + b"</row>"
    head = SHEET_HEAD
    if dimension is not None:
        head = head.replace(
            b"<sheetData>", b'<dimension ref="' + dimension.encode() + b'"/><sheetData>'
        )
    return _sheet_xlsx(head + body + SHEET_TAIL)


def dense_xlsx(
    rows: int, columns: int, *, dimension: str | None = None, stray: tuple[int, str] | None = None
) -> bytes:
    """A plain filled sheet (numbers), optionally declaring a `<dimension>`; `stray`: (row, ref)
    puts one more cell, at `ref`, first in that row's element (out of order)."""
    from app.ingestion.extent import column_letters

    letters = [column_letters(c + 1).encode() for c in range(columns)]
    parts = []
    for r in range(1, rows + 1):
        n = str(r).encode()
        cells = b"".join(
            _inline(letter + n, b"h%d" % c)
            if r == 1
            else b'<c r="' + letter + n + b'"><v>%d</v></c>' % (r * c)
            for c, letter in enumerate(letters)
        )
        if stray is not None and stray[0] == r:
            cells = b'<c r="' + stray[1].encode() + b'"><v>1</v></c>' + cells
        parts.append(b'<row r="' + n + b'">' + cells + b"</row>")
    head = SHEET_HEAD
    if dimension is not None:
        head = head.replace(
            b"<sheetData>", b'<dimension ref="' + dimension.encode() + b'"/><sheetData>'
        )
    return _sheet_xlsx(head + b"".join(parts) + SHEET_TAIL)


def sparse_xls(
    row: int = 65535, col: int = 255, *, dimensions: tuple[int, int] | None = None
) -> bytes:
    """A legacy .xls with a header at A1 and one cell at (row, col), 0-based (default IV65536,
    the format's last cell). `dimensions`: overwrite the DIMENSIONS record with (last row + 1,
    last column + 1), a lie about where the cells are."""
    import io
    import struct

    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("S")
    sheet.write(0, 0, "head")
    sheet.write(row, col, "far")
    buf = io.BytesIO()
    book.save(buf)
    data = bytearray(buf.getvalue())
    if dimensions is not None:
        marker = struct.pack("<HH", 0x0200, 14)
        at = data.find(marker)
        assert at >= 0, "no DIMENSIONS record"
        struct.pack_into("<IIHH", data, at + 4, 0, dimensions[0], 0, dimensions[1])
    return bytes(data)
