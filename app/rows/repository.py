"""Row SQL. A repository is built for one data item already resolved for the calling account;
every statement is keyed by that item's id (never joining rows of two items)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import sql
from app.fieldtypes.sql import Cell
from app.rows import partitions
from app.rows.filters import RowQuery
from app.rows.query import ROWS, conditions, order_by


class RowRepository:
    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.item = int(data_item_id)

    async def allocate(self, count: int) -> int:
        """Reserve `count` consecutive row refs; returns the first. The row lock on the item
        serialises concurrent writers until commit: refs are disjoint and gap-free per request."""
        result = await self.session.execute(
            text(
                """
                UPDATE data_items
                SET next_row_ref = next_row_ref + :n, row_count = row_count + :n, updated_at = now()
                WHERE id = :item
                RETURNING next_row_ref - :n
                """
            ),
            {"n": count, "item": self.item},
        )
        return int(result.scalar_one())

    async def mark_control_chars(self) -> None:
        await self.session.execute(
            text("UPDATE data_items SET has_control_chars = true WHERE id = :item"),
            {"item": self.item},
        )

    async def lock_item(self) -> int:
        """Serialise with other writers of this item; returns the current row count."""
        result = await self.session.execute(
            text("UPDATE data_items SET updated_at = now() WHERE id = :item RETURNING row_count"),
            {"item": self.item},
        )
        return int(result.scalar_one())

    async def copy_documents(self, first_ref: int, documents: Sequence[str]) -> None:
        """Write rows with binary COPY into the item's partition (one round trip)."""
        conn = await self.session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        item = self.item
        await driver.copy_records_to_table(
            f"p{item}",
            schema_name=partitions.SCHEMA,
            columns=["data_item_id", "row_ref", "values"],
            records=((item, first_ref + i, doc) for i, doc in enumerate(documents)),
        )

    async def get_document(self, row_ref: int, *, for_update: bool = False) -> str | None:
        lock = " FOR UPDATE" if for_update else ""
        result = await self.session.execute(
            text(
                'SELECT "values"::text FROM rows WHERE data_item_id = :item AND row_ref = :ref'
                + lock
            ),
            {"item": self.item, "ref": row_ref},
        )
        value = result.scalar_one_or_none()
        return None if value is None else str(value)

    async def render(self, row_ref: int, all_fields: str) -> str | None:
        """The row as the API shows it: every field key present (null where empty)."""
        result = await self.session.execute(
            text(
                'SELECT (CAST(:nulls AS jsonb) || "values")::text FROM rows '
                "WHERE data_item_id = :item AND row_ref = :ref"
            ),
            {"item": self.item, "ref": row_ref, "nulls": all_fields},
        )
        value = result.scalar_one_or_none()
        return None if value is None else str(value)

    async def merge_document(self, row_ref: int, cells: str, emptied: list[str]) -> None:
        """Set the cells of `cells` (a document of the changed non-empty cells) and remove the
        keys in `emptied`; every other cell stays exactly as stored."""
        await self.session.execute(
            text(
                'UPDATE rows SET "values" = ("values" - CAST(:emptied AS text[])) '
                "|| CAST(:cells AS jsonb) WHERE data_item_id = :item AND row_ref = :ref"
            ),
            {"item": self.item, "ref": row_ref, "cells": cells, "emptied": emptied},
        )

    async def delete(self, row_ref: int) -> None:
        await self.session.execute(
            text("DELETE FROM rows WHERE data_item_id = :item AND row_ref = :ref"),
            {"item": self.item, "ref": row_ref},
        )
        await self.session.execute(
            text("UPDATE data_items SET row_count = row_count - 1 WHERE id = :item"),
            {"item": self.item},
        )

    async def page(
        self, all_fields: str, *, offset: int, limit: int, query: RowQuery | None = None
    ) -> list[tuple[int, str]]:
        """One page of the rows `query` selects, in its order (row_ref always the last key).
        The offset is walked over row refs only; documents are rendered for the page's rows
        alone (rendering every skipped row made offset 900,000 take seconds)."""
        refs_stmt = (
            select(ROWS.c.row_ref)
            .where(*conditions(self.item, query))
            .order_by(*order_by(query))
            .offset(offset)
            .limit(limit)
        )
        refs = [int(ref) for (ref,) in await self.session.execute(refs_stmt)]
        if not refs:
            return []
        docs = dict(
            (int(ref), str(doc))
            for ref, doc in await self.session.execute(
                text(
                    'SELECT row_ref, (CAST(:nulls AS jsonb) || "values")::text FROM rows '
                    "WHERE data_item_id = :item AND row_ref = ANY(:refs)"
                ),
                {"item": self.item, "nulls": all_fields, "refs": refs},
            )
        )
        return [(ref, docs[ref]) for ref in refs]

    async def count(self, query: RowQuery | None = None) -> int:
        """How many rows `query` selects."""
        stmt = select(func.count()).select_from(ROWS).where(*conditions(self.item, query))
        return int((await self.session.execute(stmt)).scalar_one())

    async def count_holding(self, field_id: int, json_values: Sequence[str]) -> int:
        """How many rows hold one of these values (JSON texts) in the field."""
        holding = Cell(field_id).json == func.any(
            cast(bindparam("vals", list(json_values), type_=ARRAY(Text)), ARRAY(JSONB))
        )
        stmt = (
            select(func.count()).select_from(ROWS).where(ROWS.c.data_item_id == self.item, holding)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def strip_field(self, field_id: int) -> int:
        """Remove a field's values from every row, in one statement."""
        result = await self.session.execute(
            text(
                'UPDATE rows SET "values" = "values" - :key '
                'WHERE data_item_id = :item AND "values" ? :key'
            ),
            {"item": self.item, "key": str(field_id)},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def distinct_values(self, field_id: int) -> list[str]:
        """Each distinct stored value of a field, as JSON text."""
        result = await self.session.execute(
            text(
                'SELECT DISTINCT ("values"->:key)::text FROM rows '
                'WHERE data_item_id = :item AND "values" ? :key'
            ),
            {"item": self.item, "key": str(field_id)},
        )
        return [str(v) for (v,) in result]

    async def first_rows_with(
        self, field_id: int, json_values: Sequence[str], limit: int
    ) -> list[tuple[int, str]]:
        """(row_ref, value text) of the first rows holding one of these values."""
        result = await self.session.execute(
            text(
                'SELECT row_ref, "values"->>:key FROM rows '
                'WHERE data_item_id = :item AND "values"->:key = ANY(CAST(:vals AS jsonb[])) '
                "ORDER BY row_ref LIMIT :limit"
            ),
            {"item": self.item, "key": str(field_id), "vals": list(json_values), "limit": limit},
        )
        return [(int(ref), str(v)) for ref, v in result]

    async def convert_field(
        self, field_id: int, old: Sequence[str], new: Sequence[str | None]
    ) -> None:
        """Rewrite a field's values through an old -> new mapping (JSON texts; None empties the
        cell), in one statement."""
        await self.session.execute(
            text(
                """
                UPDATE rows r SET "values" = CASE WHEN m.new IS NULL THEN r."values" - :key
                                                  ELSE jsonb_set(r."values", ARRAY[:key], m.new) END
                FROM unnest(CAST(:old AS jsonb[]), CAST(:new AS jsonb[])) AS m(old, new)
                WHERE r.data_item_id = :item AND r."values"->:key = m.old
                """
            ),
            {"item": self.item, "key": str(field_id), "old": list(old), "new": list(new)},
        )

    async def convert_to_text(self, field_id: int) -> None:
        """Any type to char/text: the value as shown becomes the string (cannot fail)."""
        await self.session.execute(
            text(
                'UPDATE rows SET "values" = jsonb_set("values", ARRAY[:key], to_jsonb("values"->>:key)) '
                'WHERE data_item_id = :item AND "values" ? :key '
                "AND jsonb_typeof(\"values\"->:key) <> 'string'"
            ),
            {"item": self.item, "key": str(field_id)},
        )


async def read_page(conn: Any, account_id: int, item_id: int, offset: int, limit: int) -> list[Any]:
    """A page of rows in row-ref order with the item's row count (asyncpg records: row_count,
    row_ref, doc; one record with a null row_ref when the page is empty; none when the item is
    not the account's). One statement, so `total` and the page agree without a transaction
    (app/core/reads.py). The offset is walked over row refs only, documents are rendered for the
    page's rows alone, each with every field's key (null where empty)."""
    statement = sql(
        """
        SELECT d.row_count, p.row_ref, p.doc
        FROM data_items d
        LEFT JOIN LATERAL (
            SELECT r.row_ref, (n.nulls || r."values")::text AS doc
            FROM (SELECT row_ref FROM rows WHERE data_item_id = $1
                  ORDER BY row_ref OFFSET $3 LIMIT $4) k
            JOIN rows r ON r.data_item_id = $1 AND r.row_ref = k.row_ref
            CROSS JOIN (SELECT coalesce(jsonb_object_agg(f.id::text, NULL), '{}'::jsonb) AS nulls
                        FROM fields f WHERE f.data_item_id = $1) n
        ) p ON true
        WHERE d.id = $1 AND d.account_id = $2
        ORDER BY p.row_ref
        """
    )
    result: list[Any] = await conn.fetch(statement, item_id, account_id, offset, limit)
    return result
