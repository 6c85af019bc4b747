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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.errors import BadRequest, ErrorCode
from app.data_items.repository import DataItemRepository
from app.fields import service as fields_service
from app.fields.schemas import FieldCreate
from app.fields.types import FieldType
from app.ingestion.documents import build_documents
from app.ingestion.inference import ColumnPlan, convert_column, infer_columns, plan_columns
from app.ingestion.readers import FileFormatError, RawTable, ReadLimits, read_table
from app.ingestion.repository import ReferenceFileRepository
from app.ingestion.stats import ColumnStats
from app.ingestion.upload import SpooledFile
from app.models import DataItem, Field, ReferenceFile
from app.rows import partitions
from app.rows.repository import RowRepository
from app.summary import service as summary_service
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import WebhookEvent

log = logging.getLogger("app.ingestion")

# Told (rows written, rows in the file) as a load goes on; import jobs report it to pollers.
Progress = Callable[[int, int], Awaitable[None]]

CHUNK_ROWS = 100_000
MAX_REPORTED_PROBLEMS = 20
CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
}


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
    stats: ColumnStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = ColumnStats(FieldType(self.target.field_type))


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
        if not bad_rows:
            column.stats.add(converted.display)
            if (
                column.plan.field_type in (FieldType.CHAR, FieldType.TEXT)
                and not result.control_chars
            ):
                result.control_chars = bool(converted.display.str.contains(r"[\x00-\x1f]").any())
            fragments.append((column.target.id, converted.fragments))
            result.cells += int(converted.fragments.is_not_null().sum())
    if bad_rows:
        return None
    documents = (
        build_documents(fragments) if fragments else pl.repeat("{}", stop - start, eager=True)
    )
    values: list[str] = documents.to_list()
    return values


async def write_rows(
    repo: RowRepository,
    table: RawTable,
    columns: Sequence[Column],
    first_ref_of: Callable[[int], Any],
    progress: Progress | None = None,
) -> WriteResult:
    """Convert and COPY every row, chunk by chunk, the next chunk converting while the current
    one streams. Stops writing at the first bad value but keeps checking, to report problems."""
    total = table.frame.height
    result = WriteResult()
    first_ref: int = await first_ref_of(total)
    bounds = [(s, min(s + CHUNK_ROWS, total)) for s in range(0, total, CHUNK_ROWS)]

    def convert(bound: tuple[int, int]) -> list[str] | None:
        return _convert_chunk(table, columns, bound[0], bound[1], result)

    pending = (
        asyncio.ensure_future(anyio.to_thread.run_sync(convert, bounds[0])) if bounds else None
    )
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
    message = (
        f"{what}: row {first['row']}, column {first['column']!r}: {first['value']!r} "
        f"{first['message']}"
    )
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
    table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
    if progress is not None:
        await progress(0, table.frame.height)
    plans = await anyio.to_thread.run_sync(
        lambda: infer_columns(table.frame, delimiter=table.delimiter)
    )
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
    result = await write_rows(repo, table, columns, repo.allocate, progress)
    if result.problems:  # inference chose types every value fits; this is a safety net
        raise _problems_error(result, "Cannot load the file")
    if result.control_chars:
        await repo.mark_control_chars()
    await partitions.attach_partition(session, item.id)
    stats = await anyio.to_thread.run_sync(lambda: {c.target.id: c.stats.result() for c in columns})
    await summary_service.replace_stats(session, item.id, stats)
    reference = await ReferenceFileRepository(session, item.id).store(
        upload.path,
        filename=upload.filename,
        content_type=CONTENT_TYPES[table.source_format],
        size=upload.size,
        sha256=upload.sha256,
    )
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
        "data item %s created from %s: %d rows, %d fields",
        item.id,
        upload.filename,
        result.rows,
        len(fields),
    )
    notes = table.notes + [_type_note(c.header, c.plan) for c in columns]
    return CreateOutcome(item, fields, result.rows, result.cells, reference, notes)


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
    drop_search_index: Callable[[AsyncSession, int, int, int], Any],
    progress: Progress | None = None,
) -> AppendOutcome:
    table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
    if progress is not None:
        await progress(0, table.frame.height)
    repo = RowRepository(session, item.id)
    await repo.lock_item()  # one writer per item from here to commit
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
    columns = [Column(i, h, f, p) for (i, h, f), p in zip(matched, matched_plans, strict=True)]
    created_fields: list[Field] = []
    if new_columns:
        labels = _new_labels(
            [h for _, h, _ in new_columns], {f.field_label.lower() for f in existing}
        )
        created_fields = await fields_service.create_fields(
            session,
            item,
            [
                FieldCreate(field_label=label, field_type=p.field_type)
                for label, (_, _, p) in zip(labels, new_columns, strict=True)
            ],
        )
        columns += [
            Column(i, h, f, p) for (i, h, p), f in zip(new_columns, created_fields, strict=True)
        ]
    rows_now = await repo.lock_item()
    await drop_search_index(session, item.id, rows_now, table.frame.height)
    result = await write_rows(repo, table, columns, repo.allocate, progress)
    if result.problems:
        raise _problems_error(result, "Cannot append the file")
    if result.control_chars:
        await repo.mark_control_chars()
    new_ids = {f.id for f in created_fields}
    for column in columns:
        if column.target.id in new_ids:  # empty in the rows that were there: the file has it all
            result_stats = await anyio.to_thread.run_sync(column.stats.result)
            await summary_service.replace_stats(session, item.id, {column.target.id: result_stats})
        else:
            await summary_service.add_aggregates(
                session, item.id, column.target, column.stats.increments()
            )
    reference = await ReferenceFileRepository(session, item.id).store(
        upload.path,
        filename=upload.filename,
        content_type=CONTENT_TYPES[table.source_format],
        size=upload.size,
        sha256=upload.sha256,
    )
    await session.refresh(item)
    await webhooks_service.emit(
        session,
        account_id=item.account_id,
        event=WebhookEvent.DATA_ITEM_ROWS_APPENDED,
        data={
            "data_item": await webhooks_service.item_data(session, item),
            "rows_appended": result.rows,
            "reference_file": {"id": reference.id, "filename": reference.filename},
        },
    )
    order = {c.index: c for c in columns}
    new_notes = [_type_note(h, p) for _, h, p in new_columns]
    return AppendOutcome(
        item=item,
        rows=result.rows,
        cells=result.cells,
        matched=[table.headers[i] for i in sorted(order)],
        skipped=skipped,
        reference=reference,
        notes=table.notes + new_notes,
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
