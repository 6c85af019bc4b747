"""Create a data item from a file, or append a file's rows to one: read -> infer (or match) ->
convert -> COPY, in one transaction with the item, its fields, every row, its statistics and
the reference file. A failure at any point leaves nothing behind.

Parsing, inference and conversion run in worker threads (Polars releases the GIL), so the event
loop keeps serving other requests. Rows are converted and written in chunks: while one chunk
streams into PostgreSQL with binary COPY, the next is converted in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.db import long_statements
from app.core.errors import BadRequest, ErrorCode
from app.data_items.repository import DataItemRepository
from app.fields import service as fields_service
from app.fields.schemas import FieldCreate
from app.fieldtypes import FieldType, kind_of
from app.fieldtypes.base import Accumulator
from app.ingestion.documents import build_documents, has_control_chars
from app.ingestion.inference import ColumnPlan, convert_column, infer_columns, plan_columns
from app.ingestion.readers import FileFormatError, RawTable, ReadLimits, read_table
from app.ingestion.repository import ReferenceFileRepository
from app.ingestion.upload import SpooledFile
from app.models import DataItem, Field, ReferenceFile
from app.rows import partitions
from app.rows.maintenance import (
    RowMaintenance,
    drop_search_index_before,
    drop_search_index_in,
    take_over_index_build,
)
from app.rows.repository import RowRepository
from app.summary import service as summary_service
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import WebhookEvent

log = logging.getLogger("app.ingestion")

# Told (rows written, rows in the file) as a load goes on; import jobs report it to pollers.
Progress = Callable[[int, int], Awaitable[None]]

# Rows are converted and written in chunks of at most CHUNK_ROWS, and in at least
# PIPELINE_CHUNKS chunks when a file has MIN_CHUNK_ROWS * PIPELINE_CHUNKS rows or more, so that a
# 100k-row file also overlaps converting with COPY instead of doing one after the other.
CHUNK_ROWS = 100_000
MIN_CHUNK_ROWS = 20_000
PIPELINE_CHUNKS = 4
MAX_REPORTED_PROBLEMS = 20
CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
}


class Phases:
    """Wall time of an upload's phases, for the log line an operator reads when an upload is
    slow: "in 2.31 s (read 0.42, plan 0.20, write 1.51, ...)"."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps.append((name, now - self._last))
        self._last = now

    def __str__(self) -> str:
        laps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in self._laps)
        return f"in {time.perf_counter() - self._start:.2f} s ({laps})"


def _file_error(exc: FileFormatError) -> BadRequest:
    details = [{"message": exc.message, **d} for d in exc.details]  # every detail has a message
    return BadRequest(str(exc), code=ErrorCode.INVALID_FILE, details=details)


async def read_upload(upload: SpooledFile, *, sheet: str | None, limits: ReadLimits) -> RawTable:
    try:
        return await anyio.to_thread.run_sync(
            lambda: read_table(upload.path, upload.filename, sheet=sheet, limits=limits)
        )
    except FileFormatError as exc:
        raise _file_error(exc) from None


@dataclass
class Column:
    """A file column on its way into a field."""

    index: int  # position in RawTable.frame
    header: str  # as in the file
    target: Field
    plan: ColumnPlan
    new_field: bool = True  # False: an append into an existing field (statistics: increments)
    stats: Accumulator = field(init=False)
    required: bool = field(init=False)  # every row must give the field a value

    def __post_init__(self) -> None:
        self.stats = kind_of(self.target.field_type).accumulator(counts=self.new_field)
        self.required = bool(self.target.field_required)


@dataclass
class WriteResult:
    rows: int = 0
    cells: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    control_chars: bool = False


