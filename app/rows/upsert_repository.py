"""Upsert SQL (app/rows/upsert.py): the staged rows of one request, in temporary tables of its
transaction, checked and applied against one item's rows in set statements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

STAGE = "upsert_stage"
MATCH = "upsert_match"
# a matched row's keys to remove before its new cells are set: its own list (a bulk write's
# nulls), else the request's (an append: every loaded field)
_EMPTIED = "coalesce(s.emptied, CAST(:emptied AS text[]))"


class UpsertRepository:
    def __init__(self, session: AsyncSession, item_id: int, keys: Sequence[str]) -> None:
        self.session = session
        self.item = int(item_id)
        self.keys = list(keys)

    async def _all(self, sql: str, **params: Any) -> list[Any]:
        result = await self.session.execute(
            text(sql), {"item": self.item, "keys": self.keys, **params}
        )
        return list(result)

    def _key_values(self, alias: str, column: str) -> str:
        return ", ".join(f"{alias}.{column}->'{k}'" for k in self.keys)

    async def create_stage(self) -> None:
        for sql in (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} "
            "(ord bigint PRIMARY KEY, doc jsonb NOT NULL, emptied text[]) ON COMMIT DROP",
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {MATCH} "
            "(ord bigint, row_ref bigint, old jsonb) ON COMMIT DROP",
            f"TRUNCATE {STAGE}, {MATCH}",
        ):
            await self.session.execute(text(sql))

    async def copy(self, records: Iterable[tuple[int, str, list[str] | None]]) -> None:
        """Stage rows (ord, document, keys emptied) with binary COPY."""
        conn = await self.session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            STAGE, columns=["ord", "doc", "emptied"], records=records
        )

    async def without_keys(self, limit: int) -> list[int]:
        rows = await self._all(
            f"SELECT ord FROM {STAGE} WHERE NOT doc ?& CAST(:keys AS text[]) "
            "ORDER BY ord LIMIT :limit",
            limit=limit,
        )
        return [int(o) for (o,) in rows]

    async def repeated_keys(self, limit: int) -> list[tuple[list[int], str]]:
        """(the rows, the key as a JSON array) of each key staged more than once."""
        keys = self._key_values("s", "doc")
        rows = await self._all(
            f"SELECT array_agg(ord ORDER BY ord), jsonb_build_array({keys})::text "
            f"FROM {STAGE} s GROUP BY {keys} HAVING count(*) > 1 ORDER BY min(ord) LIMIT :limit",
            limit=limit,
        )
        return [([int(o) for o in ords], str(key)) for ords, key in rows]

    async def match(self) -> None:
        """Pair each staged row with the item's rows holding its keys (one hash join over the
        item's rows), keeping each matched row's document as it was: the counts compare the
        staged rows with it without reading the item's rows again. The temporary tables are
        analyzed so the statements after this one plan with their real sizes."""
        same = " AND ".join(f"r.\"values\"->'{k}' = s.doc->'{k}'" for k in self.keys)
        await self.session.execute(text(f"ANALYZE {STAGE}"))
        # A hash of the staged keys probed by one pass over the item's rows. Left to itself the
        # planner sorts both sides on the JSON values for a merge join: the item's million rows
        # sorted on disk, twice the time (1.4-1.8 s against 0.7-0.9 s for 100k rows staged
        # against 1.1M, PostgreSQL 15). Both settings are set back right after it.
        await self.session.execute(text("SET LOCAL enable_mergejoin = off"))
        await self.session.execute(text("SET LOCAL work_mem = '64MB'"))
        await self.session.execute(
            text(
                f'INSERT INTO {MATCH} SELECT s.ord, r.row_ref, r."values" FROM {STAGE} s '
                f"JOIN rows r ON r.data_item_id = :item AND {same}"
            ),
            {"item": self.item},
        )
        await self.session.execute(text("SET LOCAL enable_mergejoin TO DEFAULT"))
        await self.session.execute(text("SET LOCAL work_mem TO DEFAULT"))
        await self.session.execute(text(f"ANALYZE {MATCH}"))

    async def matching_several(self, limit: int) -> list[tuple[int, int]]:
        rows = await self._all(
            f"SELECT ord, count(*) FROM {MATCH} GROUP BY ord HAVING count(*) > 1 "
            "ORDER BY ord LIMIT :limit",
            limit=limit,
        )
        return [(int(o), int(n)) for o, n in rows]

    async def leaving_required_empty(
        self, required: Sequence[str], emptied: Sequence[str], limit: int
    ) -> list[int]:
        """Rows to insert without a required field, and matched rows that would empty one."""
        rows = await self._all(
            f"""
            SELECT s.ord FROM {STAGE} s
            WHERE CASE WHEN EXISTS (SELECT 1 FROM {MATCH} m WHERE m.ord = s.ord)
                       THEN EXISTS (SELECT 1 FROM unnest({_EMPTIED}) k(key)
                                    WHERE k.key = ANY(CAST(:required AS text[]))
                                      AND NOT s.doc ? k.key)
                       ELSE NOT s.doc ?& CAST(:required AS text[]) END
            ORDER BY s.ord LIMIT :limit
            """,
            required=list(required),
            emptied=list(emptied),
            limit=limit,
        )
        return [int(o) for (o,) in rows]

    async def update_matched(self, emptied: Sequence[str]) -> tuple[int, int, int, int]:
        """Update every matched row (its emptied keys removed, then the staged cells set) and
        count, from each row's document before and after: (rows updated, cells given another
        value, cells filled that were empty, cells emptied); the key fields left out."""
        rows = await self._all(
            f"""
            WITH updated AS (
                UPDATE rows r SET "values" = (r."values" - {_EMPTIED}) || s.doc
                FROM {MATCH} m JOIN {STAGE} s USING (ord)
                WHERE r.data_item_id = :item AND r.row_ref = m.row_ref
                RETURNING
                    (SELECT count(*) FROM jsonb_each(s.doc) e
                     WHERE NOT e.key = ANY(CAST(:keys AS text[])) AND m.old ? e.key
                       AND m.old->e.key IS DISTINCT FROM e.value) AS changed,
                    (SELECT count(*) FROM jsonb_object_keys(s.doc) k(key)
                     WHERE NOT m.old ? k.key) AS filled,
                    (SELECT count(*) FROM unnest({_EMPTIED}) k(key)
                     WHERE m.old ? k.key AND NOT s.doc ? k.key) AS removed
            )
            SELECT count(*), coalesce(sum(changed), 0), coalesce(sum(filled), 0),
                   coalesce(sum(removed), 0)
            FROM updated
            """,
            emptied=list(emptied),
        )
        n, changed, filled, removed = rows[0]
        return int(n), int(changed), int(filled), int(removed)

    async def unmatched(self) -> tuple[int, int]:
        """(rows to insert, their cells)."""
        rows = await self._all(
            "SELECT count(*), coalesce(sum((SELECT count(*) FROM jsonb_object_keys(s.doc))), 0) "
            f"FROM {STAGE} s WHERE NOT EXISTS (SELECT 1 FROM {MATCH} m WHERE m.ord = s.ord)"
        )
        return int(rows[0][0]), int(rows[0][1])

    async def insert_unmatched(self, first_ref: int) -> None:
        await self.session.execute(
            text(
                f"""
                INSERT INTO rows (data_item_id, row_ref, "values")
                SELECT :item, :first + row_number() OVER (ORDER BY s.ord) - 1, s.doc
                FROM {STAGE} s
                WHERE NOT EXISTS (SELECT 1 FROM {MATCH} m WHERE m.ord = s.ord)
                """
            ),
            {"item": self.item, "first": first_ref},
        )
