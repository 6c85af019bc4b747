"""SQL for per-field statistics: incremental updates, staleness, and recomputation from rows."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.reads import sql
from app.models import FieldStats


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
        """Values were added (none removed): keep exact aggregates without a recomputation."""
        await self.session.execute(
            text(
                """
                UPDATE field_stats SET
                    non_empty = non_empty + :count,
                    num_sum = CASE WHEN CAST(:num_sum AS numeric) IS NULL THEN num_sum
                                   ELSE COALESCE(num_sum, 0) + CAST(:num_sum AS numeric) END,
                    num_min = LEAST(num_min, CAST(:num_min AS numeric)),
                    num_max = GREATEST(num_max, CAST(:num_max AS numeric)),
                    num_scale = GREATEST(num_scale, CAST(:num_scale AS integer)),
                    text_min = LEAST(text_min COLLATE "C", CAST(:text_min AS text)),
                    text_max = GREATEST(text_max COLLATE "C", CAST(:text_max AS text)),
                    true_count = true_count + :true_count,
                    false_count = false_count + :false_count,
                    generation = generation + 1
                WHERE field_id = :field_id AND data_item_id = :item
                """
            ),
            {
                "field_id": field_id,
                "item": self.data_item_id,
                "count": count,
                "num_sum": num_sum,
                "num_min": num_min,
                "num_max": num_max,
                "num_scale": num_scale,
                "text_min": text_min,
                "text_max": text_max,
                "true_count": true_count,
                "false_count": false_count,
            },
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

# When a stored value fits its field's type. Values that do not (a bug, or an old race of a
# type change with a write) are left out of the statistics and counted as invalid instead, so a
# summary never fails on them (a cast would) and names the cells to repair.
_VALID = {
    "decimal": """jsonb_typeof("values"->:key) = 'number'""",
    "date": """(jsonb_typeof("values"->:key) = 'string' AND "values"->>:key
               ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?)?$')""",
    "boolean": """jsonb_typeof("values"->:key) = 'boolean'""",
    "text": """jsonb_typeof("values"->:key) = 'string'""",
}
_PRESENT = """data_item_id = :item AND "values" ? :key
              AND jsonb_typeof("values"->:key) <> 'null'"""

_TYPED_SQL = {
    "decimal": f"""
        SELECT count(v) AS non_empty, sum(v) AS num_sum, min(v) AS num_min, max(v) AS num_max,
               max(scale(v)) AS num_scale, count(*) - count(v) AS invalid_count
        FROM (SELECT CASE WHEN {_VALID["decimal"]} THEN ("values"->:key)::numeric END AS v
              FROM rows WHERE {_PRESENT}) s
    """,
    "date": f"""
        SELECT count(v) AS non_empty, min(v COLLATE "C") AS text_min, max(v COLLATE "C") AS text_max,
               count(*) - count(v) AS invalid_count
        FROM (SELECT CASE WHEN {_VALID["date"]} THEN "values"->>:key END AS v
              FROM rows WHERE {_PRESENT}) s
    """,
    "boolean": f"""
        SELECT count(*) FILTER (WHERE {_VALID["boolean"]}) AS non_empty,
               count(*) FILTER (WHERE "values"->:key = 'true'::jsonb) AS true_count,
               count(*) FILTER (WHERE "values"->:key = 'false'::jsonb) AS false_count,
               count(*) FILTER (WHERE NOT {_VALID["boolean"]}) AS invalid_count
        FROM rows WHERE {_PRESENT}
    """,
    "text": f"""
        WITH counts AS (
            SELECT "values"->>:key AS v, count(*) AS n FROM rows
            WHERE {_PRESENT} AND {_VALID["text"]} GROUP BY 1
        )
        SELECT (SELECT COALESCE(sum(n), 0) FROM counts) AS non_empty,
               (SELECT count(*) FROM counts) AS unique_count,
               (SELECT COALESCE(jsonb_agg(jsonb_build_object('value', v, 'count', n)
                                          ORDER BY n DESC, v COLLATE "C"), '[]'::jsonb)
                FROM (SELECT v, n FROM counts ORDER BY n DESC, v COLLATE "C" LIMIT 10) t)
               AS top_values,
               (SELECT count(*) FROM rows WHERE {_PRESENT} AND NOT {_VALID["text"]})
               AS invalid_count
    """,
}
INVALID_SHOWN = 5


def _sql_kind(field_type: str) -> str:
    return "text" if field_type in ("char", "text") else field_type


async def stale_generations(conn: AsyncConnection, item_id: int) -> dict[int, int]:
    result = await conn.execute(
        text("SELECT field_id, generation FROM field_stats WHERE data_item_id = :i AND stale"),
        {"i": item_id},
    )
    return {int(f): int(g) for f, g in result}


async def compute(
    conn: AsyncConnection, item_id: int, field_id: int, field_type: str
) -> dict[str, Any]:
    """Every statistic of one field, from its rows."""
    result = await conn.execute(
        text(_TYPED_SQL[_sql_kind(field_type)]), {"item": item_id, "key": str(field_id)}
    )
    row = result.mappings().one()
    values: dict[str, Any] = {
        "non_empty": 0, "num_sum": None, "num_min": None, "num_max": None, "num_scale": None,
        "text_min": None, "text_max": None, "true_count": 0, "false_count": 0,
        "unique_count": None, "top_values": None, "invalid_count": 0, "invalid_cells": None,
    }  # fmt: skip
    values.update({k: v for k, v in row.items() if v is not None or k == "num_sum"})
    if values["invalid_count"]:
        kind = _sql_kind(field_type)
        cells = await conn.execute(
            text(
                f"""SELECT row_ref, "values"->:key AS value FROM rows
                    WHERE data_item_id = :item AND "values" ? :key
                      AND jsonb_typeof("values"->:key) <> 'null' AND NOT {_VALID[kind]}
                    ORDER BY row_ref LIMIT :n"""
            ),
            {"item": item_id, "key": str(field_id), "n": INVALID_SHOWN},
        )
        values["invalid_cells"] = [
            {"row_ref": str(ref), "value": value} for ref, value in cells.all()
        ]
    return values


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


STAT_COLUMNS = (
    "non_empty", "num_sum", "num_min", "num_max", "num_scale", "text_min", "text_max",
    "true_count", "false_count", "unique_count", "top_values", "invalid_count", "invalid_cells",
)  # fmt: skip


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
