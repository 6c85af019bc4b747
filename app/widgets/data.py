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
- Groups and aggregates come from the query engine (app/query: `POST …/query/` answers with the
  same SQL), the one code path for aggregations.
- number: one value per series over every (filtered) row. scatter: each series gives points
  `{"x": label field value, "y": value field value}` of rows having both, in row order, at most
  `row_limit` (null: 1000); aggregation and sort do not apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.fieldtypes import Aggregation, DateGrouping, FieldType
from app.models import DataItem, Widget, WidgetSeries
from app.models import Field as FieldModel
from app.query import service as query_service
from app.query.schemas import Key, Order, Series
from app.rows import filters
from app.widgets import service
from app.widgets.colors import series_color
from app.widgets.repository import ChartDataRepository, WidgetRepository
from app.widgets.schemas import MAX_ROW_LIMIT, ChartType, SortDirection

NULL_LABEL = query_service.NULL_LABEL
ALL_LABEL = "All"


def _series_label(s: WidgetSeries, field: FieldModel) -> str:
    name = query_service.MEASURE_NAMES[Aggregation(s.aggregation)]
    return s.label or f"{name} of {field.field_label}"


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
    row_filter = None
    if widget.filter_config is not None:
        config = filters.FilterConfig.model_validate(widget.filter_config)
        row_filter = filters.resolve_filter(config, by_id, where="filter_config")
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
                x_field=label.id, y_field=s.value_field_id, row_filter=row_filter, limit=limit + 1
            )
            truncated = truncated or len(points) > limit
            data = [{"x": x, "y": y} for x, y in points[:limit]]
            datasets.append(dataset(position, s, data))
        return {"labels": [], "datasets": datasets, "chart_type": chart, "truncated": truncated}

    specs = [
        Series(
            s.value_field_id,
            FieldType(by_id[s.value_field_id].field_type),
            Aggregation(s.aggregation),
        )
        for s in series
    ]

    if chart is ChartType.NUMBER:
        if not specs:
            return {"labels": [], "datasets": [], "chart_type": chart, "truncated": False}
        values = await query_service.totals(session, item, specs, row_filter)
        datasets = [dataset(i, s, [values[i]]) for i, s in enumerate(series)]
        return {"labels": [], "datasets": datasets, "chart_type": chart, "truncated": False}

    grouping = DateGrouping(widget.date_grouping)
    key = None if label is None else Key(label.id, FieldType(label.field_type), grouping)
    direction = SortDirection(widget.sort_direction)
    order = []  # by label (the engine's last key), or by the first series' value first
    if direction is not SortDirection.NONE and specs:
        order = [Order(1, descending=direction is SortDirection.DESC)]
    rows, total_groups = await query_service.groups(
        session, item, keys=[key], series=specs, row_filter=row_filter, order=order, limit=limit
    )
    default = NULL_LABEL if label is not None else ALL_LABEL
    labels = [query_service.label_text(keys[0], default) for keys, _ in rows]
    values = [query_service.finish(specs, raw) for _, raw in rows]
    datasets = [dataset(i, s, [v[i] for v in values]) for i, s in enumerate(series)]
    return {
        "labels": labels,
        "datasets": datasets,
        "chart_type": chart,
        "truncated": total_groups > len(rows),
    }