def _convert_chunk(
    table: RawTable, columns: Sequence[Column], start: int, stop: int, result: WriteResult
) -> list[str] | None:
    """Documents for rows [start, stop), statistics accumulated; None if any value is bad (the
    problems are recorded instead)."""
    frame = table.frame.slice(start, stop - start)
    fragments: list[tuple[int, pl.Series]] = []
    bad_rows = False
    for column in columns:
        converted = convert_column(frame.get_column(frame.columns[column.index]), column.plan)
        bad = converted.bad
        if bad.any():
            bad_rows = True
            idx = bad.arg_true()
            result.problem_count += idx.len()
            room = MAX_REPORTED_PROBLEMS - len(result.problems)
            if room > 0:
                raw = frame.get_column(frame.columns[column.index]).gather(idx.head(room))
                numbers = table.row_numbers.slice(start, stop - start).gather(idx.head(room))
                for number, value in zip(numbers.to_list(), raw.to_list(), strict=True):
                    result.problems.append(
                        {
                            "row": number,
                            "column": column.header,
                            "value": value if not isinstance(value, str) else value[:200],
                            "message": f"is not a valid {column.target.field_type}",
                        }
                    )
            continue
        if column.required:
            empty = converted.fragments.is_null()
            if empty.any():
                bad_rows = True
                _required_problems(table, column, start, stop, empty, result)
                continue
        if not bad_rows:
            column.stats.add(converted.display)
            if kind_of(column.plan.field_type).textual and not result.control_chars:
                result.control_chars = has_control_chars(converted.fragments, converted.display)
            fragments.append((column.target.id, converted.fragments))
            result.cells += int(converted.fragments.is_not_null().sum())
    if bad_rows:
        return None
    documents = (
        build_documents(fragments) if fragments else pl.repeat("{}", stop - start, eager=True)
    )
    values: list[str] = documents.to_list()
    return values


def _required_problems(
    table: RawTable, column: Column, start: int, stop: int, empty: pl.Series, result: WriteResult
) -> None:
    """The rows of [start, stop) that would leave the column's required field empty."""
    idx = empty.arg_true()
    result.problem_count += idx.len()
    room = MAX_REPORTED_PROBLEMS - len(result.problems)
    if room <= 0:
        return
    numbers = table.row_numbers.slice(start, stop - start).gather(idx.head(room))
    for number in numbers.to_list():
        result.problems.append(
            {
                "row": number,
                "column": column.header,
                "field": column.target.field_label,
                "message": f"is empty, and field {column.target.field_label!r} is required",
            }
        )


