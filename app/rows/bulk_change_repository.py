"""SQL of bulk changes (`PATCH` and `DELETE …/rows/`): what a change would do to the rows a
selection picks (counted in one pass), the one UPDATE or DELETE that does it, and the refs that
are not rows. Every statement is keyed by one item's id, resolved for the caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    TextClause,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.fieldtypes.sql import VALUES, Cell
from app.rows.filters import RowFilter, RowQuery
from app.rows.query import ROWS, conditions


@dataclass(frozen=True)
class Selection:
    """Rows of the item: those of `refs` (known to exist), or those `filter` matches, or all."""

    refs: Sequence[int] | None = None
    filter: RowFilter | None = None


@dataclass(frozen=True)
class Change:
    """What a bulk update writes: `cells`, field id -> the new value's JSON text; `emptied`, the
    fields whose cells it empties."""

    cells: Mapping[int, str]
    emptied: Sequence[int]


@dataclass
class ChangeCounts:
    matched: int
    changed_rows: int
    updated: dict[int, int]  # field id -> cells whose value is replaced
    created: dict[int, int]  # field id -> empty cells that get a value
    removed: dict[int, int]  # field id -> cells emptied


def _selected(item_id: int, selection: Selection) -> list[ColumnElement[bool] | TextClause]:
    query = RowQuery(filter=selection.filter) if selection.filter is not None else None
    where = conditions(item_id, query)
    if selection.refs is not None:
        refs = bindparam(None, list(selection.refs), type_=ARRAY(BigInteger))
        where.append(ROWS.c.row_ref == func.any(refs))
    return where


def _present(cell: Cell) -> ColumnElement[bool]:
    """The row holds a value for the field (a key holding JSON null counts as empty, as the
    single-row writes read a row); never NULL, so it can be negated."""
    null = literal("null", Text)
    return func.coalesce(cell.json_type(), null) != null


def _json(fragment: str) -> ColumnElement[Any]:
    return cast(bindparam(None, fragment, type_=Text), JSONB)


def _cell_changes(change: Change) -> list[ColumnElement[bool]]:
    """Per field: the row's cell differs from what the change writes (jsonb equality: `1.50`
    equals `1.5`, as the single-row patch compares stored values)."""
    out: list[ColumnElement[bool]] = []
    for fid, fragment in sorted(change.cells.items()):
        cell = Cell(fid)
        out.append(or_(~_present(cell), cell.json != _json(fragment)))
    out.extend(_present(Cell(fid)) for fid in sorted(change.emptied))
    return out


class BulkChangeRepository:
    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.item = int(data_item_id)

    async def missing_refs(self, refs: Sequence[int]) -> list[int]:
        """The refs (in the order given) that are not rows of the item."""
        result = await self.session.execute(
            text(
                """
                SELECT g.ref FROM unnest(CAST(:refs AS bigint[])) WITH ORDINALITY AS g(ref, n)
                WHERE NOT EXISTS (
                    SELECT 1 FROM rows r WHERE r.data_item_id = :item AND r.row_ref = g.ref)
                ORDER BY g.n
                """
            ),
            {"item": self.item, "refs": list(refs)},
        )
        return [int(ref) for (ref,) in result]

    async def change_counts(self, selection: Selection, change: Change) -> ChangeCounts:
        """What `change` would do to the selected rows, in one pass over them (before any is
        written: the update that follows selects the same rows, the item being locked)."""
        where = _selected(self.item, selection)
        columns: list[ColumnElement[Any]] = [
            func.count().label("matched"),
            func.count().filter(or_(*_cell_changes(change))).label("changed"),
        ]
        for fid, fragment in sorted(change.cells.items()):
            cell = Cell(fid)
            columns.append(
                func.count()
                .filter(and_(_present(cell), cell.json != _json(fragment)))
                .label(f"u{fid}")
            )
            columns.append(func.count().filter(~_present(cell)).label(f"c{fid}"))
        for fid in sorted(change.emptied):
            columns.append(func.count().filter(_present(Cell(fid))).label(f"r{fid}"))
        row = (await self.session.execute(select(*columns).where(*where))).one()._mapping
        return ChangeCounts(
            matched=int(row["matched"]),
            changed_rows=int(row["changed"]),
            updated={fid: int(row[f"u{fid}"]) for fid in change.cells},
            created={fid: int(row[f"c{fid}"]) for fid in change.cells},
            removed={fid: int(row[f"r{fid}"]) for fid in change.emptied},
        )

    async def apply(self, selection: Selection, change: Change) -> int:
        """One UPDATE of the selected rows whose cells differ: the emptied keys removed, the
        new cells merged in (`("values" - keys) || cells`), every other cell kept as stored.
        Returns the rows written."""
        where = _selected(self.item, selection)
        document: ColumnElement[Any] = VALUES
        if change.emptied:
            keys = bindparam(None, [str(f) for f in sorted(change.emptied)], type_=ARRAY(Text))
            document = document.op("-", return_type=JSONB)(keys)
        if change.cells:
            cells = ",".join(f'"{fid}":{frag}' for fid, frag in sorted(change.cells.items()))
            document = document.op("||", return_type=JSONB)(_json("{" + cells + "}"))
        result = await self.session.execute(
            update(ROWS).where(*where, or_(*_cell_changes(change))).values({VALUES: document})
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete(self, selection: Selection) -> tuple[int, dict[str, int]]:
        """One DELETE of the selected rows; (rows deleted, non-empty cells they held per key of
        their documents), counted from the deleted rows themselves in the same statement. The
        caller updates the item's row count."""
        where = _selected(self.item, selection)
        gone = delete(ROWS).where(*where).returning(VALUES.label("doc")).cte("gone")
        each = func.jsonb_each(gone.c.doc).table_valued("key", "value").alias("cell")
        rows = select(literal(None, Text).label("key"), func.count().label("n")).select_from(gone)
        cells = (
            select(each.c.key, func.count().label("n"))
            .select_from(gone)
            .join(each, true())
            .where(each.c.value != cast(literal("null", Text), JSONB))
            .group_by(each.c.key)
        )
        deleted = 0
        per_key: dict[str, int] = {}
        for key, n in await self.session.execute(union_all(rows, cells)):
            if key is None:
                deleted = int(n)
            else:
                per_key[str(key)] = int(n)
        return deleted, per_key

    async def shrink_row_count(self, deleted: int) -> None:
        await self.session.execute(
            text("UPDATE data_items SET row_count = row_count - :n WHERE id = :item"),
            {"n": deleted, "item": self.item},
        )
