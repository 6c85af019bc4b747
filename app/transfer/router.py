"""Export an item's rows, copy an item, and move items between deployments as bundles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query, status
from fastapi.responses import StreamingResponse

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.config import spool_dir
from app.core.db import SessionDep
from app.core.deps import (
    DownloadsDep,
    EngineDep,
    IngestionSlotsDep,
    RowChangesDep,
    SettingsDep,
    XlsxSlotsDep,
)
from app.core.downloads import download_response
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.data_items.dependencies import DataItemDep
from app.data_items.schemas import DataItemRead
from app.fields.dependencies import ItemFieldsDep
from app.rows.params import FilterParam, SearchParam, SortParam
from app.transfer import service
from app.transfer.dependencies import BUNDLE_FILE_FIELD, BundleSourceDep
from app.transfer.schemas import Bundle, CopyRequest, ExportFormat

router = ApiRouter(prefix="/data-items", tags=["transfer"], route_class=AuthenticatedRoute)

_EXPORT_DESCRIPTION = """
The item's rows as a file, streamed (a million rows export in bounded memory). `search`,
`filter` and `sort` select and order the rows exactly as on `GET …/rows/`; without `sort`, rows
come in row-ref order. Headers are the field labels, in field order. The file is named after the
item (`Content-Disposition`, with an RFC 5987 `filename*` for non-ASCII names).

- **csv** (default): UTF-8 without a byte order mark (what programs and `create-from-file`
  expect; `bom=true` adds one for Excel, which otherwise reads UTF-8 as a legacy code page),
  RFC 4180 (comma, CRLF, quotes only where needed). Cells are the stored values as text:
  exact decimals in canonical form (`45200.5`, `12345678901234567890`), dates
  `YYYY-MM-DD[THH:MM:SS[.ffffff]]`, `true`/`false`, empty cells empty.
  `escape_formulas=true` puts `'` before every char or text cell, and label, that starts with
  `=`, `+`, `-`, `@`, tab or CR, so a spreadsheet shows `=HYPERLINK(…)` instead of running it.
  It is on by default with `bom=true` (a file meant for Excel) and off otherwise, so the plain
  export is the stored text and round-trips exactly. Decimals, dates and booleans are never
  escaped (`-5` in a decimal field is a number to a spreadsheet, not a formula); the price is
  that escaped text reads back with its `'` (`'-5`, `'+44 20 7946 0000` in a char field) in
  programs and in `create-from-file`. xlsx text cells are never formulas.
- **xlsx**: one sheet, header row frozen. Decimals are numbers when Excel holds them exactly
  (15 significant digits at most), text otherwise; dates are Excel dates (a column Excel cannot
  give back exactly, with dates before 1900-03-01, sub-millisecond times or an explicit
  midnight, is ISO text); booleans are TRUE/FALSE; text is text. Over Excel's limits
  (1,048,575 rows, 16,384 columns, 32,767 characters in a cell) the export is a 400.
- **json**: an array of objects keyed by field label (labels are what a person or a
  spreadsheet knows a column by, and are unique in an item; ids mean nothing outside this
  deployment), every label present, in field order, `null` where empty; exact numbers.

