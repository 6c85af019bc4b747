"""The xlsx export: XlsxWriter in constant-memory mode (each row goes to disk as it is written),
fed in batches from a server-side cursor, the writing in a worker thread. The workbook is built
into a temporary file before the response starts (so a problem is still a clean 400), then the
file is unlinked and streamed from its open handle: nothing is left on disk whatever happens.

Cells keep their types, and what create-from-file reads back is what was stored:
- decimal: a number when Excel can hold it exactly (at most 15 significant digits, Excel's
  precision, and the number XlsxWriter writes reads back as the same value); otherwise text
  with the exact canonical digits (`12345678901234567890`). A re-import reads both as decimal.
- date: a real Excel date (`yyyy-mm-dd`, or `yyyy-mm-dd hh:mm:ss[.000]` with a time). A column
  with a value an Excel date cannot give back exactly (before 1900-03-01, finer than a
  millisecond, or exactly midnight with a time) is written as ISO text instead, whole, so that
  the column keeps one type.
- boolean: TRUE/FALSE cells. char/text: text cells, always (never formulas or numbers).
- Excel's limits are checked first: 1,048,575 data rows, 16,384 columns, 32,767 characters in a
  cell; over one, the export is a 400 that says which, and CSV or JSON hold it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
import xlsxwriter
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import BadRequest, NotFound
from app.fieldtypes import kind_of
from app.fieldtypes.base import XlsxStyles
from app.rows.filters import RowQuery
from app.transfer.exports import ItemGone, open_snapshot
from app.transfer.repository import FieldInfo

MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows, one of them the header
MAX_COLUMNS = 16_384
MAX_CELL_CHARS = 32_767
EXCEL_DIGITS = 15
CHUNK_BYTES = 1 << 20
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")


def sheet_name(data_name: str) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, no apostrophe at either end."""
    name = _SHEET_FORBIDDEN.sub(" ", data_name).strip().strip("'").strip()[:31].strip()
    return name if name and name.lower() != "history" else "Data"


@dataclass
class Built:
    """A finished workbook: an open handle on an already unlinked file."""

    handle: IO[bytes]
    size: int

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while block := await anyio.to_thread.run_sync(self.handle.read, CHUNK_BYTES):
                yield block
        finally:
            self.handle.close()


class _Sheet:
    """Writes rows into one worksheet; runs in a worker thread."""

    def __init__(
        self, path: Path, tmpdir: Path, title: str, fields: Sequence[FieldInfo], as_text: set[int]
    ) -> None:
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(tmpdir)})
        self.sheet = self.book.add_worksheet(sheet_name(title))
        header = self.book.add_format({"bold": True})
        styles = XlsxStyles(
            day=self.book.add_format({"num_format": "yyyy-mm-dd"}),
            moment=self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            moment_ms=self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"}),
        )
        self.fields = fields
        self.writers = [
            kind_of(f.field_type).xlsx_writer(self.sheet, styles, as_text=f.id in as_text)
            for f in fields
        ]
        self.sheet.freeze_panes(1, 0)
        for col, f in enumerate(fields):
            self.sheet.write_string(0, col, f.field_label, header)
        self.row = 0

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of (row_ref, cell text, …)."""
        writers = self.writers
        for record in rows:
            self.row += 1
            row = self.row
            for col, value in enumerate(record[1:]):
                if value is None:
                    continue
                if len(value) > MAX_CELL_CHARS:
                    f = self.fields[col]
                    raise BadRequest(
                        f"Row {record[0]}, field {f.id} ({f.field_label}) has {len(value):,} "
                        f"characters; an xlsx cell holds at most {MAX_CELL_CHARS:,}. Export it "
                        "as csv or json.",
                        details=[
                            {"row_ref": str(record[0]), "field": f.id, "limit": MAX_CELL_CHARS}
                        ],
                    )
                writers[col](row, col, value)

    def close(self) -> None:
        self.book.close()

    def discard(self) -> None:
        """Give up: XlsxWriter has no abort, so close the sheets' row spool files (in the
        temporary directory that is removed next) instead of assembling a workbook."""
        for sheet in self.book.worksheets():
            spool = getattr(sheet, "row_data_fh", None)
            if spool is not None and not spool.closed:
                spool.close()


async def build(
    engine: AsyncEngine,
    account_id: int,
    item_id: int,
    query: RowQuery,
    *,
    workdir: Path,
    slots: anyio.CapacityLimiter,
) -> Built:
    """The workbook of the selected rows; `slots` bounds the workbooks built at once (each keeps
    a worker thread busy), a further export waits its turn before it opens its snapshot."""
    async with slots:
        return await _build(engine, account_id, item_id, query, workdir)


async def _build(
    engine: AsyncEngine, account_id: int, item_id: int, query: RowQuery, workdir: Path
) -> Built:
    path = workdir / f"export-{os.getpid()}-{uuid.uuid4().hex}.xlsx"
    tmpdir = Path(await anyio.to_thread.run_sync(_make_tmpdir, workdir))
    try:
        async with open_snapshot(engine, account_id, item_id) as (reader, item, fields):
            if len(fields) > MAX_COLUMNS:
                raise BadRequest(
                    f"The item has {len(fields):,} fields; an xlsx sheet holds at most "
                    f"{MAX_COLUMNS:,} columns. Export it as csv or json."
                )
            if item.row_count > MAX_ROWS:
                filtered = query.filter is not None or query.search is not None
                count = await reader.count(query) if filtered else item.row_count
                if count > MAX_ROWS:
                    raise BadRequest(
                        f"The export has {count:,} rows; an xlsx sheet holds at most "
                        f"{MAX_ROWS:,}. Export it as csv or json, or narrow it with `search` "
                        "or `filter`."
                    )
            as_text = await reader.excel_text_fields(fields, query)
            sheet = await anyio.to_thread.run_sync(
                _Sheet, path, tmpdir, item.data_name, fields, as_text
            )
            try:
                async with aclosing(reader.cells(fields, query)) as batches:
                    async for batch in batches:
                        await anyio.to_thread.run_sync(sheet.write, batch)
            except BaseException:
                sheet.discard()
                raise
            await anyio.to_thread.run_sync(sheet.close)
        handle = path.open("rb")
        return Built(handle, os.fstat(handle.fileno()).st_size)
    except ItemGone:
        raise NotFound(f"Data item {item_id} not found.") from None
    finally:  # the open handle keeps the file readable; the name goes now
        path.unlink(missing_ok=True)
        await anyio.to_thread.run_sync(shutil.rmtree, tmpdir, True)


def _make_tmpdir(workdir: Path) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="xlsx-", dir=workdir)
