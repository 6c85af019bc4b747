"""`GET …/widgets/{id}/data/`: the widget's data computed in one SQL statement over the item's rows
(never loading rows into Python), in the shape chart libraries take:
`{"labels": [...], "datasets": [{"series_id", "label", "data", "color"}], "chart_type", "truncated"}`.

- Groups: the label field's values, or its date bucket (`date_grouping`: day `2026-03-05`, ISO
  week `2026-W09`, month `2026-03`, quarter `2026-Q1`, year `2026`). Rows without a label form
  the group "(empty)"; a widget without a label field has one group, "All".
- Each series: count (non-empty cells), distinct_count, sum, avg, min, max, exact (numeric in
  SQL; avg rounded half-up to 2 places, more when the values carry more, as the summary's). A
  group without values to aggregate gives 0 for counts and null otherwise.
- Order: `sort_direction` "" by label ascending (numbers numerically, dates chronologically, text
  by code point, "(empty)" last); asc/desc by the first series' value (nulls last), ties by label.
- `row_limit` (null: 1000) groups are kept in that order; the rest are left out, not folded into
  an "Other" group (an "Other" bar cannot be exact for distinct_count without a second scan, and
  has no place on a time axis); `truncated` says when that happened.
- number: one value per series over every (filtered) row. scatter: each series gives points
  `{"x": label field value, "y": value field value}` of rows having both, in row order, at most
  `row_limit` (null: 1000); aggregation and sort do not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.fields.types import FieldType, decimal_text
from app.models import DataItem, Widget, WidgetSeries
from app.models import Field as FieldModel
from app.rows import filters
from app.rows.filters import SqlParams, cell, cell_text, text_c
from app.summary import service as summary_service
from app.widgets import service
from app.widgets.colors import series_color
from app.widgets.repository import ChartDataRepository, WidgetRepository
from app.widgets.schemas import MAX_ROW_LIMIT, Aggregation, ChartType, DateGrouping, SortDirection

NULL_LABEL = "(empty)"
ALL_LABEL = "All"

_AGGREGATION_NAMES = {
    Aggregation.COUNT: "Count",
    Aggregation.SUM: "Sum",
    Aggregation.AVG: "Average",
    Aggregation.MIN: "Min",
    Aggregation.MAX: "Max",
    Aggregation.DISTINCT_COUNT: "Distinct count",
}


@dataclass
class _Aggregate:
    columns: list[str]  # SQL aggregate expressions
    order: Callable[[list[str]], str]  # the value to sort groups by, over the columns' aliases
    finish: Callable[[Sequence[Any]], Any]  # the columns' values -> the data point


def _first(values: Sequence[Any]) -> Any:
    return values[0]


def _count(values: Sequence[Any]) -> Any:
    return int(values[0] or 0)


def _avg(values: Sequence[Any]) -> Any:
    total, count, scale = values
    if not count or total is None:
        return None
    return summary_service.average(Decimal(total), int(count), scale)


def _if_still(field: FieldModel, params: SqlParams, expr: str) -> str:
    """`expr` (a cast of the field's cells) where the field still has the type the widget was
    checked against, NULL otherwise. The check is an uncorrelated subquery, so PostgreSQL runs it
    once per statement, in the statement's own snapshot: a cast never meets values of another
    type (a type change committed after the fields were read), and costs nothing per row, unlike
    testing each cell's jsonb_typeof."""
    field_id, field_type = params.bind(field.id), params.bind(str(field.field_type))
    return (
        f"(CASE WHEN (SELECT field_type FROM fields WHERE id = {field_id}) = {field_type} "
        f"THEN {expr} END)"
    )


def _number(field: FieldModel, params: SqlParams) -> str:
    """The cell as a numeric, NULL when it is not a number (a value stored before writes locked
    the item could be anything: it is left out rather than failing the statement)."""
    return filters.numeric(params.key(field.id))


def _aggregate(s: WidgetSeries, field: FieldModel, params: SqlParams) -> _Aggregate:
    key = params.key(field.id)
    agg = Aggregation(s.aggregation)
    if agg is Aggregation.COUNT:
        return _Aggregate([f"count({cell(key)})"], lambda a: a[0], _count)
    if agg is Aggregation.DISTINCT_COUNT:
        return _Aggregate([f"count(DISTINCT {cell(key)})"], lambda a: a[0], _count)
    if agg is Aggregation.SUM:
        return _Aggregate([f"sum({_number(field, params)})"], lambda a: a[0], _first)
    if agg is Aggregation.AVG:
        n = _number(field, params)
        return _Aggregate(
            [f"sum({n})", f"count({n})", f"max(scale({n}))"],
            lambda a: f"({a[0]} / NULLIF({a[1]}, 0))",
            _avg,
        )
    value = _number(field, params) if field.field_type == FieldType.DECIMAL else text_c(key)
    return _Aggregate([f"{agg.value}({value})"], lambda a: a[0], _first)


def _bucket(field: FieldModel, grouping: DateGrouping, params: SqlParams) -> str:
    """The group key: the label field as a value that sorts its way, or its date bucket as text
    (ISO texts: code-point order is chronological)."""
    key = params.key(field.id)
    kind = FieldType(field.field_type)
    if grouping is DateGrouping.NONE:
        if kind is FieldType.DECIMAL:
            return _number(field, params)
        if kind is FieldType.BOOLEAN:
            return filters.boolean(key)
        return text_c(key)
    t = cell_text(key)
    # Only a real date is cast: anything else (stored before writes locked the item) is no
    # group rather than a failed statement. The shape first, then the day within its month.
    iso = f"({t} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])' AND left({t}, 4) <> '0000')"
    year = f"CAST(left({t}, 4) AS integer)"
    leap = f"(({year} % 4 = 0 AND {year} % 100 <> 0) OR {year} % 400 = 0)"
    days = (
        f"CASE substr({t}, 6, 2) WHEN '02' THEN (CASE WHEN {leap} THEN 29 ELSE 28 END) "
        "WHEN '04' THEN 30 WHEN '06' THEN 30 WHEN '09' THEN 30 WHEN '11' THEN 30 ELSE 31 END"
    )
    real = f"CAST(substr({t}, 9, 2) AS integer) <= {days}"
    week = (
        f"(CASE WHEN {iso} THEN (CASE WHEN {real} THEN "
        f"""to_char(CAST(left({t}, 10) AS date), 'IYYY-"W"IW') END) END)"""
    )
    month = f"substr({t}, 6, 2)"
    quarter = (
        f"(CASE WHEN {month} IN ('01', '02', '03') THEN '1' WHEN {month} IN ('04', '05', '06') "
        f"THEN '2' WHEN {month} IN ('07', '08', '09') THEN '3' "
        f"WHEN {month} IN ('10', '11', '12') THEN '4' END)"
    )
    expr = {
        DateGrouping.DAY: f"left({t}, 10)",
        DateGrouping.WEEK: _if_still(field, params, week),
        DateGrouping.MONTH: f"left({t}, 7)",
        DateGrouping.QUARTER: f"left({t}, 4) || '-Q' || {quarter}",
        DateGrouping.YEAR: f"left({t}, 4)",
    }[grouping]
    return f'(({expr}) COLLATE "C")'


def _label_text(value: Any, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        with localcontext() as ctx:
            ctx.prec = 1_000
            return decimal_text(value.normalize())
    return str(value)


def _series_label(s: WidgetSeries, field: FieldModel) -> str:
    return s.label or f"{_AGGREGATION_NAMES[Aggregation(s.aggregation)]} of {field.field_label}"


def _check(
    widget: Widget,
    chart: ChartType,
    series: Sequence[WidgetSeries],
    fields: dict[int, FieldModel],
) -> FieldModel | None:
    """The label field; a 400 naming every reason the widget cannot be drawn as it stands (a
    field's type changed under it, for example)."""
    problems: list[dict[str, Any]] = []
    label = fields.get(widget.label_field_id) if widget.label_field_id is not None else None
    if chart is ChartType.SCATTER and label is None:
        problems.append({"field": "label_field", "message": "a scatter widget needs label_field"})
    if (
        chart is not ChartType.NUMBER
        and label is not None
        and (problem := service.grouping_problem(widget.date_grouping, label))
    ):
        problems.append({"field": "date_grouping", "message": problem})
    for s in series:
        value_field = fields[s.value_field_id]
        if chart is not ChartType.SCATTER and (
            problem := service.aggregation_problem(s.aggregation, value_field)
        ):
            problems.append(
                {"field": f"series {s.id}", "message": f"aggregation {problem}", "series_id": s.id}
            )
    if problems:
        first = problems[0]
        message = f"Widget {widget.id} cannot be drawn: {first['field']}: {first['message']}."
        if len(problems) > 1:
            message = f"Widget {widget.id} cannot be drawn: {len(problems)} problems (see details)."
        raise BadRequest(message, details=problems)
    return label


async def widget_data(
    session: AsyncSession, item: DataItem, fields: Sequence[FieldModel], widget: Widget
) -> dict[str, Any]:
    by_id = {f.id: f for f in fields}
    series = [
        s
        for s in (await WidgetRepository(session, item.id).series_of([widget.id]))[widget.id]
        if s.value_field_id in by_id  # (a field deleted since the fields were read)
    ]
    chart = ChartType(widget.chart_type)
    label = _check(widget, chart, series, by_id)
    params = SqlParams("w")
    where = ""
    if widget.filter_config is not None:
        config = filters.FilterConfig.model_validate(widget.filter_config)
        condition = filters.compile_filter(config, by_id, params, where="filter_config")
        where = f"AND {condition}" if condition else ""
    limit = widget.row_limit or MAX_ROW_LIMIT
    repo = ChartDataRepository(session, item.id)

    def dataset(position: int, s: WidgetSeries, data: list[Any]) -> dict[str, Any]:
        return {
            "series_id": s.id,
            "label": _series_label(s, by_id[s.value_field_id]),
            "data": data,
            "color": series_color(s.color, position),
        }

    if chart is ChartType.SCATTER:
        assert label is not None
        datasets = []
        truncated = False
        for position, s in enumerate(series):
            points = await repo.points(
                x=params.key(label.id),
                y=params.key(s.value_field_id),
                where=where,
                params=params.values,
                limit=limit + 1,
            )
            truncated = truncated or len(points) > limit
            data = [{"x": x, "y": y} for x, y in points[:limit]]
            datasets.append(dataset(position, s, data))
        return {"labels": [], "datasets": datasets, "chart_type": chart, "truncated": truncated}

    aggregates = [_aggregate(s, by_id[s.value_field_id], params) for s in series]
    columns: list[tuple[str, str]] = []
    aliases: list[list[str]] = []
    for i, a in enumerate(aggregates):
        names = [f"a{i}_{j}" for j in range(len(a.columns))]
        columns.extend(zip(a.columns, names, strict=True))
        aliases.append(names)

    def values_of(row: Sequence[Any], offset: int) -> list[Any]:
        out: list[Any] = []
        i = offset
        for a, names in zip(aggregates, aliases, strict=True):
            out.append(a.finish(row[i : i + len(names)]))
            i += len(names)
        return out

    if chart is ChartType.NUMBER:
        if not columns:
            return {"labels": [], "datasets": [], "chart_type": chart, "truncated": False}
        row = await repo.totals(columns, where=where, params=params.values)
        values = values_of(row, 0)
        datasets = [dataset(i, s, [values[i]]) for i, s in enumerate(series)]
        return {"labels": [], "datasets": datasets, "chart_type": chart, "truncated": False}

    if label is None:
        key = "CAST(NULL AS text)"
    else:
        key = _bucket(label, DateGrouping(widget.date_grouping), params)
    order = "k ASC NULLS LAST"
    direction = SortDirection(widget.sort_direction)
    if direction is not SortDirection.NONE and aggregates:
        by_value = aggregates[0].order(aliases[0])
        order = f"{by_value} {direction.value.upper()} NULLS LAST, {order}"
    rows, total_groups = await repo.groups(
        key=key, columns=columns, where=where, params=params.values, order=order, limit=limit
    )
    default = NULL_LABEL if label is not None else ALL_LABEL
    labels = [_label_text(row[0], default) for row in rows]
    values = [values_of(row, 1) for row in rows]
    datasets = [dataset(i, s, [v[i] for v in values]) for i, s in enumerate(series)]
    return {
        "labels": labels,
        "datasets": datasets,
        "chart_type": chart,
        "truncated": total_groups > len(rows),
    }