def chunk_bounds(total: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of a `total`-row load. The first and the last chunk are half
    size: the first converts while nothing streams yet, the last streams while nothing converts.
    100,000 rows: 12,500, then 25,000 three times, then 12,500."""
    size = min(CHUNK_ROWS, max(MIN_CHUNK_ROWS, -(-total // PIPELINE_CHUNKS)))
    starts = [0, *range(size // 2, total, size)] if total >= 2 * size else [*range(0, total, size)]
    if len(starts) > 1 and total - starts[-1] < size // 4:
        starts.pop()  # no tiny last chunk: the one before takes its rows
    return list(zip(starts, [*starts[1:], total], strict=False))  # no rows: no chunks


async def write_rows(
    repo: RowRepository,
    table: RawTable,
    columns: Sequence[Column],
    first_ref_of: Callable[[int], Any],
    progress: Progress | None = None,
    *,
    meanwhile: Callable[[], Awaitable[Any]] | None = None,
) -> WriteResult:
    """Convert and COPY every row, chunk by chunk, the next chunk converting while the current
    one streams. Stops writing at the first bad value but keeps checking, to report problems.
    `meanwhile`: other database work of the upload (storing the reference file), done while
    the first chunk converts, when the connection would otherwise wait."""
    total = table.frame.height
    result = WriteResult()
    first_ref: int = await first_ref_of(total)
    bounds = chunk_bounds(total)

    def convert(bound: tuple[int, int]) -> list[str] | None:
        return _convert_chunk(table, columns, bound[0], bound[1], result)

    pending = (
        asyncio.ensure_future(anyio.to_thread.run_sync(convert, bounds[0])) if bounds else None
    )
    if meanwhile is not None:
        try:
            await meanwhile()
        except BaseException:
            if pending is not None:  # let the thread finish before the table is released
                await asyncio.wait({pending})
            raise
    for i, (start, _stop) in enumerate(bounds):
        assert pending is not None
        documents = await pending
        pending = (
            asyncio.ensure_future(anyio.to_thread.run_sync(convert, bounds[i + 1]))
            if i + 1 < len(bounds)
            else None
        )
        if documents is not None and not result.problems:
            await repo.copy_documents(first_ref + start, documents)
            result.rows += len(documents)
            if progress is not None:
                await progress(result.rows, total)
    return result


def _problems_error(result: WriteResult, what: str) -> BadRequest:
    count = result.problem_count
    first = result.problems[0]
    value = f"{first['value']!r} " if "value" in first else ""
    message = f"{what}: row {first['row']}, column {first['column']!r}: {value}{first['message']}"
    if count > 1:
        message += f" (and {count - 1:,} more problem{'s' if count > 2 else ''}"
        if count > MAX_REPORTED_PROBLEMS:
            message += f"; the first {MAX_REPORTED_PROBLEMS} are listed"
        message += ")"
    return BadRequest(
        message + ". Nothing was written.", code=ErrorCode.INVALID_FILE, details=result.problems
    )


def _limits(settings: Any) -> ReadLimits:
    return ReadLimits(
        max_rows=settings.max_upload_rows,
        max_columns=settings.max_upload_columns,
        max_cell_chars=settings.max_cell_chars,
        max_cells=settings.excel_max_cells,
        excel_memory_mb=settings.excel_memory_mb,
        excel_timeout=settings.excel_timeout_seconds,
    )


@dataclass
class CreateOutcome:
    item: DataItem
    fields: list[Field]
    rows: int
    cells: int
    reference: ReferenceFile
    notes: list[str]


async def create_from_file(
    session: AsyncSession,
    account: AuthenticatedAccount,
    *,
    data_name: str,
    data_description: str,
    upload: SpooledFile,
    sheet: str | None,
    settings: Any,
    progress: Progress | None = None,
) -> CreateOutcome:
    phases = Phases()
    await long_statements(session)
    table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
    phases.lap("read")
    if progress is not None:
        await progress(0, table.frame.height)
    plans = await anyio.to_thread.run_sync(
        lambda: infer_columns(table.frame, delimiter=table.delimiter)
    )
    phases.lap("infer")
    items = DataItemRepository(session, account.id)
    item = await items.add(data_name=data_name, data_description=data_description)
    fields = await fields_service.create_fields(
        session,
        item,
        [
            FieldCreate(field_label=label, field_type=plan.field_type)
            for label, plan in zip(table.labels, plans, strict=True)
        ],
    )
    columns = [
        Column(i, header, f, plan)
        for i, (header, f, plan) in enumerate(zip(table.headers, fields, plans, strict=True))
    ]
    await partitions.create_partition(session, item.id, attach=False)
    repo = RowRepository(session, item.id)
    phases.lap("fields")
    reference: list[ReferenceFile] = []
    result = await write_rows(
        repo,
        table,
        columns,
        repo.allocate,
        progress,
        meanwhile=lambda: _store_reference(session, item.id, upload, table, reference),
    )
    phases.lap("reference + write")
    if result.problems:  # inference chose types every value fits; this is a safety net
        raise _problems_error(result, "Cannot load the file")
    if result.control_chars:
        await repo.mark_control_chars()
    # the statistics' top values (a thread) while the primary key is built (the server)
    computing = asyncio.ensure_future(
        anyio.to_thread.run_sync(lambda: {c.target.id: c.stats.result() for c in columns})
    )
    try:
        await partitions.attach_partition(session, item.id)
    finally:
        stats = await computing
    await summary_service.replace_stats(session, item.id, stats)
    phases.lap("attach + stats")
    await session.refresh(item)
    await webhooks_service.emit(
        session,
        account_id=account.id,
        event=WebhookEvent.DATA_ITEM_CREATED,
        data={
            "data_item": await webhooks_service.item_data(session, item),
            "rows_created": result.rows,
        },
    )
    log.info(
        "data item %s created from %s: %d rows, %d fields %s",
        item.id,
        upload.filename,
        result.rows,
        len(fields),
        phases,
    )
    notes = table.notes + [_type_note(c.header, c.plan) for c in columns]
    return CreateOutcome(item, fields, result.rows, result.cells, reference[0], notes)


@dataclass
class AppendOutcome:
    item: DataItem
    rows: int
    cells: int
    matched: list[str]
    skipped: list[str]
    reference: ReferenceFile
    notes: list[str]


async def append_from_file(
    session: AsyncSession,
    item: DataItem,
    *,
    upload: SpooledFile,
    add_new_fields: bool,
    sheet: str | None,
    settings: Any,
    maintenance: RowMaintenance,
    progress: Progress | None = None,
) -> AppendOutcome:
    phases = Phases()
    await long_statements(session)
    table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
    phases.lap("read")
    if progress is not None:
        await progress(0, table.frame.height)
    item_id = item.id  # (the item's attributes expire if the transaction rolls back)
    repo = RowRepository(session, item_id)
    rows_now = await repo.lock_item()  # one writer per item from here to commit
    # A big append drops the item's search index first, on a connection of its own, while the
    # columns are matched and planned; the index is rebuilt afterwards, committed or not. A
    # build of the index running in the background gives way to it first.
    dropping = None
    if drop_search_index_before(rows_now, table.frame.height):
        await take_over_index_build(session, item_id)
        dropping = asyncio.ensure_future(maintenance.drop_search_index_now(item_id))
    reference: list[ReferenceFile] = []

    async def before_rows() -> None:
        await _store_reference(session, item_id, upload, table, reference)
        if dropping is not None and not await dropping:  # readers held the item
            await drop_search_index_in(session, item_id)

    try:
        plan = await _plan_append(session, item, table, add_new_fields=add_new_fields)
        phases.lap("plan")
        result = await write_rows(
            repo, table, plan.columns, repo.allocate, progress, meanwhile=before_rows
        )
        if result.problems:
            raise _problems_error(result, "Cannot append the file")
    except BaseException as exc:
        if dropping is not None:  # once the drop is over, rebuild the index

            def rebuild(task: asyncio.Future[bool]) -> None:
                if not task.cancelled():
                    task.exception()  # retrieved: the append's own error is the one reported
                maintenance.item_changed(item_id)

            if isinstance(exc, Exception):  # (not when cancelled) queued before the error answer
                await asyncio.wait({dropping})
            dropping.add_done_callback(rebuild)
        raise
    phases.lap("reference + write")
    if result.control_chars:
        await repo.mark_control_chars()
    for column in plan.columns:
        if column.new_field:  # empty in the rows that were there: the file has it all
            result_stats = await anyio.to_thread.run_sync(column.stats.result)
            await summary_service.replace_stats(session, item.id, {column.target.id: result_stats})
        else:
            await summary_service.add_aggregates(session, item.id, column.target, column.stats)
    phases.lap("stats")
    await session.refresh(item)
    await webhooks_service.emit(
        session,
        account_id=item.account_id,
        event=WebhookEvent.DATA_ITEM_ROWS_APPENDED,
        data={
            "data_item": await webhooks_service.item_data(session, item),
            "rows_appended": result.rows,
            "reference_file": {"id": reference[0].id, "filename": reference[0].filename},
        },
    )
    log.info(
        "data item %s: %d rows appended from %s %s", item.id, result.rows, upload.filename, phases
    )
    return AppendOutcome(
        item=item,
        rows=result.rows,
        cells=result.cells,
        matched=[table.headers[c.index] for c in sorted(plan.columns, key=lambda c: c.index)],
        skipped=plan.skipped,
        reference=reference[0],
        notes=table.notes + [_type_note(c.header, c.plan) for c in plan.columns if c.new_field],
    )


@dataclass
class AppendPlan:
    columns: list[Column]  # matched columns first, then new fields' columns
    skipped: list[str]  # headers of columns left out


async def _plan_append(
    session: AsyncSession, item: DataItem, table: RawTable, *, add_new_fields: bool
) -> AppendPlan:
    """Match the file's columns to the item's fields by header (creating fields for the others
    when asked) and plan how each column's values are read."""
    existing = await fields_service.list_fields(session, item)
    by_label = {f.field_label.strip().lower(): f for f in existing}
    matched: list[tuple[int, str, Field]] = []
    unmatched: list[int] = []
    used: set[int] = set()
    for i, header in enumerate(table.headers):
        target = by_label.get(header.strip().lower())
        if target is not None and target.id not in used:
            matched.append((i, header, target))
            used.add(target.id)
        else:
            unmatched.append(i)
    skipped = [table.headers[i] for i in unmatched]
    new_columns: list[tuple[int, str, ColumnPlan]] = []
    if add_new_fields and unmatched:
        plans = await anyio.to_thread.run_sync(
            lambda: infer_columns(
                table.frame.select([table.frame.columns[i] for i in unmatched]),
                delimiter=table.delimiter,
            )
        )
        new_columns = [(i, table.headers[i], p) for i, p in zip(unmatched, plans, strict=True)]
        skipped = []
    missing = [f for f in existing if f.field_required and f.id not in used]
    if missing:
        raise _required_unmatched(missing)
    if not matched and not new_columns:
        raise BadRequest(
            "No column of the file matches a field of this data item (headers are matched to "
            "field labels ignoring case and surrounding spaces); send add_new_fields=true to "
            "create fields for them.",
            code=ErrorCode.INVALID_FILE,
            details=[{"column": h, "message": "matches no field"} for h in table.headers],
        )
    to_plan = [
        (table.frame.get_column(table.frame.columns[i]), FieldType(f.field_type))
        for i, _, f in matched
    ]
    matched_plans = await anyio.to_thread.run_sync(
        lambda: plan_columns(to_plan, delimiter=table.delimiter)
    )
    columns = [
        Column(i, h, f, p, new_field=False)
        for (i, h, f), p in zip(matched, matched_plans, strict=True)
    ]
    if new_columns:
        labels = _new_labels(
            [h for _, h, _ in new_columns], {f.field_label.lower() for f in existing}
        )
        created = await fields_service.create_fields(
            session,
            item,
            [
                FieldCreate(field_label=label, field_type=p.field_type)
                for label, (_, _, p) in zip(labels, new_columns, strict=True)
            ],
        )
        columns += [Column(i, h, f, p) for (i, h, p), f in zip(new_columns, created, strict=True)]
    return AppendPlan(columns, skipped)


def _required_unmatched(missing: Sequence[Field]) -> BadRequest:
    """Required fields no column of the file matches: every row would leave them empty."""
    names = ", ".join(repr(f.field_label) for f in missing)
    plural = len(missing) > 1
    return BadRequest(
        f"Cannot append the file: field{'s' if plural else ''} {names} "
        f"{'are' if plural else 'is'} required, but no column of the file matches "
        f"{'them' if plural else 'it'} (headers are matched to field labels ignoring case and "
        "surrounding spaces), so every row would leave "
        f"{'them' if plural else 'it'} empty. Nothing was written.",
        code=ErrorCode.INVALID_FILE,
        details=[
            {
                "field": f.field_label,
                "column": None,
                "rows": "all",
                "message": "is required, and no column of the file matches it",
            }
            for f in missing
        ],
    )


async def _store_reference(
    session: AsyncSession,
    item_id: int,
    upload: SpooledFile,
    table: RawTable,
    out: list[ReferenceFile],
) -> None:
    out.append(
        await ReferenceFileRepository(session, item_id).store(
            upload.path,
            filename=upload.filename,
            content_type=CONTENT_TYPES[table.source_format],
            size=upload.size,
            sha256=upload.sha256,
        )
    )


def _type_note(header: str, plan: ColumnPlan) -> str:
    """Why a column got its type, for the response's notes: "Column 'Zip': char (leading zeros
    (e.g. '02134') keep it text)."."""
    return f"Column {header!r}: {plan.field_type} ({plan.reasons})."


def _new_labels(headers: Sequence[str], taken: set[str]) -> list[str]:
    """Labels for new fields: the header, trimmed, made distinct from existing labels."""
    out: list[str] = []
    for header in headers:
        base = header.strip() or "Column"
        label, n = base, 2
        while label.lower() in taken:
            label, n = f"{base} ({n})", n + 1
        taken.add(label.lower())
        out.append(label)
    return out
