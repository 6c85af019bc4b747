"""Loading many rows at once (a file's rows): what the rows domain offers ingestion, so that it
does not reach into the row repository, the partitions or the search-index upkeep.

A new item:  `RowLoad.for_new_item` (its partition, created detached) -> `allocate` + `write`
             per chunk -> `finish_new_item` (primary key built, partition attached).
An append:   `RowLoad.for_append` (the item's row lock, taken first) -> `IndexDrop.start`
             (a big append drops the search index) -> `allocate` + `write` per chunk ->
             `IndexDrop.failed` if the append fails (the index is rebuilt either way).
An upsert:   `UpsertLoad` (app/rows/upsert.py) in place of the RowLoad given to the writes: rows are
             staged, then matched on key fields and applied by `finish`.
Everything runs in the caller's transaction: rows become visible when it commits, with the item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.rows import partitions
from app.rows.maintenance import (
    RowMaintenance,
    drop_search_index_before,
    drop_search_index_in,
    take_over_index_build,
)
from app.rows.repository import RowRepository
from app.rows.upsert import UpsertCounts, UpsertLoad

__all__ = ["IndexDrop", "RowLoad", "RowMaintenance", "UpsertCounts", "UpsertLoad"]


class RowLoad:
    def __init__(self, session: AsyncSession, item_id: int, rows_now: int = 0) -> None:
        self.session = session
        self.item_id = int(item_id)
        self.rows_now = rows_now  # the item's rows before this load
        self._repo = RowRepository(session, item_id)

    @classmethod
    async def for_new_item(cls, session: AsyncSession, item_id: int) -> RowLoad:
        """A new item's load: its partition, detached until `finish_new_item`."""
        await partitions.create_partition(session, item_id, attach=False)
        return cls(session, item_id)

    @classmethod
    async def for_append(cls, session: AsyncSession, item_id: int) -> RowLoad:
        """An append: takes the item's row lock (one writer per item until commit) first."""
        load = cls(session, item_id)
        load.rows_now = await load._repo.lock_item()
        return load

    async def allocate(self, count: int) -> int:
        """Reserve `count` consecutive row refs (and count the rows); returns the first."""
        return await self._repo.allocate(count)

    async def write(self, first_ref: int, documents: Sequence[str]) -> None:
        """Rows `first_ref`, `first_ref + 1`, ... with these documents (binary COPY)."""
        await self._repo.copy_documents(first_ref, documents)

    async def mark_control_chars(self) -> None:
        """Some value holds a control character (search needs to know)."""
        await self._repo.mark_control_chars()

    async def finish_new_item(self) -> None:
        """Build the new item's primary key and attach its partition."""
        await partitions.attach_partition(self.session, self.item_id)


class IndexDrop:
    """A big append drops the item's trigram search index before it writes (maintaining it row
    by row makes a load several times slower; see `drop_search_index_before`), on a connection
    of its own while the append plans its columns; the index is rebuilt in the background
    afterwards, whether the append commits or not."""

    def __init__(self, load: RowLoad, maintenance: RowMaintenance) -> None:
        self.load = load
        self.maintenance = maintenance
        self._dropping: asyncio.Future[bool] | None = None

    async def start(self, incoming_rows: int) -> None:
        """Begin the drop if the append is big enough. A build of the index running in the
        background gives way to it first."""
        if drop_search_index_before(self.load.rows_now, incoming_rows):
            await take_over_index_build(self.load.session, self.load.item_id)
            self._dropping = asyncio.ensure_future(
                self.maintenance.drop_search_index_now(self.load.item_id)
            )

    async def before_rows(self) -> None:
        """Before the first row is written: the drop is over (done in the append's own
        transaction if readers held the item)."""
        if self._dropping is not None and not await self._dropping:
            await drop_search_index_in(self.load.session, self.load.item_id)

    async def failed(self, exc: BaseException) -> None:
        """The append failed: once the drop is over, rebuild the index."""
        dropping = self._dropping
        if dropping is None:
            return
        item_id = self.load.item_id

        def rebuild(task: asyncio.Future[bool]) -> None:
            if not task.cancelled():
                task.exception()  # retrieved: the append's own error is the one reported
            self.maintenance.item_changed(item_id)

        if isinstance(exc, Exception):  # (not when cancelled) queued before the error answer
            await asyncio.wait({dropping})
        dropping.add_done_callback(rebuild)
