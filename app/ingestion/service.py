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
from pathlib import PurePath
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.config import Settings
from app.core.db import long_statements
from app.core.errors import BadRequest, ErrorCode
from app.data_items import service as data_items_service
from app.fields import service as fields_service
from app.fields.schemas import FieldCreate
from app.fieldtypes import FieldType
from app.ingestion.append import AppendPlan, plan_append
from app.ingestion.formats import CONTENT_TYPES
from app.ingestion.inference import ColumnPlan, infer_columns, plan_new_columns
from app.ingestion.options import SET_BY_USER, UploadOptions, resolve_headers
from app.ingestion.pipeline import (
    Column,
    Phases,
    Progress,
    check_rows,
    key_documents,
    problems_error,
    sample_rows,
    write_rows,
)
from app.ingestion.readers import FileFormatError, RawTable, ReadLimits, read_table
from app.ingestion.repository import ReferenceFileRepository
from app.ingestion.upload import SpooledFile
from app.models import DataItem, Field, ReferenceFile
from app.rows.loading import IndexDrop, RowLoad, RowMaintenance, UpsertCounts, UpsertLoad
from app.summary import service as summary_service
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import WebhookEvent

__all__ = [
    "CONTENT_TYPES",
    "AppendOutcome",
    "CreateOutcome",
    "Progress",
    "UploadOptions",
    "append_from_file",
    "create_from_file",
    "read_upload",
]

log = logging.getLogger("app.ingestion")


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
    options: UploadOptions | None = None,
    progress: Progress | None = None,
) -> CreateOutcome:
    phases = Phases()
    await long_statements(session)
    item = await data_items_service.add_item(
        session, account, data_name=data_name, data_description=data_description
    )
    # The reference file is stored (the server's work) while the file is read and its columns
    # typed (the service's): the connection is idle meanwhile otherwise.
    storing = asyncio.ensure_future(_store_reference(session, item.id, upload))
    try:
        table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
        phases.lap("read")
        if progress is not None:
            await progress(0, table.frame.height)
        plans = await _new_item_plans(table, _set_types(table, options))
        phases.lap("infer")
    except BaseException:
        await _settle(storing)
        raise
    reference = await storing
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
    load = await RowLoad.for_new_item(session, item.id)
    phases.lap("reference + fields")
    # the statistics' top values are computed (a thread) from when the last chunk is converted,
    # while it streams and while the server builds the primary key
    result = await write_rows(
        load,
        table,
        columns,
        progress,
        then=lambda: {c.target.id: c.stats.result() for c in columns},
    )
    phases.lap("write")
    if result.problems:  # a value that does not fit a type field_types set
        raise problems_error(result, "Cannot load the file")
    if result.control_chars:
        await load.mark_control_chars()
    try:
        await load.finish_new_item()
    finally:
        stats = await result.then_result()
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
    return CreateOutcome(item, fields, result.rows, result.cells, reference, notes)


