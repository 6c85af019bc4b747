"""Storage figures for one account: every statement filters `data_items.account_id`, and rows
and files are reached only through the account's items. No row is scanned: row storage is the
size on disk of each item's own partition (`item_rows.p<id>`: heap, TOAST and indexes, as
PostgreSQL reports it), file storage the sizes recorded when the files were uploaded."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Storage:
    data_items: int
    rows: int
    row_bytes: int
    reference_file_bytes: int


class UsageRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    async def storage(self) -> Storage:
        result = await self.session.execute(
            text(
                """
                SELECT count(*),
                       coalesce(sum(d.row_count), 0),
                       coalesce(sum(pg_total_relation_size(
                           to_regclass('item_rows."p' || d.id || '"'))), 0),
                       coalesce(sum((SELECT sum(f.size_bytes) FROM reference_files f
                                     WHERE f.data_item_id = d.id)), 0)
                FROM data_items d
                WHERE d.account_id = :account
                """
            ),
            {"account": self.account_id},
        )
        items, rows, row_bytes, file_bytes = result.one()
        return Storage(int(items), int(rows), int(row_bytes), int(file_bytes))
