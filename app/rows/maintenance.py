"""Background upkeep that must not run inside a request, in the service process:
- drop the row partitions of deleted items (DETACH … CONCURRENTLY, then DROP);
- after writes commit: recompute the item's stale statistics, and give items that have grown
  large enough a trigram search index (CREATE INDEX CONCURRENTLY: writes go on meanwhile).
Work is coalesced (a burst of writes to one item triggers one refresh) and also runs at start-up
(orphaned partitions, and big items left without a valid search index by a restart).
Everything it does is also correct if it never runs: summaries recompute what is stale on read,
and searches scan when there is no index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.db import long_session_statements
from app.core.errors import ErrorCode, ServiceUnavailable
from app.rows import partitions
from app.rows.search import SEARCH_TEXT
from app.summary import service as summary_service

log = logging.getLogger("app.rows.maintenance")

_INDEX_LOCK_CLASS = 7_302
_GAVE_WAY = {"57014", "40P01"}  # query canceled, deadlock detected
# How long a big append's index drop, on its own connection, waits for readers of the item
# before it is done inside the append's transaction instead (see `drop_search_index_now`).
DROP_LOCK_TIMEOUT_MS = 2_000


class RowMaintenance:
    def __init__(
        self, engine: AsyncEngine, *, search_index_min_rows: int, debounce: float = 0.3
    ) -> None:
        self.engine = engine
        self.search_index_min_rows = search_index_min_rows
        self.debounce = debounce
        self._wake = asyncio.Event()
        self._items: set[int] = set()
        self._loaded: set[int] = set()
        self._sweep = True
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="row-maintenance")
        self._wake.set()

    @property
    def running(self) -> bool:
        """Started, and its loop has not ended."""
        return self._task is not None and not self._task.done()

    def sweep_soon(self) -> None:
        self._sweep = True
        self._idle.clear()
        self._wake.set()

    def item_changed(self, item_id: int, *, loaded: bool = False) -> None:
        """After a write commits. `loaded`: many rows arrived at once (a file), so the item's
        partition is also vacuumed and analysed (visibility map for index-only scans, planner
        statistics) before autovacuum would get to it."""
        self._items.add(item_id)
        if loaded:
            self._loaded.add(item_id)
        self._idle.clear()
        self._wake.set()

    async def drop_search_index_now(self, item_id: int) -> bool:
        """Drop the item's trigram index on a connection of its own, committed at once, before a
        big append writes (see `drop_search_index_before`). DROP INDEX pays at commit (unlinking
        a 1M-row item's 150 MB index: about 50 ms), so this runs while the append's first chunk
        converts, instead of inside the append's commit. Call `item_changed` afterwards whether
        the append commits or not: that rebuilds the index.

        False if no pooled connection was free, or readers held the item, for DROP_LOCK_TIMEOUT_MS:
        the caller then drops it in its own transaction (where PostgreSQL sees any deadlock with
        those readers)."""
        try:
            conn = await asyncio.wait_for(
                self.engine.connect().start(), DROP_LOCK_TIMEOUT_MS / 1000
            )
        except TimeoutError:
            log.info("no connection free to drop the search index of data item %s", item_id)
            return False
        try:
            async with conn.begin():  # committed here; SET LOCAL: the pool gets it back as it was
                await conn.execute(text(f"SET LOCAL lock_timeout = {DROP_LOCK_TIMEOUT_MS}"))
                await conn.execute(text(f"DROP INDEX IF EXISTS {_index(item_id)}"))
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            log.info("search index of data item %s busy; dropping it with the load", item_id)
            return False
        finally:
            await conn.close()
        return True

    async def wait_idle(self) -> None:
        """Until everything requested so far is done (tests and benchmarks use this)."""
        await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            # Cancel until it is done: a cancel can be lost, when a cleanup awaited during the
            # cancellation (an advisory unlock after a cancelled CREATE INDEX) raises another
            # error, which the loop logs and survives.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=300)
            self._wake.clear()
            await asyncio.sleep(self.debounce)
            items, self._items = self._items, set()
            loaded, self._loaded = self._loaded, set()
            sweep, self._sweep = self._sweep, False
            try:
                if sweep:
                    await partitions.drop_orphan_partitions(self.engine)
                    items |= await items_missing_search_index(
                        self.engine, self.search_index_min_rows
                    )
                for item_id in sorted(items):
                    if item_id in loaded:
                        await vacuum_partition(self.engine, item_id)
                    await summary_service.refresh_item(self.engine, item_id)
                    await ensure_search_index(self.engine, item_id, self.search_index_min_rows)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("row maintenance failed; will retry", exc_info=True)
                self._items |= items
            if not self._items and not self._sweep:
                self._idle.set()


async def vacuum_partition(engine: AsyncEngine, item_id: int) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with long_session_statements(conn):
            await _vacuum(conn, item_id)


async def _vacuum(conn: AsyncConnection, item_id: int) -> None:
    exists = (
        await conn.execute(
            text("SELECT to_regclass(:t) IS NOT NULL"),
            {"t": partitions.partition_table(item_id)},
        )
    ).scalar_one()
    if exists:
        await conn.execute(text(f"VACUUM (ANALYZE) {partitions.partition_table(item_id)}"))


def search_index_name(item_id: int) -> str:
    return f"p{int(item_id)}_search"


def _index(item_id: int) -> str:
    return f'{partitions.SCHEMA}."{search_index_name(item_id)}"'


async def items_missing_search_index(engine: AsyncEngine, min_rows: int) -> set[int]:
    """Items big enough for a search index that have no valid one (a restart interrupted its
    build, or came between an append's index drop and its commit)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                """
                SELECT d.id FROM data_items d
                WHERE d.row_count >= :min_rows AND NOT EXISTS (
                    SELECT 1 FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_index i ON i.indexrelid = c.oid
                    WHERE n.nspname = :schema AND c.relname = 'p' || d.id || '_search'
                      AND i.indisvalid)
                  AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
                """
            ),
            {"min_rows": max(1, min_rows), "schema": partitions.SCHEMA},
        )
        return {int(row[0]) for row in result}


async def ensure_search_index(engine: AsyncEngine, item_id: int, min_rows: int) -> bool:
    """Build the item's trigram index if it is big enough and has none. True if one exists."""
    item = int(item_id)
    name = search_index_name(item)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        state = (
            await conn.execute(
                text(
                    """
                    SELECT d.row_count,
                           (SELECT i.indisvalid FROM pg_class c
                              JOIN pg_namespace n ON n.oid = c.relnamespace
                              JOIN pg_index i ON i.indexrelid = c.oid
                             WHERE n.nspname = :schema AND c.relname = :name),
                           EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
                    FROM data_items d WHERE d.id = :item
                    """
                ),
                {"schema": partitions.SCHEMA, "name": name, "item": item},
            )
        ).one_or_none()
        if state is None:
            return False
        row_count, valid, has_trgm = state
        if valid:
            return True
        if not has_trgm or row_count < min_rows:
            return False
        locked = (
            await conn.execute(
                text("SELECT pg_try_advisory_lock(:c, :o)"),
                {"c": _INDEX_LOCK_CLASS, "o": item % 2**31},
            )
        ).scalar_one()
        if not locked:
            return False  # another process is building it
        try:
            async with long_session_statements(conn):
                return await _build_index(conn, item, name, valid, row_count)
        finally:
            await conn.execute(
                text("SELECT pg_advisory_unlock(:c, :o)"),
                {"c": _INDEX_LOCK_CLASS, "o": item % 2**31},
            )


async def _build_index(
    conn: AsyncConnection, item: int, name: str, valid: bool | None, row_count: int
) -> bool:
    """CREATE INDEX CONCURRENTLY, then ANALYZE; False if a write took the build over."""
    table = partitions.partition_table(item)
    if valid is False:  # an interrupted CONCURRENTLY build leaves an invalid index
        await conn.execute(text(f'DROP INDEX IF EXISTS {partitions.SCHEMA}."{name}"'))
    try:
        await conn.execute(
            text(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON {table} '
                f"USING gin (({SEARCH_TEXT}) gin_trgm_ops)"
            )
        )
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) not in _GAVE_WAY:
            raise
        # a write took it over (`take_over_index_build`) or won a deadlock: the write
        # calls item_changed when it ends, which builds the index again
        log.info("search index build of data item %s gave way to a write", item)
        return False
    # Statistics on the indexed expression: without them the planner guesses 0.16 % of
    # rows match any term and runs a common term's count serially (1.1 s instead of
    # 0.6 s with two workers on 1M rows).
    await conn.execute(text(f"ANALYZE {table}"))
    log.info("built the search index of data item %s (%s rows)", item, row_count)
    return True


# A write that takes the index build over waits at most this long for the build to give way.
TAKE_OVER_SECONDS = 30.0


async def take_over_index_build(session: AsyncSession, item_id: int) -> None:
    """Hold the item's index-build lock until `session`'s transaction ends, cancelling a build
    that holds it. A big append drops the item's search index; a CREATE INDEX CONCURRENTLY
    running meanwhile waits for the append's transaction to end while the append waits for the
    build's lock on the table: a deadlock, which failed the append (503) when it ran right
    after the item was created. The background work gives way instead: the build is cancelled
    (it leaves an invalid index, which the drop removes) and redone after the append, which
    calls `item_changed` whether it commits or not."""
    params = {"c": _INDEX_LOCK_CLASS, "o": int(item_id) % 2**31}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TAKE_OVER_SECONDS
    while True:
        taken = await session.execute(text("SELECT pg_try_advisory_xact_lock(:c, :o)"), params)
        if taken.scalar_one():
            return
        cancelled = await session.execute(
            text(
                """
                SELECT pg_cancel_backend(pid) FROM pg_locks
                WHERE locktype = 'advisory' AND classid = CAST(:c AS oid)
                  AND objid = CAST(:o AS oid) AND objsubid = 2 AND granted
                  AND pid <> pg_backend_pid()
                """
            ),
            params,
        )
        if any(cancelled.scalars()):
            log.info("search index build of data item %s cancelled for a write", item_id)
        if loop.time() > deadline:
            raise ServiceUnavailable(
                f"Data item {item_id} is busy with background work; try again shortly.",
                code=ErrorCode.CONCURRENT_CONFLICT,
                headers={"Retry-After": "5"},
            )
        await asyncio.sleep(0.05)


def drop_search_index_before(existing_rows: int, incoming_rows: int) -> bool:
    """Whether a load of `incoming_rows` into an item of `existing_rows` should drop the item's
    trigram index first. Maintaining it row by row makes a load about 5x slower (measured:
    100,000 rows into a 1.1M-row item, 8-10 s instead of 1.7 s), which an append request should
    not pay; rebuilding it costs about half as much CPU per row, but for every row of the item,
    and in the background (searches scan meanwhile). An append of a twentieth of the item or
    more, and at least 10,000 rows, drops it; smaller ones keep it."""
    return incoming_rows >= max(10_000, existing_rows // 20)


async def drop_search_index_in(session: AsyncSession, item_id: int) -> None:
    """`RowMaintenance.drop_search_index_now`'s fallback, inside the load's transaction."""
    await session.execute(text(f"DROP INDEX IF EXISTS {_index(item_id)}"))
