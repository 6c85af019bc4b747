"""The field named in the path, resolved within an item the caller owns."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.core.db import SessionDep
from app.core.errors import NotFound
from app.data_items.dependencies import DataItemDep, LockedItemDep
from app.fields.repository import FieldRepository
from app.models import Field

FieldId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Field id.", examples=[101])]


async def owned_field(field_id: FieldId, item: DataItemDep, session: SessionDep) -> Field:
    field = await FieldRepository(session, item.id).get(field_id)
    if field is None:
        raise NotFound(f"Field {field_id} not found in data item {item.id}.")
    return field


async def item_fields(item: DataItemDep, session: SessionDep) -> list[Field]:
    """The item's fields in field order."""
    return await FieldRepository(session, item.id).ordered()


ItemFieldsDep = Annotated[list[Field], Depends(item_fields)]


async def locked_field(field_id: FieldId, item: LockedItemDep, session: SessionDep) -> Field:
    """The field named in the path, read after its item is locked (see `locked_item`)."""
    return await owned_field(field_id, item, session)


LockedFieldDep = Annotated[Field, Depends(locked_field)]


async def locked_item_fields(item: LockedItemDep, session: SessionDep) -> list[Field]:
    """The item's fields in field order, read after the item is locked: what a write checks
    its values against."""
    return await FieldRepository(session, item.id).ordered()


LockedFieldsDep = Annotated[list[Field], Depends(locked_item_fields)]
