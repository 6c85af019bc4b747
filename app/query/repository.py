"""The aggregation engine's SQL: groups of one item's rows (by up to a few keys) with aggregates,
for the ad-hoc query and for widget data (one code path). The item was resolved for the caller;
every statement is keyed by it. Each expression is the field type's own (app/fieldtypes): group
keys, aggregates, the order of aggregates, the filter's conditions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, literal, null, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.fieldtypes import FieldType, kind_of
from app.fieldtypes.sql import Cell
from app.models import Field
from app.query.schemas import Key, Order, Series
from app.rows.filters import RowFilter, RowQuery
from app.rows.query import conditions

Group = tuple[tuple[Any, ...], list[Sequence[Any]]]  # (key values, each series' columns)


class AggregateRepository:
    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.item = int(data_item_id)

    def _columns(self, series: Sequence[Series]) -> list[list[ColumnElement[Any]]]:
        return [
            [func.count()]  # a row count
            if s.field_id is None or s.field_type is None
            else kind_of(s.field_type).aggregate(s.aggregation, Cell(s.field_id))
            for s in series
        ]

    def _still(self, field_id: int, field_type: FieldType) -> ColumnElement[bool]:
        """The field still has the type the input was checked against: an uncorrelated
        subquery, so PostgreSQL runs it once per statement, in the statement's own snapshot (a
        cast never meets values of a type changed after the fields were read)."""
        current = (
            select(Field.field_type)
            .where(Field.id == field_id, Field.data_item_id == self.item)
            .scalar_subquery()
        )
        return current == literal(str(field_type), Text)

    def _key(self, key: Key | None) -> ColumnElement[Any]:
        if key is None:  # one group (when there are rows)
            return cast(null(), Text)
        still = self._still(key.field_id, key.field_type)
        return kind_of(key.field_type).group_key(Cell(key.field_id), key.grouping, still)

    async def groups(
        self,
        *,
        keys: Sequence[Key | None],
        series: Sequence[Series],
        row_filter: RowFilter | None,
        order: Sequence[Order],
        limit: int,
    ) -> tuple[list[Group], int]:
        """The first `limit` groups of the rows matching the filter (a None key: one group)
        with each series' aggregate columns, and how many groups there are. Order: `order`
        (keys first, then series; empty values last both ways), then every key ascending."""
        columns = self._columns(series)
        grouped = (
            select(
                *(self._key(k).label(f"k{i}") for i, k in enumerate(keys)),
                *(
                    c.label(f"a{i}_{j}")
                    for i, cols in enumerate(columns)
                    for j, c in enumerate(cols)
                ),
            )
            .where(*conditions(self.item, RowQuery(filter=row_filter)))
            .group_by(*(text(str(i + 1)) for i in range(len(keys))))
            .subquery("g")
        )
        by: list[ColumnElement[Any]] = []
        for o in order:
            expr: ColumnElement[Any]
            if o.position < len(keys):
                expr = grouped.c[f"k{o.position}"]
            else:
                i = o.position - len(keys)
                s, cols = series[i], [grouped.c[f"a{i}_{j}"] for j in range(len(columns[i]))]
                expr = cols[0]
                if s.field_type is not None:
                    expr = kind_of(s.field_type).aggregate_order(s.aggregation, cols)
            by.append((expr.desc() if o.descending else expr.asc()).nulls_last())
        by.extend(grouped.c[f"k{i}"].asc().nulls_last() for i in range(len(keys)))
        stmt = select(grouped, func.count().over().label("total_groups")).order_by(*by).limit(limit)
        rows = [tuple(r) for r in await self.session.execute(stmt)]
        total = int(rows[0][-1]) if rows else 0
        n = len(keys)
        return [(r[:n], _split(r[n:-1], columns)) for r in rows], total

    async def totals(
        self, series: Sequence[Series], row_filter: RowFilter | None
    ) -> list[Sequence[Any]]:
        """Each series' aggregate columns over every row that matches (also for no rows)."""
        columns = self._columns(series)
        stmt = select(*(c for cols in columns for c in cols)).where(
            *conditions(self.item, RowQuery(filter=row_filter))
        )
        return _split(tuple((await self.session.execute(stmt)).one()), columns)


def _split(values: Sequence[Any], columns: Sequence[Sequence[object]]) -> list[Sequence[Any]]:
    """A row of aggregate columns, cut per series."""
    out: list[Sequence[Any]] = []
    at = 0
    for cols in columns:
        out.append(values[at : at + len(cols)])
        at += len(cols)
    return out
