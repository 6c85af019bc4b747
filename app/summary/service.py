"""Per-field statistics that are exact after every write, and cheap to read.

A full scan of a 1M-row item to aggregate JSONB takes 10-17 s, so statistics are kept in
`field_stats`, one row per field:
- File ingestion computes them from the data it already holds (Polars) and stores them.
- A write that only ADDS values to a decimal/date/boolean field updates them incrementally
  (counts, exact sums, min/max, true/false), in the write's own transaction.
- A write that removes or replaces a value, any change to a char/text field (unique values and
  top values cannot be maintained without a count per distinct value), a type change: the field
  is marked `stale` and its `generation` is bumped.
- Stale fields are recomputed from the rows in SQL, from one REPEATABLE READ snapshot, and saved
  only if no write bumped the generation meanwhile (so a slow recomputation never overwrites
  newer data as fresh). The summary endpoint recomputes what is stale before answering, and a
  background task does it right after writes commit, so reads usually find them fresh.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.db import long_statements
from app.core.errors import NotFound
from app.core.reads import read_connection
from app.fieldtypes import Stored, kind_of
from app.fieldtypes.base import Accumulator
from app.models import Field
from app.summary import repository as stats_sql
from app.summary.repository import StatsRepository

log = logging.getLogger("app.summary")


@dataclass
class FieldChange:
    """What a write did to one field's values."""

    added: list[Stored] = field(default_factory=list)
    removed: bool = False


async def init_fields(session: AsyncSession, item_id: int, field_ids: Sequence[int]) -> None:
    await StatsRepository(session, item_id).create(field_ids)


async def mark_stale(session: AsyncSession, item_id: int, field_ids: Sequence[int]) -> None:
    await StatsRepository(session, item_id).mark_stale(field_ids)


async def replace_stats(
    session: AsyncSession, item_id: int, stats: Mapping[int, dict[str, Any]]
) -> None:
    repo = StatsRepository(session, item_id)
    for field_id in sorted(stats):
        await repo.replace(field_id, stats[field_id])


async def record_changes(
    session: AsyncSession,
    item_id: int,
    fields: Mapping[int, Field],
    changes: Mapping[int, FieldChange],
) -> list[int]:
    """Apply a write's effect on statistics; returns the fields that became stale."""
    repo = StatsRepository(session, item_id)
    stale: list[int] = []
    for field_id in sorted(changes):  # a fixed order: concurrent writers never deadlock here
        change = changes[field_id]
        if not change.removed and not change.added:
            continue
        increments = None
        if not change.removed:  # values only added: the type may keep its statistics exact
            increments = kind_of(fields[field_id].field_type).increments(change.added)
        if increments is None:
            stale.append(field_id)
        else:
            await repo.add_values(field_id, **increments)
    await repo.mark_stale(stale)
    return stale


async def add_aggregates(
    session: AsyncSession, item_id: int, field: Field, stats: Accumulator
) -> None:
    """Values were added in bulk (a file appended): typed fields are updated exactly in place;
    char/text fields become stale (their unique and top values need a recount)."""
    if not stats.non_empty:
        return
    increments = stats.increments()
    if increments is None:
        await StatsRepository(session, item_id).mark_stale([field.id])
    else:
        await StatsRepository(session, item_id).add_values(field.id, **increments)


# ------------------------------------------------------------------------------------ reading


def field_summary(f: FieldLike, stats: Mapping[str, Any], row_count: int) -> dict[str, Any]:
    non_empty = int(stats["non_empty"])
    invalid = int(stats.get("invalid_count") or 0)
    out: dict[str, Any] = {
        "field_id": f.id,
        "field_label": f.field_label,
        "field_type": f.field_type,
        "total_values": non_empty,
        "empty_count": max(row_count - non_empty - invalid, 0),
    }
    if invalid:  # values that do not fit the type: left out of the rest, named to be repaired
        out["invalid_count"] = invalid
        out["invalid_cells"] = stats.get("invalid_cells") or []
    out.update(kind_of(f.field_type).summary(stats, non_empty))
    return out


