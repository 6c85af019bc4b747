"""SQL for per-field statistics: incremental updates, staleness, and recomputation from rows.

What is aggregated, and how, is each field type's (`Kind.stats_value`, `stats_aggregates`,
`valid`); the statements, scoped to one item, are built here."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Text, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.reads import sql
from app.fieldtypes import Kind, kind_of
from app.fieldtypes.base import EMPTY_STATS
from app.fieldtypes.sql import Cell, by_code_point
from app.fieldtypes.text import TOP_VALUES
from app.models import DataItem, Field, FieldStats, rows_table

INVALID_SHOWN = 5
_LOCK_CLASS = 7_301  # advisory lock namespace for per-item statistics work


class StatsRepository:
    """Statistics of one data item's fields (the item was resolved for the caller)."""

    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.data_item_id = data_item_id

    async def create(self, field_ids: Sequence[int]) -> None:
        if field_ids:
            self.session.add_all(
                [FieldStats(field_id=f, data_item_id=self.data_item_id) for f in field_ids]
            )
            await self.session.flush()

    async def all(self) -> dict[int, FieldStats]:
        stmt = select(FieldStats).where(FieldStats.data_item_id == self.data_item_id)
        return {s.field_id: s for s in (await self.session.scalars(stmt)).all()}

    async def mark_stale(self, field_ids: Sequence[int]) -> None:
        if field_ids:
            await self.session.execute(
                update(FieldStats)
                .where(
                    FieldStats.data_item_id == self.data_item_id,
                    FieldStats.field_id.in_(sorted(field_ids)),
                )
                .values(stale=True, generation=FieldStats.generation + 1)
                .execution_options(synchronize_session=False)
            )

    async def add_values(
        self,
        field_id: int,
        *,
        count: int,
        num_sum: Decimal | None = None,
        num_min: Decimal | None = None,
        num_max: Decimal | None = None,
        num_scale: int | None = None,
        text_min: str | None = None,
        text_max: str | None = None,
        true_count: int = 0,
        false_count: int = 0,
    ) -> None:
        """Values were added (none removed): keep exact aggregates without a recomputation
        (the arguments are a kind's `increments`)."""
        s = FieldStats
        values: dict[str, Any] = {
            "non_empty": s.non_empty + count,
            "true_count": s.true_count + true_count,
            "false_count": s.false_count + false_count,
            "generation": s.generation + 1,
        }
        if num_sum is not None:
            values["num_sum"] = func.coalesce(s.num_sum, 0) + num_sum
        if num_min is not None:
            values["num_min"] = func.least(s.num_min, num_min)
        if num_max is not None:
            values["num_max"] = func.greatest(s.num_max, num_max)
        if num_scale is not None:
            values["num_scale"] = func.greatest(s.num_scale, num_scale)
        if text_min is not None:
            values["text_min"] = func.least(by_code_point(s.text_min), literal(text_min, Text))
        if text_max is not None:
            values["text_max"] = func.greatest(by_code_point(s.text_max), literal(text_max, Text))
        await self.session.execute(
            update(s)
            .where(s.field_id == field_id, s.data_item_id == self.data_item_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def replace(self, field_id: int, values: dict[str, Any]) -> None:
        """Set exact statistics computed elsewhere (file ingestion)."""
        await self.session.execute(
            update(FieldStats)
            .where(FieldStats.field_id == field_id, FieldStats.data_item_id == self.data_item_id)
            .values(**values, stale=False, generation=FieldStats.generation + 1)
            .execution_options(synchronize_session=False)
        )


# ------------------------------------------------------------------- recomputation from the rows
# These run on their own connection (REPEATABLE READ, so the generation read and the aggregates
# come from one snapshot) outside any request transaction.


async def lock_item(conn: AsyncConnection, item_id: int, *, unlock: bool = False) -> None:
    """The item's statistics lock (session level: held across the snapshot's transaction)."""
    fn = func.pg_advisory_unlock if unlock else func.pg_advisory_lock
    await conn.execute(select(fn(_LOCK_CLASS, int(item_id) % 2**31)))


async def row_count(conn: AsyncConnection, item_id: int) -> int | None:
    stmt = select(DataItem.row_count).where(DataItem.id == item_id)
    found = (await conn.execute(stmt)).scalar_one_or_none()
    return None if found is None else int(found)


async def field_types(conn: AsyncConnection, item_id: int) -> list[tuple[int, str]]:
    stmt = (
        select(Field.id, Field.field_type).where(Field.data_item_id == item_id).order_by(Field.id)
    )
    return [(int(fid), str(ftype)) for fid, ftype in await conn.execute(stmt)]


async def stored(conn: AsyncConnection, item_id: int) -> dict[int, dict[str, Any]]:
    """Every field's `field_stats` row, as stored."""
    table = FieldStats.__table__
    result = await conn.execute(select(table).where(table.c.data_item_id == item_id))
    return {int(r["field_id"]): dict(r) for r in result.mappings()}


async def compute(
    conn: AsyncConnection, item_id: int, field_id: int, field_type: str
) -> dict[str, Any]:
    """Every statistic of one field, from its rows: what fits the field's type is aggregated,
    what does not is counted as invalid (never a failed cast) and the first few such cells are
    named, to be repaired."""
    kind, cell, rows = kind_of(field_type), Cell(field_id), rows_table
    present = _present(item_id, cell)
    values = dict(EMPTY_STATS)
    if kind.textual:
        values.update(await _value_counts(conn, item_id, kind, cell))
    else:
        inner = select(kind.stats_value(cell).label("v")).where(present).subquery()
        aggregates = kind.stats_aggregates(inner.c.v)
        row = (await conn.execute(select(*(e.label(n) for n, e in aggregates.items())))).one()
        values.update({k: v for k, v in row._mapping.items() if v is not None or k == "num_sum"})
    if values["invalid_count"]:
        cells = await conn.execute(
            select(rows.c.row_ref, cell.json)
            .where(present, ~kind.valid(cell))
            .order_by(rows.c.row_ref)
            .limit(INVALID_SHOWN)
        )
        values["invalid_cells"] = [{"row_ref": str(ref), "value": v} for ref, v in cells.all()]
    return values


def _present(item_id: int, cell: Cell) -> ColumnElement[bool]:
    """The item's rows with a (non-null) value for the field."""
    not_null = cell.json_type() != literal("null", Text)
    return (rows_table.c.data_item_id == int(item_id)) & cell.present & not_null


async def _value_counts(
    conn: AsyncConnection, item_id: int, kind: Kind, cell: Cell
) -> dict[str, Any]:
    """char/text: values, distinct values and the most frequent ones (ties by code point)."""
    rows, present = rows_table, _present(item_id, cell)
    counts = (
        select(cell.text.label("v"), func.count().label("n"))
        .where(present, kind.valid(cell))
        .group_by(text("1"))
        .cte("counts")
    )
    top = (
        select(counts.c.v, counts.c.n)
        .order_by(counts.c.n.desc(), by_code_point(counts.c.v))
        .limit(TOP_VALUES)
        .subquery()
    )
    pair = func.jsonb_build_object(literal("value"), top.c.v, literal("count"), top.c.n)
    top_values = func.coalesce(
        func.jsonb_agg(aggregate_order_by(pair, top.c.n.desc(), by_code_point(top.c.v))),
        literal("[]", JSONB),
    )
    invalid = (
        select(func.count()).select_from(rows).where(present, ~kind.valid(cell)).scalar_subquery()
    )
    stmt = select(
        select(func.coalesce(func.sum(counts.c.n), 0)).scalar_subquery().label("non_empty"),
        select(func.count()).select_from(counts).scalar_subquery().label("unique_count"),
        select(top_values).scalar_subquery().label("top_values"),
        invalid.label("invalid_count"),
    )
    row = (await conn.execute(stmt)).one()
    return dict(row._mapping)


async def save_if_unchanged(
    conn: AsyncConnection, item_id: int, field_id: int, generation: int, values: dict[str, Any]
) -> bool:
    """Store recomputed statistics unless a write changed the field since the snapshot."""
    result = await conn.execute(
        update(FieldStats)
        .where(
            FieldStats.data_item_id == item_id,
            FieldStats.field_id == field_id,
            FieldStats.generation == generation,
        )
        .values(**values, stale=False)
    )
    return bool(result.rowcount)


STAT_COLUMNS = tuple(EMPTY_STATS)  # every `field_stats` column a computation sets


async def read_stored(conn: Any, account_id: int, item_id: int) -> list[Any]:
    """What a summary reads when every statistic is fresh: the item's name and row count, and
    each field (in field order) with its stored statistics and whether they are fresh, in one
    statement (one snapshot, as the REPEATABLE READ of `current_stats` gives). asyncpg records;
    one with a null field_id for an item without fields; none when the item is not the
    account's."""
    statement = sql(
        """
        SELECT d.data_name, d.row_count, f.id AS field_id, f.field_label, f.field_type,
               s.field_id IS NOT NULL AND NOT s.stale AS fresh,
               s.non_empty, s.num_sum, s.num_min, s.num_max, s.num_scale, s.text_min,
               s.text_max, s.true_count, s.false_count, s.unique_count, s.top_values,
               s.invalid_count, s.invalid_cells
        FROM data_items d
        LEFT JOIN fields f ON f.data_item_id = d.id
        LEFT JOIN field_stats s ON s.field_id = f.id AND s.data_item_id = d.id
        WHERE d.id = $1 AND d.account_id = $2
        ORDER BY f.field_order, f.id
        """
    )
    result: list[Any] = await conn.fetch(statement, item_id, account_id)
    return result