Exporting then creating an item from the csv or xlsx file gives back the same labels, types and
values (see docs/api-guide.md, round trips).
"""

_EXPORT_CONTENT: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}, "example": "Region,Revenue\r\nNorth,45200.5\r\n"},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}
    },
    "application/json": {
        "schema": {"type": "array", "items": {"type": "object"}},
        "example": [{"Region": "North", "Revenue": 45200.5}],
    },
}


@router.get(
    "/{item_id}/export/",
    summary="Export the rows as CSV, xlsx or JSON",
    description=_EXPORT_DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {"content": _EXPORT_CONTENT, "description": "The file."},
        **errors(400, 401, 404),
    },
)
async def export_rows(
    item: DataItemDep,
    fields: ItemFieldsDep,
    session: SessionDep,
    account: AccountDep,
    engine: EngineDep,
    settings: SettingsDep,
    downloads: DownloadsDep,
    xlsx_slots: XlsxSlotsDep,
    export_format: Annotated[
        ExportFormat, Query(alias="format", description="csv (default), xlsx or json.")
    ] = ExportFormat.CSV,
    search: SearchParam = None,
    filter_json: FilterParam = None,
    sort: SortParam = None,
    bom: Annotated[
        bool, Query(description="csv only: start with a UTF-8 byte order mark (for Excel).")
    ] = False,
    escape_formulas: Annotated[
        bool | None,
        Query(
            description=(
                "csv only: put `'` before a char or text cell (or a label) that starts with "
                "`=`, `+`, `-`, `@`, tab or CR, so a spreadsheet shows it instead of running "
                "it. Default: on with `bom=true` (an export for Excel), off otherwise."
            )
        ),
    ] = None,
) -> StreamingResponse:
    download = await service.export_rows(
        session,
        account,
        item,
        fields,
        engine=engine,
        export_format=export_format,
        search=search,
        filter_json=filter_json,
        sort=sort,
        bom=bom,
        escape_formulas=escape_formulas,
        workdir=spool_dir(settings),
        xlsx_slots=xlsx_slots,
    )
    return await download_response(
        downloads,
        session,
        account.id,
        download.body,
        media_type=download.media_type,
        headers=download.headers,
    )


@router.post(
    "/{item_id}/copy/",
    response_model=DataItemRead,
    status_code=status.HTTP_201_CREATED,
    summary="Copy a data item: fields, rows, statistics, widgets and series",
    description=(
        "One transaction: new ids for the item, its fields, widgets and series; the same row "
        "refs (and the same next row ref), values, field order, types and flags; widgets and "
        'their filters point at the new fields. The body is optional: `data_name` (default "'
        "<name> (copy)\"), `data_description` (default: the original's), "
        "`include_reference_files` (default false: the copy starts without the original's "
        "uploaded files). The copy and the original are independent from then on."
    ),
    responses=errors(400, 401, 404, 413),
)
async def copy_data_item(
    item: DataItemDep,
    session: SessionDep,
    account: AccountDep,
    changes: RowChangesDep,
    payload: Annotated[CopyRequest | None, Body()] = None,
) -> DataItemRead:
    copy = await service.copy_item(session, account, item, payload)
    changes.item_changed(copy.id, loaded=True)
    return copy


@router.get(
    "/{item_id}/bundle/",
    response_model=Bundle,
    summary="Export the item as a bundle (fields, rows, widgets) for another deployment",
    description=(
        "One JSON document, streamed from one consistent snapshot: `format` "
        '("data-items-bundle"), `version` (1), `item`, `fields` (with their ids here), '
        "`widgets` (with their series, in the shape POST …/widgets/ takes) and `rows` (last; "
        "keyed by those field ids as on GET …/rows/, empty cells left out). Numbers are exact. "
        "POST …/import-bundle/ on any deployment creates an item from it. Reference files are "
        "not included."
    ),
    responses=errors(400, 401, 404),
)
async def export_bundle(
    item: DataItemDep,
    account: AccountDep,
    session: SessionDep,
    engine: EngineDep,
    downloads: DownloadsDep,
) -> StreamingResponse:
    download = service.bundle_download(engine, account, item)
    return await download_response(
        downloads,
        session,
        account.id,
        download.body,
        media_type=download.media_type,
        headers=download.headers,
    )


_BUNDLE_REF = {"$ref": "#/components/schemas/Bundle"}


@router.post(
    "/import-bundle/",
    response_model=DataItemRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a data item from a bundle",
    description=(
        "The bundle is the JSON body (up to MAX_JSON_BYTES, 32 MiB by default) or, for bigger "
        "ones, the file `bundle_file` of a multipart/form-data upload (up to MAX_UPLOAD_BYTES; "
        "read as a stream). Validated like any other input: the format and version, every "
        "field, widget and series, each widget's references to bundle fields, and every row "
        "value through its field's type (row index, field and value named). Fields get new "
        "ids; rows keep their refs. All or nothing: a bad bundle is a 400 and nothing is "
        "created. `data_name` renames the new item."
    ),
    responses=errors(400, 401, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _BUNDLE_REF},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            BUNDLE_FILE_FIELD: {
                                "type": "string",
                                "format": "binary",
                                "description": "A bundle as GET …/bundle/ returns it.",
                            }
                        },
                        "required": [BUNDLE_FILE_FIELD],
                    }
                },
            },
        }
    },
)
async def import_bundle(
    source: BundleSourceDep,
    session: SessionDep,
    account: AccountDep,
    settings: SettingsDep,
    slots: IngestionSlotsDep,
    changes: RowChangesDep,
    data_name: Annotated[
        str | None,
        Query(max_length=255, description="The new item's name (default: the bundle's)."),
    ] = None,
) -> DataItemRead:
    async with slots:
        item = await service.import_bundle(
            session, account, source, data_name=data_name, max_rows=settings.max_upload_rows
        )
    changes.item_changed(item.id, loaded=True)
    return item
