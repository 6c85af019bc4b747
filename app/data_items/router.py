"""Data items: list, create, read, update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response, status

from app.accounts.dependencies import AccountDep, AuthenticatedRoute, caller
from app.core.db import SessionDep
from app.core.deps import EngineDep, RowChangesDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult
from app.data_items import service
from app.data_items.dependencies import DataItemDep, ItemId
from app.data_items.schemas import DataItemCreate, DataItemList, DataItemRead, DataItemUpdate

router = ApiRouter(prefix="/data-items", tags=["data-items"], route_class=AuthenticatedRoute)


@router.get(
    "/",
    response_model=DataItemList,
    summary="List your data items, a page at a time",
    description=(
        "In id order (oldest first). `offset` (default 0) and `limit` (1 to "
        f"{service.MAX_LIST_LIMIT:,}; default {service.MAX_LIST_LIMIT:,}, the most one page "
        "holds) page the list; `total` counts all your items, so `total > offset + "
        "len(data_items)` means there are more: ask again with a higher `offset`."
    ),
    responses=errors(400, 401),
)
async def list_data_items(
    session: SessionDep,
    account: AccountDep,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Items to skip.")] = 0,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=service.MAX_LIST_LIMIT,
            description=f"Items per page, 1 to {service.MAX_LIST_LIMIT:,} (the default).",
        ),
    ] = service.MAX_LIST_LIMIT,
) -> DataItemList:
    return await service.list_items(session, account, offset=offset, limit=limit)


@router.post(
    "/",
    response_model=DataItemRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a data item, optionally with fields",
    responses=errors(400, 401, 413),
)
async def create_data_item(
    payload: DataItemCreate, session: SessionDep, account: AccountDep
) -> DataItemRead:
    return await service.create_item(session, account, payload)


@router.get(
    "/{item_id}/",
    response_model=DataItemRead,
    summary="Get a data item with its fields, reference files and row count",
    responses=errors(400, 401, 404),
)
async def get_data_item(item_id: ItemId, request: Request, engine: EngineDep) -> Response:
    body = await service.read_detail(engine, caller(request), item_id)
    return Response(body, media_type="application/json")


@router.patch(
    "/{item_id}/",
    response_model=DataItemRead,
    summary="Rename or re-describe a data item",
    responses=errors(400, 401, 404),
)
async def update_data_item(
    payload: DataItemUpdate, item: DataItemDep, session: SessionDep, account: AccountDep
) -> DataItemRead:
    return await service.update_item(session, account, item, payload)


@router.delete(
    "/{item_id}/",
    response_model=DeletedResult,
    summary="Delete a data item with its fields, rows, files and widgets",
    responses=errors(400, 401, 404),
)
async def delete_data_item(
    item: DataItemDep, session: SessionDep, account: AccountDep, changes: RowChangesDep
) -> DeletedResult:
    await service.delete_item(session, account, item)
    changes.item_deleted()
    return DeletedResult(deleted=True)
