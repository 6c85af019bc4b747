"""Fields of a data item: list, add, change, delete."""

from __future__ import annotations

from fastapi import status

from app.accounts.dependencies import AuthenticatedRoute
from app.core.db import SessionDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult
from app.data_items.dependencies import DataItemDep, LockedItemDep
from app.fields import service
from app.fields.dependencies import LockedFieldDep
from app.fields.schemas import FieldCreate, FieldList, FieldRead, FieldUpdate

router = ApiRouter(
    prefix="/data-items/{item_id}/fields", tags=["fields"], route_class=AuthenticatedRoute
)


@router.get(
    "/",
    response_model=FieldList,
    summary="List the fields of a data item, in field order",
    responses=errors(400, 401, 404),
)
async def list_fields(item: DataItemDep, session: SessionDep) -> FieldList:
    return await service.field_list(session, item)


@router.post(
    "/",
    response_model=FieldRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a field",
    responses=errors(400, 401, 404),
)
async def create_field(payload: FieldCreate, item: LockedItemDep, session: SessionDep) -> FieldRead:
    return await service.create_field(session, item, payload)


@router.patch(
    "/{field_id}/",
    response_model=FieldRead,
    summary="Change a field's label, type, order, required flag or instructions",
    description=(
        "Changing `field_type` converts every stored value in one statement. If some values "
        "cannot convert, the request is a 400 that says how many and shows the first few, and "
        "nothing changes."
    ),
    responses=errors(400, 401, 404),
)
async def update_field(
    payload: FieldUpdate, item: LockedItemDep, field: LockedFieldDep, session: SessionDep
) -> FieldRead:
    return await service.update_field(session, item, field, payload)


@router.delete(
    "/{field_id}/",
    response_model=DeletedResult,
    summary="Delete a field and its values in every row",
    responses=errors(400, 401, 404),
)
async def delete_field(
    item: LockedItemDep, field: LockedFieldDep, session: SessionDep
) -> DeletedResult:
    await service.delete_field(session, item, field)
    return DeletedResult(deleted=True)
