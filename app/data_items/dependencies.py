"""Path objects resolved for the calling account: another account's item is a 404, like a
missing one, so callers cannot tell the two apart."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.accounts.dependencies import AccountDep
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.data_items.repository import DataItemRepository
from app.models import DataItem

ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Data item id.", examples=[42])]


async def owned_item(item_id: ItemId, session: SessionDep, account: AccountDep) -> DataItem:
    item = await DataItemRepository(session, account.id).get(item_id)
    if item is None:
        raise NotFound(f"Data item {item_id} not found.")
    return item


DataItemDep = Annotated[DataItem, Depends(owned_item)]


async def locked_item(item_id: ItemId, session: SessionDep, account: AccountDep) -> DataItem:
    """The item, for a request that writes to it: locked until the request's transaction ends,
    so writers of one item take turns, and everything read after this (the fields, the row
    count) is what the previous writer committed. Every write path starts here, before it reads
    what it validates against (a type change racing a row write otherwise let the row through
    with the old type)."""
    item = await DataItemRepository(session, account.id).lock(item_id)
    if item is None:
        raise NotFound(f"Data item {item_id} not found.")
    return item


LockedItemDep = Annotated[DataItem, Depends(locked_item)]
