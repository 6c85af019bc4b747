"""Data-item queries, always scoped to the calling account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import sql
from app.models import DataItem, Field, ReferenceFile


class DataItemRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    def _scoped(self) -> Select[DataItem]:
        return select(DataItem).where(DataItem.account_id == self.account_id)

    async def list_with_field_counts(
        self, *, offset: int, limit: int, only: frozenset[int] | None = None
    ) -> tuple[list[tuple[DataItem, int]], int]:
        """One page of the account's items in id order (`only`: of these), each with its field
        count, and how many items the account has (counted in the same statement, so page and
        total agree)."""
        page = (
            select(DataItem.id, func.count().over().label("total"))
            .where(
                DataItem.account_id == self.account_id,
                *([] if only is None else [DataItem.id.in_(sorted(only))]),
            )
            .order_by(DataItem.id)
            .offset(offset)
            .limit(limit)
            .subquery()
        )
        field_count = (
            select(func.count(Field.id))
            .where(Field.data_item_id == DataItem.id)
            .correlate(DataItem)
            .scalar_subquery()
        )
        stmt = (
            select(DataItem, field_count, page.c.total)
            .join(page, page.c.id == DataItem.id)
            .order_by(DataItem.id)
        )
        rows = (await self.session.execute(stmt)).all()
        total = int(rows[0][2]) if rows else (await self.count() if offset else 0)
        return [(item, int(count)) for item, count, _ in rows], total

    async def get(self, item_id: int, *, for_update: bool = False) -> DataItem | None:
        stmt = self._scoped().where(DataItem.id == item_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def lock(self, item_id: int) -> DataItem | None:
        """The item, locked against other writers until the transaction ends, with its
        attributes read again after the lock is granted (not as an earlier read left them).
        FOR NO KEY UPDATE: rows of other tables that reference the item can still be added."""
        stmt = (
            self._scoped()
            .where(DataItem.id == item_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def add(self, *, data_name: str, data_description: str) -> DataItem:
        item = DataItem(
            account_id=self.account_id, data_name=data_name, data_description=data_description
        )
        self.session.add(item)
        await self.session.flush()
        await self.session.refresh(item)
        return item

    async def update(self, item: DataItem, values: dict[str, object]) -> DataItem:
        await self.session.execute(
            update(DataItem)
            .where(DataItem.id == item.id, DataItem.account_id == self.account_id)
            .values(**values, updated_at=func.now())
        )
        await self.session.refresh(item)
        return item

    async def touch(self, item_id: int) -> None:
        await self.session.execute(
            update(DataItem)
            .where(DataItem.id == item_id, DataItem.account_id == self.account_id)
            .values(updated_at=func.now())
        )

    async def delete(self, item_id: int) -> None:
        await self.session.execute(
            delete(DataItem).where(DataItem.id == item_id, DataItem.account_id == self.account_id)
        )

    async def reference_files(self, item_id: int) -> list[ReferenceFile]:
        stmt = (
            select(ReferenceFile)
            .join(DataItem, DataItem.id == ReferenceFile.data_item_id)
            .where(DataItem.account_id == self.account_id, ReferenceFile.data_item_id == item_id)
            .order_by(ReferenceFile.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def count(self) -> int:
        stmt = (
            select(func.count()).select_from(DataItem).where(DataItem.account_id == self.account_id)
        )
        return int(await self.session.scalar(stmt) or 0)


async def read_detail(conn: Any, account_id: int, item_id: int) -> Any:
    """The account's item with its fields (in field order) and reference files (in id order),
    as an asyncpg record (fields and files as arrays of records), or None: one statement, one
    snapshot, one round trip (app/core/reads.py)."""
    statement = sql(
        """
        SELECT d.id, d.data_name, d.data_description, d.created_at, d.updated_at, d.row_count,
               ARRAY(SELECT ROW(f.id, f.field_label, f.field_type, f.field_order,
                                f.field_required, f.field_instructions)
                     FROM fields f WHERE f.data_item_id = d.id
                     ORDER BY f.field_order, f.id) AS fields,
               ARRAY(SELECT ROW(r.id, r.filename, r.created_at)
                     FROM reference_files r WHERE r.data_item_id = d.id ORDER BY r.id) AS files
        FROM data_items d
        WHERE d.id = $1 AND d.account_id = $2
        """
    )
    return await conn.fetchrow(statement, item_id, account_id)
