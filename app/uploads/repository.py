"""Upload queries: the account's reference files, reached only through its items, each with its
item's name and the import job that stored it (if any)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DataItem, ImportJob, ReferenceFile


@dataclass(frozen=True)
class UploadRecord:
    id: int
    data_item_id: int
    data_item_name: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    job_id: int | None
    job_status: str | None
    job_kind: str | None


_COLUMNS: tuple[Any, ...] = (
    ReferenceFile.id,
    ReferenceFile.data_item_id,
    DataItem.data_name,
    ReferenceFile.filename,
    ReferenceFile.content_type,
    ReferenceFile.size_bytes,
    ReferenceFile.sha256,
    ReferenceFile.created_at,
    ImportJob.id,
    ImportJob.status,
    ImportJob.kind,
)


def _record(row: Any) -> UploadRecord:
    return UploadRecord(*row[: len(_COLUMNS)])


class UploadRepository:
    """`only`: the data items the caller's key is limited to (None: every item)."""

    def __init__(
        self, session: AsyncSession, account_id: int, only: frozenset[int] | None = None
    ) -> None:
        self.session = session
        self.account_id = account_id
        self.items: list[ColumnElement[bool]] = (
            [] if only is None else [DataItem.id.in_(sorted(only))]
        )

    def _scoped(self) -> Select[Any]:
        """The account's reference files (through its items), with their item and job."""
        return (
            select(*_COLUMNS)
            .join(DataItem, DataItem.id == ReferenceFile.data_item_id)
            .outerjoin(
                ImportJob,
                and_(
                    ImportJob.reference_file_id == ReferenceFile.id,
                    ImportJob.account_id == self.account_id,
                ),
            )
            .where(DataItem.account_id == self.account_id, *self.items)
        )

    async def page(self, *, offset: int, limit: int) -> tuple[list[UploadRecord], int]:
        """One page, newest first (by id: ids are handed out in upload order), and how many
        there are in all (counted by the same statement, so page and total agree)."""
        stmt = (
            self._scoped()
            .add_columns(func.count().over())
            .order_by(ReferenceFile.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [_record(row) for row in rows], int(rows[0][-1])
        return [], await self.count() if offset else 0

    async def count(self) -> int:
        stmt = (
            select(func.count())
            .select_from(ReferenceFile)
            .join(DataItem, DataItem.id == ReferenceFile.data_item_id)
            .where(DataItem.account_id == self.account_id, *self.items)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def get(self, upload_id: int) -> UploadRecord | None:
        row = (
            await self.session.execute(self._scoped().where(ReferenceFile.id == upload_id))
        ).one_or_none()
        return None if row is None else _record(row)

    async def hold_item(self, upload_id: int) -> int | None:
        """The id of the item the upload belongs to, with the item's row share-locked until the
        transaction ends (FOR KEY SHARE): the item cannot be deleted meanwhile, and a writer of
        its rows (FOR NO KEY UPDATE, an append for instance) is neither waited for nor held up.
        None if the account has no such upload."""
        stmt = (
            select(ReferenceFile.data_item_id)
            .join(DataItem, DataItem.id == ReferenceFile.data_item_id)
            .where(
                ReferenceFile.id == upload_id, DataItem.account_id == self.account_id, *self.items
            )
            .with_for_update(read=True, key_share=True, of=DataItem)
        )
        item_id: int | None = await self.session.scalar(stmt)
        return item_id

    async def delete(self, upload_id: int, *, item_id: int) -> bool:
        """Delete the file of `item_id` (an item held for the account, see `hold_item`); its
        chunks go with it (ON DELETE CASCADE), its job's link is set to NULL. False if it was
        gone already (a concurrent delete committed first)."""
        stmt = (
            delete(ReferenceFile)
            .where(ReferenceFile.id == upload_id, ReferenceFile.data_item_id == item_id)
            .returning(ReferenceFile.id)
        )
        return (await self.session.scalar(stmt)) is not None
