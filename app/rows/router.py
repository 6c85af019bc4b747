"""Rows of a data item: list and search, create (one or in bulk), read, patch and delete (one,
or many by refs or a filter)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, status

from app.accounts.dependencies import AuthenticatedRoute, caller
from app.core.db import SessionDep, request_session
from app.core.deps import EngineDep, RowChangesDep, SettingsDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.data_items.dependencies import DataItemDep, ItemId, LockedItemDep, owned_item
from app.fields.dependencies import ItemFieldsDep, LockedFieldsDep, item_fields
from app.rows import bulk_change, service
from app.rows.params import FilterParam, SearchParam, SortParam
from app.rows.schemas import (
    BulkCreated,
    BulkDeleted,
    BulkUpdated,
    RowBulkCreate,
    RowBulkDelete,
    RowBulkUpdate,
    RowCreated,
    RowDeleted,
    RowList,
    RowRead,
    RowUpdated,
    RowValues,
)

router = ApiRouter(
    prefix="/data-items/{item_id}/rows", tags=["rows"], route_class=AuthenticatedRoute
)

RowRef = Annotated[str, Path(description="The row's `_row_ref`.", examples=["0"], max_length=40)]


@router.get(
    "/",
    response_model=RowList,
    response_class=ExactJSONResponse,
    summary="List rows, optionally searched, filtered and sorted",
    description=(
        "`search` matches rows any of whose cells contains the text, ignoring case (as the value "
        "is shown: `45200.5`, `2026-01-15`, `true`); `%` and `_` are literal. `filter` keeps the "
        "rows that match a filter (URL-encoded JSON, the shape of a widget's `filter_config`: "
        '`{"match": "all", "conditions": [{"field": 102, "op": "gt", "value": 1000}]}`). '
        "`sort` orders by field ids, `-` for descending, comma-separated (`sort=102,-103`): "
        "decimals numerically, dates chronologically, text by code point, empty cells last; "
        "`_row_ref` breaks ties (the order without `sort`). They combine with each other and with "
        "paging; `total` counts the matching rows."
    ),
    responses=errors(400, 401, 404),
)
async def list_rows(
    item_id: ItemId,
    request: Request,
    engine: EngineDep,
    offset: Annotated[int, Query(description="Rows to skip (0 or more).")] = 0,
    limit: Annotated[int, Query(description="Rows per page, 1 to 500.")] = 100,
    search: SearchParam = None,
    filter_json: FilterParam = None,
    sort: SortParam = None,
) -> ExactJSONResponse:
    account = caller(request)
    if not search and not filter_json and not sort:  # one statement, no transaction
        page = await service.read_page(engine, account.id, item_id, offset=offset, limit=limit)
        return ExactJSONResponse(page)
    async with request_session(request) as session:
        item = await owned_item(item_id, session, account)
        fields = await item_fields(item, session)
        body = await service.list_rows(
            session,
            item,
            fields,
            offset=offset,
            limit=limit,
            search=search,
            filter_json=filter_json,
            sort=sort,
        )
    return ExactJSONResponse(body)


@router.post(
    "/",
    response_model=RowCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a row",
    responses=errors(400, 401, 404, 413),
)
async def create_row(
    payload: RowValues,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    session: SessionDep,
    changes: RowChangesDep,
) -> RowCreated:
    ref, cells = await service.create_row(session, item, fields, payload.values)
    changes.item_changed(item.id)
    return RowCreated(row_ref=str(ref), cells_created=cells)


@router.post(
    "/bulk/",
    response_model=BulkCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create many rows at once (all or nothing)",
    description=(
        "Every row is checked first; if any is invalid the request is a 400 whose `details` name "
        "each problem (row index, field, value) and nothing is written. At most MAX_BULK_ROWS "
        "rows per request (default 10,000). With `key_fields`, an upsert: rows matching one "
        "existing row on those fields update it, the others are created."
    ),
    responses=errors(400, 401, 404, 413),
)
async def bulk_create(
    payload: RowBulkCreate,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    session: SessionDep,
    settings: SettingsDep,
    changes: RowChangesDep,
) -> BulkCreated:
    if payload.key_fields:
        counts = await service.bulk_upsert(
            session, item, fields, payload.rows, payload.key_fields, max_rows=settings.max_bulk_rows
        )
        changes.item_changed(item.id)
        return BulkCreated(
            rows_created=counts.rows_inserted,
            cells_created=counts.cells_created,
            rows_inserted=counts.rows_inserted,
            rows_updated=counts.rows_updated,
            cells_updated=counts.cells_updated,
        )
    created, cells = await service.bulk_create(
        session, item, fields, payload.rows, max_rows=settings.max_bulk_rows
    )
    changes.item_changed(item.id)
    return BulkCreated(rows_created=created, cells_created=cells, rows_inserted=created)


@router.patch(
    "/",
    response_model=BulkUpdated,
    summary="Change the same cells of many rows (by refs, a filter, or all)",
    description=(
        "Sets `values` (read as `PATCH …/rows/{row_ref}/` reads them; null empties a cell) on "
        "every row that `row_refs` (at most MAX_BULK_ROWS) or `filter` (the filter of `GET "
        '…/rows/`, as a JSON object) selects, or on every row with `"all": true`. A filter that '
        'matches every row needs `"all": true` as well. One statement, all or nothing; the '
        "counts say what changed (a row that already held the values is matched, not updated)."
    ),
    responses=errors(400, 401, 404, 413),
)
async def bulk_update(
    payload: RowBulkUpdate,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    session: SessionDep,
    settings: SettingsDep,
    changes: RowChangesDep,
) -> BulkUpdated:
    result = await bulk_change.update_rows(
        session, item, fields, payload, max_refs=settings.max_bulk_rows
    )
    changes.item_changed(item.id, loaded=bulk_change.worth_vacuum(result.rows_updated))
    return result


@router.delete(
    "/",
    response_model=BulkDeleted,
    summary="Delete many rows (by refs, a filter, or all)",
    description=(
        "Deletes the rows that `row_refs` (at most MAX_BULK_ROWS) or `filter` selects, or every "
        'row with `"all": true`. A filter that matches every row needs `"all": true` as well. '
        "One statement, all or nothing; refs are never reused."
    ),
    responses=errors(400, 401, 404, 413),
)
async def bulk_delete(
    payload: RowBulkDelete,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    session: SessionDep,
    settings: SettingsDep,
    changes: RowChangesDep,
) -> BulkDeleted:
    result = await bulk_change.delete_rows(
        session, item, fields, payload, max_refs=settings.max_bulk_rows
    )
    changes.item_changed(item.id, loaded=bulk_change.worth_vacuum(result.rows_deleted))
    return result


@router.get(
    "/{row_ref}/",
    response_model=RowRead,
    response_class=ExactJSONResponse,
    summary="Get one row",
    responses=errors(400, 401, 404),
)
async def get_row(
    row_ref: RowRef, item: DataItemDep, fields: ItemFieldsDep, session: SessionDep
) -> ExactJSONResponse:
    row = await service.get_row(session, item, fields, row_ref)
    return ExactJSONResponse(f'{{"row":{row}}}')


@router.patch(
    "/{row_ref}/",
    response_model=RowUpdated,
    summary="Change some cells of a row (null empties a cell)",
    responses=errors(400, 401, 404, 413),
)
async def patch_row(
    row_ref: RowRef,
    payload: RowValues,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    session: SessionDep,
    changes: RowChangesDep,
) -> RowUpdated:
    ref, updated, created = await service.patch_row(session, item, fields, row_ref, payload.values)
    changes.item_changed(item.id)
    return RowUpdated(row_ref=str(ref), cells_updated=updated, cells_created=created)


@router.delete(
    "/{row_ref}/",
    response_model=RowDeleted,
    summary="Delete a row (its ref is never reused)",
    responses=errors(400, 401, 404),
)
async def delete_row(
    row_ref: RowRef,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    session: SessionDep,
    changes: RowChangesDep,
) -> RowDeleted:
    removed = await service.delete_row(session, item, fields, row_ref)
    changes.item_changed(item.id)
    return RowDeleted(deleted=True, cells_removed=removed)
