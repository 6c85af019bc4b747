"""Create a data item from a file, or append a file's rows to one: read -> infer (or match) ->
convert -> COPY, in one transaction with the item, its fields, every row, its statistics and
the reference file. A failure at any point leaves nothing behind.

This module orchestrates; the parts are elsewhere: reading (readers.py), inference
(inference.py), matching an append's columns to fields (append.py), converting and writing
rows (pipeline.py). Parsing, inference and conversion run in worker threads (Polars releases the
GIL), so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.config import Settings
from app.core.db import long_statements
from app.core.errors import BadRequest, ErrorCode
from app.data_items.repository import DataItemRepository
from app.fields import service as fields_service
from app.fields.schemas import FieldCreate
from app.ingestion.append import plan_append
from app.ingestion.inference import ColumnPlan, infer_columns
from app.ingestion.pipeline import Column, Phases, Progress, problems_error, write_rows
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

__all__ = [
    "CONTENT_TYPES",
    "AppendOutcome",
    "CreateOutcome",
    "Progress",
    "append_from_file",
    "create_from_file",
    "read_upload",
]

log = logging.getLogger("app.ingestion")

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


def _limits(settings: Settings) -> ReadLimits:
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
    settings: Settings,
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
        raise problems_error(result, "Cannot load the file")
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
    settings: Settings,
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
        plan = await plan_append(session, item, table, add_new_fields=add_new_fields)
        phases.lap("plan")
        result = await write_rows(
            repo, table, plan.columns, repo.allocate, progress, meanwhile=before_rows
        )
        if result.problems:
            raise problems_error(result, "Cannot append the file")
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