@dataclass
class AppendOutcome:
    item: DataItem
    rows: int
    cells: int
    counts: UpsertCounts
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
    options: UploadOptions | None = None,
    progress: Progress | None = None,
) -> AppendOutcome:
    phases = Phases()
    await long_statements(session)
    item_id = item.id  # (the item's attributes expire if the transaction rolls back)
    load = await RowLoad.for_append(session, item_id)  # the item's lock, first
    # the reference file is stored while the file is read (see create_from_file)
    storing = asyncio.ensure_future(_store_reference(session, item_id, upload))
    try:
        table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
        phases.lap("read")
        if progress is not None:
            await progress(0, table.frame.height)
    except BaseException:
        await _settle(storing)
        raise
    reference = await storing
    # a big append drops the search index (on a connection of its own) while columns are planned
    index_drop = IndexDrop(load, maintenance)
    await index_drop.start(table.frame.height)
    try:
        plan = await plan_append(
            session, item, table, add_new_fields=add_new_fields, options=options
        )
        phases.lap("plan")
        keys = upsert_keys(item_id, plan, options)
        upsert = None
        if keys:
            upsert = UpsertLoad(
                session,
                item_id,
                keys,
                required=[c.target.id for c in plan.columns if c.required],
                emptied=[c.target.id for c in plan.columns],
            )
        new_fields = [c for c in plan.columns if c.new_field]
        result = await write_rows(
            upsert or load,
            table,
            plan.columns,
            progress,
            meanwhile=index_drop.before_rows,
            then=lambda: {c.target.id: c.stats.result() for c in new_fields},
        )
        if result.problems:
            raise problems_error(result, "Cannot append the file")
        counts = UpsertCounts(rows_inserted=result.rows, cells_created=result.cells)
        if upsert is not None:
            numbers = table.row_numbers
            counts = await upsert.finish(row_number=lambda o: int(numbers[int(o)]))
    except BaseException as exc:
        await index_drop.failed(exc)
        raise
    phases.lap("write")
    if result.control_chars:
        await load.mark_control_chars()
    # new fields are empty in the rows that were there (or get the file's values): the file
    # has it all
    new_stats = await result.then_result()
    if new_stats:
        await summary_service.replace_stats(session, item.id, new_stats)
    existing = [c.target for c in plan.columns if not c.new_field]
    if counts.rows_updated:  # values were replaced: recounted when next read
        await summary_service.mark_stale(session, item.id, [f.id for f in existing])
    else:
        for column in plan.columns:
            if not column.new_field:
                await summary_service.add_aggregates(session, item.id, column.target, column.stats)
    phases.lap("stats")
    await session.refresh(item)
    await webhooks_service.emit(
        session,
        account_id=item.account_id,
        event=WebhookEvent.DATA_ITEM_ROWS_APPENDED,
        data={
            "data_item": await webhooks_service.item_data(session, item),
            "rows_appended": counts.rows_inserted,
            "rows_updated": counts.rows_updated,
            "reference_file": {"id": reference.id, "filename": reference.filename},
        },
    )
    log.info(
        "data item %s: %d rows appended, %d updated from %s %s%s",
        item.id,
        counts.rows_inserted,
        counts.rows_updated,
        upload.filename,
        phases,
        f" (upsert: {counts.timings})" if counts.timings else "",
    )
    return AppendOutcome(
        item=item,
        rows=counts.rows_inserted,
        cells=counts.cells_created,
        counts=counts,
        matched=[table.headers[c.index] for c in sorted(plan.columns, key=lambda c: c.index)],
        skipped=plan.skipped,
        reference=reference,
        notes=table.notes + [_type_note(c.header, c.plan) for c in plan.columns if c.new_field],
    )


def upsert_keys(item_id: int, plan: AppendPlan, options: UploadOptions | None) -> dict[int, str]:
    """The key fields of an upsert (field id -> label), each loaded from a column of the file."""
    if options is None or not options.key_fields:
        return {}
    loaded = {c.target.id: c.target.field_label for c in plan.columns if not c.new_field}
    out: dict[int, str] = {}
    for field_id in options.key_fields:
        if field_id not in loaded:
            raise BadRequest(
                f"`key_fields` names field {field_id}, which is not a field of data item "
                f"{item_id} that a column of the file goes into: an upsert matches rows on "
                "values the file gives.",
                details=[{"field": "key_fields", "value": field_id, "message": "not loaded"}],
            )
        out[field_id] = loaded[field_id]
    return out


def _set_types(table: RawTable, options: UploadOptions | None) -> dict[int, FieldType]:
    """Column index -> the type `field_types` sets for it."""
    wanted = options.field_types if options is not None else {}
    resolved = resolve_headers("field_types", wanted, table.headers)
    return {index: wanted[key] for key, index in resolved.items()}


async def _new_item_plans(table: RawTable, types: dict[int, FieldType]) -> list[ColumnPlan]:
    """Each column's plan for a new item: inferred, or the type `field_types` sets."""
    if not types:
        return await anyio.to_thread.run_sync(
            lambda: infer_columns(table.frame, delimiter=table.delimiter)
        )
    return await anyio.to_thread.run_sync(
        lambda: plan_new_columns(
            table.frame,
            range(table.frame.width),
            types,
            delimiter=table.delimiter,
            reason=SET_BY_USER,
        )
    )


# ----------------------------------------------------------------------------- dry runs

PREVIEW_ROWS = 20


@dataclass
class PreviewField:
    field_label: str
    field_type: str
    field_order: int
    column: str  # the file's header
    reasons: str
    new: bool = True


@dataclass
class CreatePreview:
    fields: list[PreviewField]
    rows: int
    sample: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    problem_count: int
    notes: list[str]