async def _snapshot(
    conn: AsyncConnection, item_id: int
) -> tuple[int, list[tuple[int, str]], dict[int, dict[str, Any]], dict[int, int]]:
    """Row count, fields, fresh statistics and stale generations, all from one snapshot; stale
    fields are recomputed from the rows inside that same snapshot."""
    row_count = await stats_sql.row_count(conn, item_id)
    if row_count is None:
        return 0, [], {}, {}
    fields = await stats_sql.field_types(conn, item_id)
    stats = await stats_sql.stored(conn, item_id)
    recomputed: dict[int, int] = {}
    for fid, ftype in fields:
        current = stats.get(fid)
        if current is None or current["stale"]:
            stats[fid] = await stats_sql.compute(conn, item_id, fid, ftype)
            recomputed[fid] = int(current["generation"]) if current else -1
    return int(row_count), fields, stats, recomputed


@asynccontextmanager
async def _item_lock(engine: AsyncEngine, item_id: int) -> AsyncIterator[AsyncConnection]:
    """A connection holding the item's statistics lock (a session-level advisory lock, taken
    before any snapshot, so a second caller waits and then finds the work done)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await stats_sql.lock_item(conn, item_id)
        await conn.commit()
        try:
            yield conn
        finally:
            try:
                await conn.rollback()
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await stats_sql.lock_item(conn, item_id, unlock=True)
                await conn.commit()
            except Exception:  # never return a connection that may still hold the lock
                await conn.invalidate()
                raise


async def current_stats(engine: AsyncEngine, item_id: int) -> tuple[int, dict[int, dict[str, Any]]]:
    """(row count, statistics per field id), exact as of one moment; stale fields are recomputed
    and saved (unless a write raced the recomputation)."""
    async with _item_lock(engine, item_id) as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await long_statements(conn)  # a stale field of a big item is a full scan
            row_count, _fields, stats, recomputed = await _snapshot(conn, item_id)
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for fid, generation in recomputed.items():
            if generation >= 0 and not await stats_sql.save_if_unchanged(
                conn, item_id, fid, generation, stats[fid]
            ):
                log.debug("statistics of field %s changed while recomputing", fid)
        await conn.commit()
    return row_count, stats


async def refresh_item(engine: AsyncEngine, item_id: int) -> None:
    """Background: bring an item's stale statistics up to date."""
    await current_stats(engine, item_id)


class FieldLike(Protocol):
    """What a summary needs of a field (an ORM `Field`, or `_StoredField`)."""

    @property
    def id(self) -> int: ...

    @property
    def field_label(self) -> str: ...

    @property
    def field_type(self) -> str: ...


@dataclass(frozen=True)
class _StoredField:
    id: int
    field_label: str
    field_type: str


async def read_summary(engine: AsyncEngine, account_id: int, item_id: int) -> dict[str, Any]:
    """`GET …/summary/`. When every statistic is fresh (the usual case: writes keep them, the
    background recomputes after removals) one statement on a read connection answers, without
    the item's statistics lock; otherwise `current_stats` recomputes what is stale first, on a
    connection of its own (never while this request holds another: under load, requests each
    holding one connection while waiting for a second emptied the pool)."""
    async with read_connection(engine, reuse_plans=True) as conn:
        records = await stats_sql.read_stored(conn, account_id, item_id)
    if not records:
        raise NotFound(f"Data item {item_id} not found.")
    first = records[0]
    present = [r for r in records if r["field_id"] is not None]
    fields = [_StoredField(r["field_id"], r["field_label"], r["field_type"]) for r in present]
    if all(r["fresh"] for r in present):
        row_count = int(first["row_count"])
        stats = {r["field_id"]: {c: r[c] for c in stats_sql.STAT_COLUMNS} for r in present}
        return _summary_document(item_id, first["data_name"], fields, row_count, stats)
    return await build_summary(engine, item_id, first["data_name"], fields)


async def build_summary(
    engine: AsyncEngine, item_id: int, data_name: str, fields: Sequence[FieldLike]
) -> dict[str, Any]:
    row_count, stats = await current_stats(engine, item_id)
    return _summary_document(item_id, data_name, fields, row_count, stats)


def _summary_document(
    item_id: int,
    data_name: str,
    fields: Sequence[FieldLike],
    row_count: int,
    stats: Mapping[int, Mapping[str, Any]],
) -> dict[str, Any]:
    summaries = [field_summary(f, stats[f.id], row_count) for f in fields if f.id in stats]
    return {
        "id": item_id,
        "data_name": data_name,
        "row_count": row_count,
        "field_count": len(fields),
        "field_summaries": summaries,
    }
