"""Upserts: rows that match an existing row on the key fields update that row's given cells;
the others are inserted. For `append-from-file` and `POST …/rows/bulk/` with `key_fields`.

The incoming rows are staged first, in a temporary table of the transaction (binary COPY, as a
load writes its rows), then PostgreSQL does the rest in a few set statements: every row has its
keys, no key twice in the request, at most one existing row per key (a hash join over the
item's rows), the counts, one UPDATE of the matched rows and one INSERT of the others. Any
problem is a 400 naming the rows and keys, and the caller's transaction rolls back: nothing is
written.

Matching compares stored JSON values: text exactly (case and spaces count), numbers by value
(`1.50` matches `1.5`), dates and booleans as stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.rows.repository import RowRepository

MAX_REPORTED = 20
_STAGE = "upsert_stage"


@dataclass
class UpsertCounts:
    rows_inserted: int = 0
    rows_updated: int = 0
    cells_updated: int = 0  # cells of matched rows given a different value
    cells_created: int = 0  # cells of inserted rows, and cells of matched rows that were empty
    cells_removed: int = 0  # cells of matched rows emptied


class UpsertLoad:
    """A load whose rows are upserted on `keys` (field id -> label). `write` stages rows (as
    RowLoad.write writes them); `finish` applies them. `emptied`: the field ids a staged row
    empties when it matches (an append: every loaded field; a bulk write: per row, the cells
    given as null, passed to `write`). Runs in the caller's transaction, which must hold the
    item's row lock."""

    def __init__(
        self,
        session: AsyncSession,
        item_id: int,
        keys: Mapping[int, str],
        *,
        required: Sequence[int],
        emptied: Sequence[int] = (),
    ) -> None:
        self.session = session
        self.item_id = int(item_id)
        self.keys = [str(k) for k in keys]
        self.labels = list(keys.values())
        self.required = [str(r) for r in required]
        self.emptied = [str(e) for e in emptied]
        self._repo = RowRepository(session, item_id)
        self._staged = False

    async def _stage(self) -> None:
        if not self._staged:
            await self.session.execute(
                text(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
                    "(ord bigint PRIMARY KEY, doc jsonb NOT NULL, emptied text[]) ON COMMIT DROP"
                )
            )
            await self.session.execute(text(f"TRUNCATE {_STAGE}"))
            self._staged = True

    async def allocate(self, count: int) -> int:
        """(The RowLoad interface) staged rows are numbered from 0; refs are given by finish."""
        await self._stage()
        return 0

    async def write(
        self, first: int, documents: Sequence[str], emptied: Sequence[Sequence[str]] | None = None
    ) -> None:
        """Stage rows `first`, `first + 1`, … (their order in the request or file)."""
        await self._stage()
        conn = await self.session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        records = (
            (first + i, doc, None if emptied is None else list(emptied[i]))
            for i, doc in enumerate(documents)
        )
        await driver.copy_records_to_table(
            _STAGE, columns=["ord", "doc", "emptied"], records=records
        )

    async def mark_control_chars(self) -> None:
        await self._repo.mark_control_chars()

    async def _rows(self, sql: str, **params: Any) -> list[Any]:
        result = await self.session.execute(
            text(sql), {"item": self.item_id, "keys": self.keys, **params}
        )
        return list(result)

    def _key_sql(self, alias: str, column: str) -> str:
        return ", ".join(f"{alias}.{column}->'{k}'" for k in self.keys)

    async def finish(self, row_number: Any = None) -> UpsertCounts:
        """Check, then update the matched rows and insert the others. `row_number(ord)`: how a
        staged row is named in errors (default: its 0-based index, as a bulk write names rows)."""
        await self._stage()
        name = row_number or (lambda ord_: ord_)
        await self._check_keys(name)
        await self.session.execute(
            text(
                "CREATE TEMPORARY TABLE IF NOT EXISTS upsert_match "
                "(ord bigint, row_ref bigint) ON COMMIT DROP"
            )
        )
        await self.session.execute(text("TRUNCATE upsert_match"))
        matches = " AND ".join(f"r.\"values\"->'{k}' = s.doc->'{k}'" for k in self.keys)
        await self.session.execute(
            text(
                f"INSERT INTO upsert_match SELECT s.ord, r.row_ref FROM {_STAGE} s "
                f"JOIN rows r ON r.data_item_id = :item AND {matches}"
            ),
            {"item": self.item_id},
        )
        several = await self._rows(
            "SELECT ord, count(*) FROM upsert_match GROUP BY ord HAVING count(*) > 1 "
            f"ORDER BY ord LIMIT {MAX_REPORTED}"
        )
        if several:
            raise BadRequest(
                f"{self._key_names()} must identify one row, but the key of row "
                f"{name(several[0][0])} matches {several[0][1]} existing rows. Nothing was written.",
                details=[
                    {"row": name(o), "matches": int(n), "message": "matches more than one row"}
                    for o, n in several
                ],
            )
        await self._check_required(name)
        counts = UpsertCounts()
        emptied = "coalesce(s.emptied, CAST(:emptied AS text[]))"
        cells = await self._rows(
            f"""
            SELECT count(*) FILTER (WHERE r."values" ? e.key),
                   count(*) FILTER (WHERE NOT r."values" ? e.key)
            FROM upsert_match m JOIN {_STAGE} s USING (ord)
            JOIN rows r ON r.data_item_id = :item AND r.row_ref = m.row_ref
            CROSS JOIN LATERAL jsonb_each(s.doc) e
            WHERE NOT e.key = ANY(CAST(:keys AS text[]))
              AND r."values"->e.key IS DISTINCT FROM e.value
            """
        )
        counts.cells_updated, created_in_matched = int(cells[0][0]), int(cells[0][1])
        removed = await self._rows(
            f"""
            SELECT count(*) FROM upsert_match m JOIN {_STAGE} s USING (ord)
            JOIN rows r ON r.data_item_id = :item AND r.row_ref = m.row_ref
            CROSS JOIN LATERAL unnest({emptied}) k(key)
            WHERE r."values" ? k.key AND NOT s.doc ? k.key
            """,
            emptied=self.emptied,
        )
        counts.cells_removed = int(removed[0][0])
        updated = await self.session.execute(
            text(
                f"""
                UPDATE rows r SET "values" = (r."values" - {emptied}) || s.doc
                FROM upsert_match m JOIN {_STAGE} s USING (ord)
                WHERE r.data_item_id = :item AND r.row_ref = m.row_ref
                """
            ),
            {"item": self.item_id, "emptied": self.emptied},
        )
        counts.rows_updated = int(updated.rowcount)  # type: ignore[attr-defined]
        inserting = await self._rows(
            f"SELECT count(*), coalesce(sum((SELECT count(*) FROM jsonb_object_keys(s.doc))), 0) "
            f"FROM {_STAGE} s WHERE NOT EXISTS (SELECT 1 FROM upsert_match m WHERE m.ord = s.ord)"
        )
        counts.rows_inserted, inserted_cells = int(inserting[0][0]), int(inserting[0][1])
        counts.cells_created = created_in_matched + inserted_cells
        if counts.rows_inserted:
            first = await self._repo.allocate(counts.rows_inserted)
            await self.session.execute(
                text(
                    f"""
                    INSERT INTO rows (data_item_id, row_ref, "values")
                    SELECT :item, :first + row_number() OVER (ORDER BY s.ord) - 1, s.doc
                    FROM {_STAGE} s
                    WHERE NOT EXISTS (SELECT 1 FROM upsert_match m WHERE m.ord = s.ord)
                    """
                ),
                {"item": self.item_id, "first": first},
            )
        return counts

    def _key_names(self, *, lower: bool = False) -> str:
        labels = ", ".join(repr(label) for label in self.labels)
        what = "the key field" if lower else "The key field"
        return what + ("s " if len(self.labels) > 1 else " ") + labels

    async def _check_keys(self, name: Any) -> None:
        """Every staged row has every key; no key twice."""
        missing = await self._rows(
            f"SELECT ord FROM {_STAGE} WHERE NOT doc ?& CAST(:keys AS text[]) "
            f"ORDER BY ord LIMIT {MAX_REPORTED}"
        )
        if missing:
            raise BadRequest(
                f"Row {name(missing[0][0])} has no value for {self._key_names(lower=True)}: an "
                "upsert finds rows by their keys, so every row needs them. Nothing was written.",
                details=[{"row": name(o), "message": "has an empty key"} for (o,) in missing],
            )
        repeated = await self._rows(
            f"""
            SELECT array_agg(ord ORDER BY ord), jsonb_build_array({self._key_sql("s", "doc")})::text
            FROM {_STAGE} s GROUP BY {self._key_sql("s", "doc")}
            HAVING count(*) > 1 ORDER BY min(ord) LIMIT {MAX_REPORTED}
            """
        )
        if repeated:
            rows, key = repeated[0]
            raise BadRequest(
                f"The key {_key_text(key)} appears in more than one row ("
                + ", ".join(str(name(o)) for o in rows[:10])
                + "); each key may appear once in an upsert. Nothing was written.",
                details=[
                    {
                        "rows": [name(o) for o in r[:10]],
                        "key": _key_text(k),
                        "message": "key repeated in the request",
                    }
                    for r, k in repeated
                ],
            )

    async def _check_required(self, name: Any) -> None:
        """Inserted rows fill every required field; matched rows do not empty one."""
        if not self.required:
            return
        bad = await self._rows(
            f"""
            SELECT s.ord FROM {_STAGE} s
            WHERE CASE WHEN EXISTS (SELECT 1 FROM upsert_match m WHERE m.ord = s.ord)
                       THEN EXISTS (SELECT 1 FROM unnest(coalesce(s.emptied, CAST(:emptied AS text[]))) k(key)
                                    WHERE k.key = ANY(CAST(:required AS text[])) AND NOT s.doc ? k.key)
                       ELSE NOT s.doc ?& CAST(:required AS text[]) END
            ORDER BY s.ord LIMIT {MAX_REPORTED}
            """,
            required=self.required,
            emptied=self.emptied,
        )
        if bad:
            raise BadRequest(
                f"Row {name(bad[0][0])} would leave a required field empty. Nothing was written.",
                details=[
                    {"row": name(o), "message": "leaves a required field empty"} for (o,) in bad
                ],
            )


def _key_text(key_json: str) -> str:
    values = json.loads(key_json)
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)
