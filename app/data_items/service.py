"""Data-item rules: creation with fields (and the item's row partition), details, updates, deletes."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.db import long_statements
from app.core.errors import NotFound
from app.core.reads import read_connection
from app.core.schemas import timestamp_text
from app.data_items import repository
from app.data_items.repository import DataItemRepository
from app.data_items.schemas import (
    DataItemCreate,
    DataItemList,
    DataItemListEntry,
    DataItemRead,
    DataItemUpdate,
    ReferenceFileRead,
)
from app.fields import service as fields_service
from app.fields.schemas import FieldRead
from app.models import DataItem
from app.rows import service as rows_service
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import WebhookEvent

# The most items one page of GET /data-items/ holds, and its size when no `limit` is given: an
# account with more sees `total` above what came back and pages on with `offset`.
MAX_LIST_LIMIT = 1000


async def list_items(
    session: AsyncSession, account: AuthenticatedAccount, *, offset: int, limit: int
) -> DataItemList:
    rows, total = await DataItemRepository(session, account.id).list_with_field_counts(
        offset=offset, limit=limit, only=account.data_items
    )
    return DataItemList(
        total=total,
        offset=offset,
        limit=limit,
        data_items=[
            DataItemListEntry(
                id=item.id,
                data_name=item.data_name,
                data_description=item.data_description,
                field_count=count,
                created_at=item.created_at,
                updated_at=item.updated_at,
            )
            for item, count in rows
        ],
    )


async def create_item(
    session: AsyncSession, account: AuthenticatedAccount, payload: DataItemCreate
) -> DataItemRead:
    item = await DataItemRepository(session, account.id).add(
        data_name=payload.data_name, data_description=payload.data_description
    )
    if payload.fields:
        await fields_service.create_fields(session, item, payload.fields)
    await rows_service.create_rows_table(session, item.id)
    await webhooks_service.emit(
        session,
        account_id=account.id,
        event=WebhookEvent.DATA_ITEM_CREATED,
        data={"data_item": await webhooks_service.item_data(session, item)},
    )
    return await detail(session, account, item)


async def add_item(
    session: AsyncSession, account: AuthenticatedAccount, *, data_name: str, data_description: str
) -> DataItem:
    """A bare item, for the paths that build its fields and rows themselves (a file, a bundle,
    a copy): no fields, no partition, no event yet."""
    return await DataItemRepository(session, account.id).add(
        data_name=data_name, data_description=data_description
    )


async def get_item(session: AsyncSession, account_id: int, item_id: int) -> DataItem | None:
    """The account's item, or None (another account's included)."""
    return await DataItemRepository(session, account_id).get(item_id)


async def detail(
    session: AsyncSession, account: AuthenticatedAccount, item: DataItem
) -> DataItemRead:
    repo = DataItemRepository(session, account.id)
    await session.refresh(item)  # counters and timestamps may have moved in this transaction
    fields = await fields_service.list_fields(session, item)
    files = await repo.reference_files(item.id)
    return DataItemRead(
        id=item.id,
        data_name=item.data_name,
        data_description=item.data_description,
        created_at=item.created_at,
        updated_at=item.updated_at,
        fields=[FieldRead.model_validate(f) for f in fields],
        reference_files=[ReferenceFileRead.model_validate(f) for f in files],
        row_count=item.row_count,
    )


async def read_detail(engine: AsyncEngine, account: AuthenticatedAccount, item_id: int) -> bytes:
    """`GET /data-items/{id}/` as JSON, from one statement: the document `detail` gives
    (`DataItemRead`), written directly; tests/data_items/test_detail_document.py holds the two
    to the same bytes."""
    async with read_connection(engine, reuse_plans=True) as conn:
        row = await repository.read_detail(conn, account.id, item_id)
    if row is None:
        raise NotFound(f"Data item {item_id} not found.")
    fields = ",".join(
        f'{{"id":{f[0]},"field_label":{_text(f[1])},"field_type":{_text(f[2])},'
        f'"field_order":{f[3]},"field_required":{"true" if f[4] else "false"},'
        f'"field_instructions":{_text(f[5])}}}'
        for f in row["fields"]
    )
    files = ",".join(
        f'{{"id":{r[0]},"filename":{_text(r[1])},"created_at":{_timestamp(r[2])}}}'
        for r in row["files"]
    )
    return (
        f'{{"id":{row["id"]},"data_name":{_text(row["data_name"])},'
        f'"data_description":{_text(row["data_description"])},'
        f'"created_at":{_timestamp(row["created_at"])},'
        f'"updated_at":{_timestamp(row["updated_at"])},'
        f'"fields":[{fields}],"reference_files":[{files}],"row_count":{row["row_count"]}}}'
    ).encode()


# What pydantic writes for a str (the same escapes as json.dumps(..., ensure_ascii=False)) and
# for a `Timestamp`.
_text = json.encoder.encode_basestring


def _timestamp(value: datetime) -> str:
    return _text(timestamp_text(value))


async def update_item(
    session: AsyncSession, account: AuthenticatedAccount, item: DataItem, payload: DataItemUpdate
) -> DataItemRead:
    changes = payload.model_dump(exclude_unset=True)
    if changes:
        item = await DataItemRepository(session, account.id).update(item, changes)
    return await detail(session, account, item)


async def delete_item(session: AsyncSession, account: AuthenticatedAccount, item: DataItem) -> None:
    """Deletes the item with its fields, files, widgets (cascades). Its row partition becomes an
    orphan, dropped after the commit by `partitions.drop_orphan_partitions`.

    The event is written last: `emit` takes the account's webhook delivery lock until the
    commit, and the delete waits for the item's row, which an append holds while it runs (and
    then emits): emitting first could deadlock with it."""
    await long_statements(session)  # (the reference files' chunks go with it)
    data = {"data_item": await webhooks_service.item_data(session, item)}
    await DataItemRepository(session, account.id).delete(item.id)
    await webhooks_service.emit(
        session, account_id=account.id, event=WebhookEvent.DATA_ITEM_DELETED, data=data
    )
