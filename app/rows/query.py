"""A `RowQuery` (which rows, in which order) as SQLAlchemy Core over the `rows` table: the
conditions and ORDER BY keys that the row, export and chart repositories put into their
statements. Each condition and sort key is its field type's own (app/fieldtypes); values are
bound, never written into the SQL. Part of the repository layer: only repositories call it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, TextClause, and_, or_
from sqlalchemy.sql.elements import UnaryExpression

from app.fieldtypes import kind_of
from app.fieldtypes.sql import Cell
from app.models import rows_table
from app.rows.filters import RowFilter, RowQuery
from app.rows.search import search_clause

ROWS = rows_table


def filter_clause(row_filter: RowFilter) -> ColumnElement[bool]:
    parts = [
        kind_of(c.field_type).condition(c.op, Cell(c.field_id), c.values)
        for c in row_filter.conditions
    ]
    return and_(*parts) if row_filter.match == "all" else or_(*parts)


def conditions(item_id: int, query: RowQuery | None) -> list[ColumnElement[bool] | TextClause]:
    """The item's rows that the query selects (its filter, then its search)."""
    out: list[ColumnElement[bool] | TextClause] = [ROWS.c.data_item_id == int(item_id)]
    if query is None:
        return out
    if query.filter is not None:
        out.append(filter_clause(query.filter))
    if query.search is not None:
        s = query.search
        out.append(search_clause(s.term, indexable=s.indexable, escapes=s.escapes))
    return out


def order_by(query: RowQuery | None) -> list[UnaryExpression[Any]]:
    """The query's sort keys, empty cells last both ways, then `row_ref`."""
    keys: list[UnaryExpression[Any]] = []
    for key in query.sort if query is not None else ():
        expr = kind_of(key.field_type).sort_key(Cell(key.field_id))
        keys.append((expr.desc() if key.descending else expr.asc()).nulls_last())
    keys.append(ROWS.c.row_ref.asc())
    return keys