async def preview_create(
    *, upload: SpooledFile, sheet: str | None, settings: Settings, options: UploadOptions | None
) -> CreatePreview:
    """What create_from_file would do with the file, without writing anything: its reading,
    its inference (or the types field_types sets, every value of those columns checked) and
    the first rows as they would be stored."""
    table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
    types = _set_types(table, options)
    plans = await _new_item_plans(table, types)
    columns = [
        Column(i, header, Field(field_label=label, field_type=plan.field_type), plan)
        for i, (header, label, plan) in enumerate(
            zip(table.headers, table.labels, plans, strict=True)
        )
    ]
    # inference chose types every value of its columns fits: only the set ones can fail
    set_by_user = [c for c in columns if c.index in types]
    checked = await anyio.to_thread.run_sync(lambda: check_rows(table, set_by_user))
    sample = await anyio.to_thread.run_sync(lambda: sample_rows(table, columns, PREVIEW_ROWS))
    return CreatePreview(
        fields=[
            PreviewField(c.target.field_label, c.plan.field_type, c.index, c.header, c.plan.reasons)
            for c in columns
        ],
        rows=table.frame.height,
        sample=sample,
        problems=checked.problems,
        problem_count=checked.problem_count,
        notes=table.notes + [_type_note(c.header, c.plan) for c in columns],
    )


@dataclass
class AppendPreview:
    fields: list[PreviewField]  # the fields the file's columns go into, existing and new
    matched: list[str]
    skipped: list[str]
    new: list[str]
    rows: int
    problems: list[dict[str, Any]]
    problem_count: int
    notes: list[str]
    rows_updated: int | None = None  # key_fields: the rows the upsert would update
    rows_inserted: int | None = None


async def preview_append(
    session: AsyncSession,
    item: DataItem,
    *,
    upload: SpooledFile,
    add_new_fields: bool,
    sheet: str | None,
    settings: Settings,
    options: UploadOptions | None,
) -> AppendPreview:
    """What append_from_file would do with the file, without writing anything: which columns
    go where, and every value that would fail the append (the first 20 listed)."""
    table = await read_upload(upload, sheet=sheet, limits=_limits(settings))
    plan = await plan_append(
        session, item, table, add_new_fields=add_new_fields, options=options, create=False
    )
    keys = upsert_keys(item.id, plan, options)
    checked = await anyio.to_thread.run_sync(lambda: check_rows(table, plan.columns))
    problems, count = checked.problems, checked.problem_count
    upserted: tuple[int, int] | None = None
    if keys and not problems:
        # the keys checked as the real upsert checks them, against the item's rows; only the
        # key cells are staged, in temporary tables of this transaction
        key_columns = [c for c in plan.columns if c.target.id in keys]
        documents = await anyio.to_thread.run_sync(lambda: key_documents(table, key_columns))
        numbers = table.row_numbers
        try:
            upserted = await UpsertLoad(session, item.id, keys, required=[]).predict(
                documents, row_number=lambda o: int(numbers[int(o)])
            )
        except BadRequest as exc:
            problems = [{"message": exc.message, **d} for d in (exc.details or [])][:20]
            count = len(exc.details or []) or 1
    ordered = sorted(plan.columns, key=lambda c: c.index)
    return AppendPreview(
        fields=[
            PreviewField(
                c.target.field_label,
                c.target.field_type,
                c.index,
                c.header,
                c.plan.reasons,
                new=c.new_field,
            )
            for c in ordered
        ],
        matched=[c.header for c in ordered if not c.new_field],
        skipped=plan.skipped,
        new=plan.new,
        rows=table.frame.height,
        problems=problems,
        problem_count=count,
        notes=table.notes + [_type_note(c.header, c.plan) for c in ordered if c.new_field],
        rows_updated=None if upserted is None else upserted[0],
        rows_inserted=None if upserted is None else upserted[1],
    )


async def _store_reference(
    session: AsyncSession, item_id: int, upload: SpooledFile
) -> ReferenceFile:
    """The uploaded file, as the item's reference file. Its content type follows the name's
    extension, as the reader's choice of format does (any other extension is refused)."""
    suffix = PurePath(upload.filename).suffix.lower().lstrip(".")
    return await ReferenceFileRepository(session, item_id).store(
        upload.path,
        filename=upload.filename,
        content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
        size=upload.size,
        sha256=upload.sha256,
    )


async def _settle(task: asyncio.Future[Any]) -> None:
    """Wait for `task` to end (the session is free again), whatever its outcome: the error
    that made the caller give up is the one reported."""
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


def _type_note(header: str, plan: ColumnPlan) -> str:
    """Why a column got its type, for the response's notes: "Column 'Zip': char (leading zeros
    (e.g. '02134') keep it text)."."""
    return f"Column {header!r}: {plan.field_type} ({plan.reasons})."
