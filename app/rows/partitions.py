"""Per-item partitions of `rows` (schema `item_rows`, table `p<item id>`).

Why partitions: each item's rows get their own indexes (a trigram search index can be built after
a big load instead of being maintained row by row during it), their own planner statistics, and
deleting an item drops a table instead of deleting a million rows.

Lock discipline, because `rows` is shared by every account:
- create: `CREATE TABLE` + `ATTACH PARTITION`, which takes only SHARE UPDATE EXCLUSIVE on `rows`
  (reads and writes of other items go on; `CREATE TABLE … PARTITION OF` would take ACCESS EXCLUSIVE).
  A CHECK constraint matching the bound lets ATTACH skip its validation scan.
- drop: never inside a request. Deleting an item deletes its metadata row; its partition is then
  an orphan, detached with `DETACH PARTITION … CONCURRENTLY` (no ACCESS EXCLUSIVE on `rows`) and
  dropped by `drop_orphan_partitions`, run after deletes, at start-up and periodically.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.db import long_session_statements

log = logging.getLogger("app.rows.partitions")

SCHEMA = "item_rows"


def partition_table(item_id: int) -> str:
    """Quoted, schema-qualified partition name. `item_id` is an int: safe to interpolate."""
    return f'{SCHEMA}."p{int(item_id)}"'


async def create_partition(session: AsyncSession, item_id: int, *, attach: bool = True) -> None:
    """The item's partition. A big load creates it detached, fills it, indexes it, and only then
    attaches it (`attach_partition`), so the lock on `rows` is held for milliseconds, not for
    the whole load."""
    table = partition_table(item_id)
    item = int(item_id)
    await session.execute(text(f"CREATE TABLE {table} (LIKE rows INCLUDING DEFAULTS)"))
    await session.execute(
        text(f'ALTER TABLE {table} ADD CONSTRAINT "p{item}_bound" CHECK (data_item_id = {item})')
    )
    if attach:
        await attach_partition(session, item_id)


async def attach_partition(session: AsyncSession, item_id: int) -> None:
    """Attach, adding the primary key first: a sorted build after a load is faster than
    maintaining it row by row, and ATTACH adopts a matching primary-key constraint (a plain
    unique index would not match the parent's constraint, and ATTACH would build another)."""
    table = partition_table(item_id)
    item = int(item_id)
    await session.execute(
        text(
            f'ALTER TABLE {table} ADD CONSTRAINT "p{item}_pkey" PRIMARY KEY (data_item_id, row_ref)'
        )
    )
    await session.execute(text(f"ALTER TABLE rows ATTACH PARTITION {table} FOR VALUES IN ({item})"))


async def _orphans(conn: AsyncConnection) -> list[tuple[str, bool, bool]]:
    """(table name, still attached, detach pending) for partitions whose item no longer exists."""
    result = await conn.execute(
        text(
            """
            SELECT c.relname, i.inhrelid IS NOT NULL, COALESCE(i.inhdetachpending, false)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = :schema
            LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
            WHERE c.relkind = 'r' AND c.relname ~ '^p[0-9]+$'
              AND NOT EXISTS (
                SELECT 1 FROM data_items d WHERE d.id = substr(c.relname, 2)::bigint)
            """
        ),
        {"schema": SCHEMA},
    )
    return [(str(name), bool(attached), bool(pending)) for name, attached, pending in result]


async def drop_orphan_partitions(engine: AsyncEngine) -> int:
    """Detach (concurrently) and drop the partitions of deleted items. Returns how many."""
    dropped = 0
    async with (
        engine.connect() as conn,
        long_session_statements(await conn.execution_options(isolation_level="AUTOCOMMIT")),
    ):
        for name, attached, pending in await _orphans(conn):
            table = f'{SCHEMA}."{name}"'
            try:
                if attached:
                    mode = "FINALIZE" if pending else "CONCURRENTLY"
                    await conn.execute(text(f"ALTER TABLE rows DETACH PARTITION {table} {mode}"))
                await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
                dropped += 1
            except Exception:  # retried on the next sweep
                log.warning("could not drop partition %s yet", table, exc_info=True)
    if dropped:
        log.info("dropped %d partition(s) of deleted data items", dropped)
    return dropped
