"""Ad-hoc queries over an item's rows (`POST …/query/`), and the aggregation engine widget data
is computed with (one code path for aggregations, see app/widgets/data.py).

A query groups the rows matching `filter` by up to three fields (a date field by its
`date_grouping` bucket) and computes each aggregation per group, in one SQL statement over the
item's rows. Group values are shown as widget labels (text; "(empty)" for rows without a value);
aggregates are exact (sum and median of decimals in numeric, avg rounded half-up to 2 places or
more when the values carry more, as widgets and summaries do). Without `group_by` the answer is
one row over every matching row. Rows are ordered by `sort`, then by the group columns ascending
(empty last), and cut to `limit` (`truncated` says so).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.core.jsonexact import dumps
from app.fieldtypes import Aggregation, DateGrouping, FieldType, Measure, Statistic, kind_of
from app.fieldtypes.decimal import decimal_text
from app.fieldtypes.text import escape_formula
from app.models import DataItem
from app.models import Field as FieldModel
from app.query.repository import AggregateRepository, Group
from app.query.schemas import Key, Order, QueryOp, QueryRequest, Series
from app.rows import filters

NULL_LABEL = "(empty)"

_MEASURES: dict[QueryOp, Measure] = {
    QueryOp.COUNT: Aggregation.COUNT,
    QueryOp.COUNT_DISTINCT: Aggregation.DISTINCT_COUNT,
    QueryOp.DISTINCT_COUNT: Aggregation.DISTINCT_COUNT,
    QueryOp.SUM: Aggregation.SUM,
    QueryOp.AVG: Aggregation.AVG,
    QueryOp.MIN: Aggregation.MIN,
    QueryOp.MAX: Aggregation.MAX,
    QueryOp.MEDIAN: Statistic.MEDIAN,
}
MEASURE_NAMES: dict[Measure, str] = {
    Aggregation.COUNT: "Count",
    Aggregation.SUM: "Sum",
    Aggregation.AVG: "Average",
    Aggregation.MIN: "Min",
    Aggregation.MAX: "Max",
    Aggregation.DISTINCT_COUNT: "Distinct count",
    Statistic.MEDIAN: "Median",
}
_COUNTS = (Aggregation.COUNT, Aggregation.DISTINCT_COUNT)
_DECIMALS = (Aggregation.SUM, Aggregation.AVG, Statistic.MEDIAN)

Problems = list[dict[str, Any]]

# ------------------------------------------------------------------------- the engine


async def groups(
    session: AsyncSession,
    item: DataItem,
    *,
    keys: Sequence[Key | None],
    series: Sequence[Series],
    row_filter: filters.RowFilter | None,
    order: Sequence[Order],
    limit: int,
) -> tuple[list[Group], int]:
    """The first `limit` groups (raw key values, each series' aggregate columns for `finish`)
    and how many there are; see `AggregateRepository.groups`."""
    return await AggregateRepository(session, item.id).groups(
        keys=keys, series=series, row_filter=row_filter, order=order, limit=limit
    )


async def totals(
    session: AsyncSession,
    item: DataItem,
    series: Sequence[Series],
    row_filter: filters.RowFilter | None,
) -> list[Any]:
    """Each series' value over every matching row (also for none)."""
    raw = await AggregateRepository(session, item.id).totals(series, row_filter)
    return finish(series, raw)


def finish(series: Sequence[Series], raw: Sequence[Sequence[Any]]) -> list[Any]:
    """Each series' value from its aggregate columns."""
    return [
        int(r[0] or 0) if s.field_type is None else kind_of(s.field_type).finish(s.aggregation, r)
        for s, r in zip(series, raw, strict=True)
    ]


def label_text(value: Any, default: str) -> str:
    """A group key as widgets show it (`default` for rows without a value)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        with localcontext() as ctx:
            ctx.prec = 1_000
            return decimal_text(value.normalize())
    return str(value)


# ---------------------------------------------------------------------------- the query


def _describe(field: FieldModel) -> str:
    return f"{field.field_type} field {field.id} ({field.field_label})"


def _no_field(field_id: int) -> str:
    # The same words whether the id exists in another item or account or nowhere.
    return f"field {field_id} is not a field of this data item"


class _Plan:
    """A checked query: its keys, series and output columns."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.series: list[Series] = []
        self.columns: list[dict[str, Any]] = []
        self.order: list[Order] = []


def _plan_keys(
    payload: QueryRequest, fields: dict[int, FieldModel], plan: _Plan, problems: Problems
) -> None:
    grouping = payload.date_grouping
    seen: set[int] = set()
    dated = False
    for i, field_id in enumerate(payload.group_by):
        field = fields.get(field_id)
        if field is None:
            problems.append({"field": f"group_by.{i}", "message": _no_field(field_id)})
            continue
        if field_id in seen:
            problems.append({"field": f"group_by.{i}", "message": f"field {field_id} repeats"})
            continue
        seen.add(field_id)
        kind = kind_of(field.field_type)
        bucket = grouping if kind.date_groupings else DateGrouping.NONE
        dated = dated or kind.date_groupings
        plan.keys.append(Key(field.id, FieldType(field.field_type), bucket))
        name = field.field_label + (f" ({bucket})" if bucket is not DateGrouping.NONE else "")
        plan.columns.append({"name": name, "field_id": field.id, "type": field.field_type})
    if grouping is not DateGrouping.NONE and not dated and not problems:
        grouped = ", ".join(_describe(fields[f]) for f in payload.group_by) or "none"
        problems.append(
            {
                "field": "date_grouping",
                "message": f"{grouping} needs a date field in group_by (group_by: {grouped})",
            }
        )


def _plan_series(
    payload: QueryRequest, fields: dict[int, FieldModel], plan: _Plan, problems: Problems
) -> None:
    seen: set[tuple[int | None, Measure]] = set()
    for i, agg in enumerate(payload.aggregations):
        where = f"aggregations.{i}"
        measure = _MEASURES[agg.op]
        if agg.field is None:
            if measure is not Aggregation.COUNT:
                problems.append({"field": where, "message": f"{agg.op} needs a field"})
                continue
            series, name, kind_name = Series(None, None, measure), "Count", "integer"
        else:
            field = fields.get(agg.field)
            if field is None:
                problems.append({"field": f"{where}.field", "message": _no_field(agg.field)})
                continue
            kind = kind_of(field.field_type)
            fits = [*kind.aggregations, *kind.statistics]
            if measure not in fits:
                ops = [o for o, m in _MEASURES.items() if m in fits and o != "distinct_count"]
                problems.append(
                    {
                        "field": f"{where}.op",
                        "message": f"{agg.op} does not fit {_describe(field)}: "
                        f"use {' or '.join(ops)}",
                    }
                )
                continue
            series = Series(field.id, FieldType(field.field_type), measure)
            name = f"{MEASURE_NAMES[measure]} of {field.field_label}"
            kind_name = (
                "integer"
                if measure in _COUNTS
                else "decimal"
                if measure in _DECIMALS
                else field.field_type
            )
        if (series.field_id, measure) in seen:
            problems.append({"field": where, "message": f"repeats an aggregation ({name})"})
            continue
        seen.add((series.field_id, measure))
        plan.series.append(series)
        plan.columns.append({"name": name, "field_id": series.field_id, "type": kind_name})


def _plan_sort(payload: QueryRequest, plan: _Plan, problems: Problems) -> None:
    names = [c["name"] for c in plan.columns]
    for i, key in enumerate(payload.sort):
        where = f"sort.{i}.column"
        column = key.column
        if isinstance(column, str):
            if names.count(column) != 1:
                shown = ", ".join(repr(n) for n in names)
                problem = "is ambiguous: use its position" if column in names else "is not one"
                problems.append(
                    {"field": where, "message": f"column {column!r} {problem} (columns: {shown})"}
                )
                continue
            position = names.index(column)
        elif 0 <= column < len(names):
            position = column
        else:
            problems.append(
                {
                    "field": where,
                    "message": f"column {column} is out of range (0 to {len(names) - 1})",
                }
            )
            continue
        plan.order.append(Order(position, key.desc))


def plan_query(payload: QueryRequest, fields: Sequence[FieldModel]) -> _Plan:
    """The checked query; a 400 naming every problem (unknown or another item's field ids, an
    op that does not fit its field's type, a date grouping without a date field, a bad sort
    column, a bad filter)."""
    by_id = {f.id: f for f in fields}
    plan = _Plan()
    problems: Problems = []
    if not payload.group_by and not payload.aggregations:
        problems.append(
            {"field": "aggregations", "message": "give group_by, aggregations, or both"}
        )
    _plan_keys(payload, by_id, plan, problems)
    _plan_series(payload, by_id, plan, problems)
    if payload.filter is not None:
        problems.extend(filters.filter_problems(payload.filter, by_id, where="filter"))
    if not problems:
        _plan_sort(payload, plan, problems)
    if problems:
        first = problems[0]
        message = f"Invalid query: {first['field']}: {first['message']}."
        if len(problems) > 1:
            message = f"Invalid query: {len(problems)} problems (see details)."
        raise BadRequest(message, details=problems)
    return plan


async def run_query(
    session: AsyncSession, item: DataItem, fields: Sequence[FieldModel], payload: QueryRequest
) -> dict[str, Any]:
    """`{"columns": [{"name", "field_id", "type"}], "rows": [[…]], "truncated"}`."""
    plan = plan_query(payload, fields)
    row_filter = None
    if payload.filter is not None:
        row_filter = filters.resolve_filter(payload.filter, {f.id: f for f in fields})
    if not plan.keys:
        values = await totals(session, item, plan.series, row_filter)
        return {"columns": plan.columns, "rows": [values], "truncated": False}
    found, total = await groups(
        session,
        item,
        keys=plan.keys,
        series=plan.series,
        row_filter=row_filter,
        order=plan.order,
        limit=payload.limit,
    )
    rows = [
        [*(label_text(k, NULL_LABEL) for k in keys), *finish(plan.series, raw)]
        for keys, raw in found
    ]
    return {"columns": plan.columns, "rows": rows, "truncated": total > len(rows)}


TEXT_TYPES = (FieldType.CHAR.value, FieldType.TEXT.value)


def _csv_cell(value: Any, escape: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_formula(value) if escape else value
    return dumps(value)  # numbers exactly as the JSON answer writes them


def csv_text(answer: dict[str, Any], *, escape_formulas: bool = False) -> str:
    """The answer as CSV: a header row of column names, then one line per row. With
    `escape_formulas`, text that a spreadsheet would run as a formula gets a `'` in front."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = answer["columns"]
    # only text columns: "-5" in a decimal column, or a date bucket, is never a formula
    textual = [escape_formulas and c["type"] in TEXT_TYPES for c in columns]
    writer.writerow([_csv_cell(c["name"], escape_formulas) for c in columns])
    writer.writerows(
        [_csv_cell(v, esc) for v, esc in zip(row, textual, strict=False)] for row in answer["rows"]
    )
    return out.getvalue()
