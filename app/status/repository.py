"""What the status endpoint reads: that the database answers, and the caller's own counts."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DataItem


class StatusRepository:
    def __init__(
        self, session: AsyncSession, account_id: int, only: frozenset[int] | None = None
    ) -> None:
        self.session = session
        self.account_id = account_id
        self.only = only  # the items the caller's key is limited to

    async def ping(self) -> None:
        """A round trip to the database (`SELECT 1`)."""
        await self.session.execute(text("SELECT 1"))

    async def counts(self) -> tuple[int, int]:
        """(data items, rows in them) of the account (of the items the key sees)."""
        stmt = select(func.count(), func.coalesce(func.sum(DataItem.row_count), 0)).where(
            DataItem.account_id == self.account_id,
            *([] if self.only is None else [DataItem.id.in_(sorted(self.only))]),
        )
        items, rows = (await self.session.execute(stmt)).one()
        return int(items), int(rows)
