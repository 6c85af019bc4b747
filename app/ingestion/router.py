"""File uploads (create an item from a file, append a file's rows) and reference file downloads."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import (
    DownloadsDep,
    EngineDep,
    IngestionSlotsDep,
    RequestIdDep,
    RowChangesDep,
    RowMaintenanceDep,
    SettingsDep,
    UploadTurnsDep,
)
from app.core.downloads import download_response
from app.core.errors import BadRequest, ErrorCode, NotFound
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import text_problem
from app.data_items.dependencies import DataItemDep
from app.ingestion import service
from app.ingestion.dependencies import UploadFormDep
from app.ingestion.options import UploadOptions, parse_options
from app.ingestion.repository import ReferenceFileRepository, stream_chunks
from app.ingestion.results import append_preview, append_result, create_preview, create_result
from app.ingestion.schemas import (
    AppendFromFileResult,
    AppendPreview,
    CreateFromFileResult,
    CreatePreview,
)
from app.ingestion.upload import FILE_FIELD, SpooledFile, UploadForm
from app.jobs import service as jobs_service
from app.jobs.dependencies import AsyncFlag
from app.jobs.http import ACCEPTED_RESPONSES, accepted

router = ApiRouter(prefix="/data-items", tags=["files"], route_class=AuthenticatedRoute)

ACCEPTED = "a .csv, .tsv, .xlsx, .xls, .ods, .json, .ndjson or .jsonl file"


def _multipart(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }


_FILE = {
    "type": "string",
    "format": "binary",
    "description": (
        f"{ACCEPTED}; the first row is the header (JSON: an array of objects, or one object "
        "per line; the keys are the headers)."
    ),
}
_SHEET = {
    "type": "string",
    "description": (
        "Workbooks (.xlsx, .xls, .ods) only: the sheet to read, by name or 0-based index "
        "(default: the first)."
    ),
}


def _text(
    form: UploadForm, name: str, *, required: bool = False, max_length: int = 255
) -> str | None:
    value = form.fields.get(name)
    if value is None or (required and not value.strip()):
        if required:
            raise BadRequest(
                f"The form field `{name}` is required.",
                details=[{"field": name, "message": "is required"}],
            )
        return None
    if problem := text_problem(value):
        raise BadRequest(f"`{name}` {problem}.", details=[{"field": name, "message": problem}])
    if len(value) > max_length:
        raise BadRequest(f"`{name}` is longer than {max_length} characters.")
    return value


DryRun = Annotated[
    bool,
    Query(
        description=(
            "`true`: answer 200 with what the upload would do (fields and types, rows, the "
            "values that would fail it) and write nothing: no item, no rows, no stored file."
        ),
    ),
]

_FIELD_TYPES = {
    "type": "string",
    "description": (
        "JSON object, file header -> field type (char, text, decimal, date, boolean): the "
        "column gets this type instead of an inferred one. A value that does not fit is a 400 "
        "naming row, column and value. char/text keep values exactly as written (leading "
        "zeros, inner spaces). On append: for columns that get a new field."
    ),
    "example": '{"Zip": "char", "Amount": "decimal"}',
}
_COLUMN_MAP = {
    "type": "string",
    "description": (
        "JSON object, file header -> field id of this item, or null to skip the column. "
        "Takes precedence over matching headers to labels; other columns are matched as usual."
    ),
    "example": '{"Amount (EUR)": 102, "Internal notes": null}',
}


_CREATE_FIELDS = frozenset(
    {"data_name", "data_description", "sheet", "field_types", "column_map", "key_fields"}
)
_APPEND_FIELDS = frozenset({"add_new_fields", "sheet", "field_types", "column_map", "key_fields"})
_QUERY_PARAMETERS = frozenset({"dry_run", "async"})


def _only_known_fields(form: UploadForm, known: frozenset[str]) -> None:
    """A form field the endpoint does not read is a 400, not ignored: `dry_run=true` sent in
    the form instead of the query would otherwise load the file for real."""
    unknown = sorted(set(form.fields) - known)
    if not unknown:
        return
    name = unknown[0]
    hint = (
        f" `{name}` is a query parameter: send it in the URL (`?{name}=true`)."
        if name in _QUERY_PARAMETERS
        else f" The form fields are {', '.join(f'`{k}`' for k in sorted(known))} and the file."
    )
    raise BadRequest(
        f"Unknown form field `{name}`; nothing was done.{hint}",
        details=[{"field": n, "message": "unknown form field"} for n in unknown],
    )


def _options(form: UploadForm, *, append: bool) -> UploadOptions:
    _only_known_fields(form, _APPEND_FIELDS if append else _CREATE_FIELDS)
    if not append:
        for name in ("column_map", "key_fields"):
            if form.fields.get(name, "").strip():
                raise BadRequest(
                    f"`{name}` applies to append-from-file only: a new item has no fields yet.",
                    details=[{"field": name, "message": "not allowed here"}],
                )
        return parse_options(form.fields.get("field_types"))
    return parse_options(
        form.fields.get("field_types"), form.fields.get("column_map"), form.fields.get("key_fields")
    )


def _no_async_dry_run(run_async: bool, dry_run: bool) -> None:
    if run_async and dry_run:
        raise BadRequest(
            "`async=true` and `dry_run=true` cannot be combined: a dry run answers at once.",
            details=[{"field": "dry_run", "message": "conflicts with async"}],
        )


def _spooled(form: UploadForm) -> SpooledFile:
    if form.file is None:
        raise BadRequest(
            f"Send the file in the form field `{FILE_FIELD}` ({ACCEPTED}).",
            details=[{"field": FILE_FIELD, "message": "is required"}],
        )
    if form.file.size == 0:
        raise BadRequest(
            "The uploaded file is empty.",
            code=ErrorCode.INVALID_FILE,
            details=[{"field": FILE_FIELD, "message": "is empty"}],
        )
    return form.file


@router.post(
    "/create-from-file/",
    response_model=CreateFromFileResult,
    status_code=status.HTTP_201_CREATED,
    summary="Create a data item from a CSV, TSV, Excel, OpenDocument or JSON file",
    description=(
        "Fields come from the header row, in file order, each typed from its column's content "
        "(see docs/api-guide.md, type inference). The file is kept as the item's reference "
        "file. All or nothing: a file that cannot be read is a 400 and nothing is created."
    ),
    responses={
        200: {"model": CreatePreview, "description": "`dry_run=true`: what would be created."},
        **errors(400, 401, 413),
        **ACCEPTED_RESPONSES,
    },
    openapi_extra=_multipart(
        {
            "data_name": {"type": "string", "maxLength": 255},
            "data_description": {"type": "string"},
            FILE_FIELD: _FILE,
            "sheet": _SHEET,
            "field_types": _FIELD_TYPES,
        },
        ["data_name", FILE_FIELD],
    ),
)
async def create_from_file(
    request: Request,
    form: UploadFormDep,
    session: SessionDep,
    account: AccountDep,
    settings: SettingsDep,
    slots: IngestionSlotsDep,
    turns: UploadTurnsDep,
    changes: RowChangesDep,
    request_id: RequestIdDep,
    run_async: AsyncFlag = False,
    dry_run: DryRun = False,
) -> CreateFromFileResult | Response:
    _no_async_dry_run(run_async, dry_run)
    name = _text(form, "data_name", required=not dry_run)
    description = _text(form, "data_description", max_length=10_000) or ""
    options = _options(form, append=False)
    upload = _spooled(form)
    if dry_run:
        async with turns.hold(account.id), slots:
            preview = await service.preview_create(
                upload=upload, sheet=_text(form, "sheet"), settings=settings, options=options
            )
        return ExactJSONResponse(create_preview(preview).model_dump())
    assert name is not None
    if run_async:
        job = await jobs_service.enqueue_create(
            session,
            account,
            data_name=name.strip(),
            data_description=description,
            sheet=_text(form, "sheet"),
            upload=upload,
            request_id=request_id,
            max_pending=settings.job_max_pending_per_account,
            options=options,
        )
        return accepted(request, job)
    async with turns.hold(account.id), slots:
        outcome = await service.create_from_file(
            session,
            account,
            data_name=name.strip(),
            data_description=description,
            upload=upload,
            sheet=_text(form, "sheet"),
            settings=settings,
            options=options,
        )
    changes.item_changed(outcome.item.id, loaded=True)
    return create_result(outcome)


@router.post(
    "/{item_id}/append-from-file/",
    response_model=AppendFromFileResult,
    summary="Append a file's rows to a data item",
    description=(
        "Columns match fields by header, ignoring case and surrounding spaces; unmatched columns "
        "are skipped unless `add_new_fields` is `true` (then fields are created, typed from their "
        "content). A value that does not fit its field's type fails the whole upload with a 400 "
        "naming row (as in the file), column and value (up to 20 problems listed); nothing is "
        "appended."
    ),
    responses={
        200: {
            "model": AppendPreview,
            "description": "The append's result, or with `dry_run=true` what it would do.",
        },
        **errors(400, 401, 404, 413),
        **ACCEPTED_RESPONSES,
    },
    openapi_extra=_multipart(
        {
            FILE_FIELD: _FILE,
            "add_new_fields": {"type": "string", "enum": ["true", "false"], "default": "false"},
            "sheet": _SHEET,
            "field_types": _FIELD_TYPES,
            "column_map": _COLUMN_MAP,
            "key_fields": {
                "type": "string",
                "description": (
                    "JSON array of field ids: an upsert. A row whose values in these fields "
                    "match one existing row updates that row's cells from the file's columns "
                    "(an empty cell empties it); the other rows are appended. A key repeated "
                    "in the file, or matching several rows, is a 400; text matches exactly, "
                    "numbers by value."
                ),
                "example": "[101]",
            },
        },
        [FILE_FIELD],
    ),
)
async def append_from_file(
    request: Request,
    item: DataItemDep,
    form: UploadFormDep,
    session: SessionDep,
    account: AccountDep,
    settings: SettingsDep,
    slots: IngestionSlotsDep,
    turns: UploadTurnsDep,
    maintenance: RowMaintenanceDep,
    changes: RowChangesDep,
    request_id: RequestIdDep,
    run_async: AsyncFlag = False,
    dry_run: DryRun = False,
) -> AppendFromFileResult | Response:
    _no_async_dry_run(run_async, dry_run)
    flag = (_text(form, "add_new_fields") or "false").strip().lower()
    if flag not in ("true", "false"):
        raise BadRequest('`add_new_fields` must be "true" or "false".')
    options = _options(form, append=True)
    upload = _spooled(form)
    if dry_run:
        async with turns.hold(account.id), slots:
            preview = await service.preview_append(
                session,
                item,
                upload=upload,
                add_new_fields=flag == "true",
                sheet=_text(form, "sheet"),
                settings=settings,
                options=options,
            )
        return ExactJSONResponse(append_preview(preview).model_dump())
    if run_async:
        job = await jobs_service.enqueue_append(
            session,
            account,
            item,
            add_new_fields=flag == "true",
            sheet=_text(form, "sheet"),
            upload=upload,
            request_id=request_id,
            max_pending=settings.job_max_pending_per_account,
            options=options,
        )
        return accepted(request, job)
    async with turns.hold(account.id), slots:
        outcome = await service.append_from_file(
            session,
            item,
            upload=upload,
            add_new_fields=flag == "true",
            sheet=_text(form, "sheet"),
            settings=settings,
            maintenance=maintenance,
            options=options,
        )
    changes.item_changed(item.id, loaded=True)
    return append_result(outcome)


FileId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Reference file id.", examples=[7])]


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/{item_id}/reference-files/{file_id}/",
    summary="Download a file the item was loaded from",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in (*service.CONTENT_TYPES.values(), "application/octet-stream")
            },
            "description": "The file, as uploaded, with the content type of its format.",
        },
        **errors(400, 401, 404),
    },
)
async def download_reference_file(
    file_id: FileId,
    item: DataItemDep,
    session: SessionDep,
    account: AccountDep,
    engine: EngineDep,
    downloads: DownloadsDep,
) -> StreamingResponse:
    ref = await ReferenceFileRepository(session, item.id).get(file_id)
    if ref is None:
        raise NotFound(f"Reference file {file_id} not found in data item {item.id}.")
    return await download_response(
        downloads,
        session,
        account.id,
        stream_chunks(engine, ref.id, account.id),
        media_type=ref.content_type,
        headers={
            "Content-Disposition": _disposition(ref.filename),
            "Content-Length": str(ref.size_bytes),
            "X-Content-SHA256": ref.sha256,
        },
    )
