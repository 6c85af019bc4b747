"""Row exports: which rows (search, filter and sort compiled by app/rows), and the CSV and JSON
bodies, streamed from a snapshot on a connection of their own.

CSV is PostgreSQL's own: `COPY (SELECT "values"->>'101', … ORDER BY …) TO STDOUT (FORMAT csv)`,
passed on chunk by chunk; its quoting is RFC 4180's (a field is quoted when it holds a comma, a
quote, CR or LF; quotes are doubled), and the record ends are turned from LF into CRLF on the
way (outside quoted fields only). Cells are the stored values as text: decimals in their exact
canonical form, dates `YYYY-MM-DD[THH:MM:SS[.ffffff]]`, booleans `true`/`false`, empty cells
empty. The header row is written here (labels can be longer than SQL identifiers).

With `escape_formulas`, a char or text cell (and a label) that starts with `=`, `+`, `-`, `@`,
tab or CR, which a spreadsheet would run as a formula, gets a `'` in front: a CASE on the cell's
first character inside the same `COPY` (the textual kinds' `export_text`), so the export stays
PostgreSQL's. Without it the SELECT
is exactly the plain one. Decimals, dates and booleans are never escaped: `-5` in a decimal field
is a number to a spreadsheet, not a formula, and the others never start with those characters.

JSON is an array of row objects keyed by field label, in field order, every label present (null
where empty); each object's text is rendered by PostgreSQL from the stored document (numbers are
the stored exact values) and streamed with `COPY … TO STDOUT` like the CSV: Python only puts the
commas between the objects.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from urllib.parse import quote

import anyio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import long_statements
from app.fieldtypes.text import escape_formula
from app.models import DataItem, Field
from app.rows import filters
from app.rows.filters import RowQuery
from app.transfer.repository import FieldInfo, ItemInfo, SnapshotReader

UTF8_BOM = b"\xef\xbb\xbf"
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ItemGone(Exception):
    """The item was deleted between the request and its streamed body (the response, already
    started, is cut off: the client sees an incomplete download, never a short file)."""


def row_query(
    item: DataItem,
    fields: Sequence[Field],
    *,
    search: str | None,
    filter_json: str | None,
    sort: str | None,
) -> RowQuery:
    """The rows `GET …/rows/` would list with the same `search`, `filter` and `sort`; a 400 for
    the same bad input."""
    by_id = {f.id: f for f in fields}
    return filters.row_query(
        by_id, filter_json=filter_json, sort=sort, search=search, escapes=item.has_control_chars
    )


# --------------------------------------------------------------------------------- names


def download_name(data_name: str, extension: str) -> str:
    """`<item name>.<extension>`, without path separators or control characters."""
    name = re.sub(r"[\\/]+", "-", data_name)
    name = "".join(ch for ch in name if ch.isprintable()).strip(" .") or "data"
    return f"{name[:200]}.{extension}"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` for old clients and the exact name as RFC 5987
    `filename*` (UTF-8, percent-encoded) for the others."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()\-]", "_", ascii_name).strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ------------------------------------------------------------------------------ snapshot


@asynccontextmanager
async def open_snapshot(
    engine: AsyncEngine, account_id: int, item_id: int
) -> AsyncIterator[tuple[SnapshotReader, ItemInfo, list[FieldInfo]]]:
    """A REPEATABLE READ transaction on a connection of its own, with the item (still the
    account's) and its fields. A body abandoned midway (the client went away) invalidates the
    connection rather than return it to the pool in an unknown state."""
    conn = await engine.connect().start()
    abandoned = True
    try:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        await conn.begin()
        await long_statements(conn)
        reader = SnapshotReader(conn, account_id, item_id)
        item = await reader.item()
        if item is None:
            raise ItemGone(f"data item {item_id} is gone")
        yield reader, item, await reader.fields()
        abandoned = False
    except Exception:
        abandoned = False  # an error, not an abandoned stream: the connection is usable
        raise
    finally:
        with anyio.CancelScope(shield=True):
            try:
                if abandoned:
                    await conn.invalidate()
                else:
                    await conn.rollback()  # read only: nothing to keep
            finally:
                await conn.close()


# ----------------------------------------------------------------------------------- CSV


_BARE_LF = re.compile(rb"(?<!\r)\n")


class CrlfRecords:
    """LF record ends of PostgreSQL's CSV output as CRLF (RFC 4180), across chunk boundaries.
    A quote opens or closes a quoted field, a doubled quote does both, so the parity of the
    quotes seen so far says whether a newline ends a record or belongs to a value."""

    def __init__(self) -> None:
        self.quoted = False
        self.after_cr = False  # servers on Windows already write CRLF

    def feed(self, chunk: bytes) -> bytes:
        parts = chunk.split(b'"')
        for i, part in enumerate(parts):
            if i:
                self.quoted = not self.quoted
                self.after_cr = False
            if self.quoted or not part:
                continue
            if b"\r" in part or self.after_cr:
                fixed = _BARE_LF.sub(b"\r\n", part)
                if self.after_cr and part.startswith(b"\n"):
                    fixed = fixed[1:]  # the CR ended the previous chunk
            else:
                fixed = part.replace(b"\n", b"\r\n")
            self.after_cr = part.endswith(b"\r")
            parts[i] = fixed
        return b'"'.join(parts)


def header_line(labels: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(labels)
    return out.getvalue().encode("utf-8")


async def csv_body(
    engine: AsyncEngine,
    account_id: int,
    item_id: int,
    query: RowQuery,
    *,
    bom: bool,
    escape_formulas: bool = False,
) -> AsyncGenerator[bytes, None]:
    async with open_snapshot(engine, account_id, item_id) as (reader, _, fields):
        if not fields:  # no columns: a CSV cannot hold rows of nothing
            yield UTF8_BOM if bom else b""
            return
        labels = [f.field_label for f in fields]
        if escape_formulas:
            labels = [escape_formula(label) for label in labels]
        yield (UTF8_BOM if bom else b"") + header_line(labels)
        records = CrlfRecords()
        chunks_of = reader.copy_csv(fields, query, escape_formulas=escape_formulas)
        async with aclosing(chunks_of) as chunks:
            async for chunk in chunks:
                yield records.feed(chunk)


# ---------------------------------------------------------------------------------- JSON


class JsonArray:
    """Lines of JSON objects (each ending in LF, from `copy_json`, cut anywhere into chunks) as
    the body of a JSON array: `[`, then the objects separated by `,` + LF, then LF `]` LF. The
    objects hold no raw LF (JSON text escapes it), so each LF ends an object; the last one is held
    back until the next object begins, since the last object takes no comma."""

    def __init__(self) -> None:
        self.started = False
        self.owed = False  # an object ended at the end of the previous chunk

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        head = b",\n" if self.owed else b"" if self.started else b"\n"
        self.started = True
        self.owed = chunk.endswith(b"\n")
        if self.owed:
            chunk = chunk[:-1]
        return head + chunk.replace(b"\n", b",\n")

    @staticmethod
    def start() -> bytes:
        return b"["

    @staticmethod
    def end() -> bytes:
        return b"\n]\n"


async def json_body(
    engine: AsyncEngine, account_id: int, item_id: int, query: RowQuery
) -> AsyncGenerator[bytes, None]:
    """The selected rows as a JSON array of objects, each object's text PostgreSQL's
    (`json_object_text`), streamed by `COPY … TO STDOUT`: no row becomes a Python object."""
    async with open_snapshot(engine, account_id, item_id) as (reader, _, fields):
        array = JsonArray()
        yield array.start()
        async with aclosing(reader.copy_json(fields, query)) as chunks:
            async for chunk in chunks:
                if out := array.feed(chunk):
                    yield out
        yield array.end()
