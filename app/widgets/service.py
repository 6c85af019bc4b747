"""Widget rules: label and value fields belong to the widget's item (any other id, whoever owns it,
is the same 400), aggregations fit their field's type, filters are validated against the fields,
widgets and each widget's series keep a dense 0-based order, a widget is created with its series
all or nothing, PATCH changes only what is sent (never series), and a field's delete leaves its
widgets consistent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import positions
from app.core.errors import BadRequest
from app.fieldtypes import Aggregation, kind_of
from app.models import DataItem, Widget, WidgetSeries
from app.models import Field as FieldModel
from app.rows import filters
from app.widgets.repository import SeriesRepository, WidgetRepository
from app.widgets.schemas import (
    MAX_SERIES,
    SeriesCreate,
    SeriesList,
    SeriesRead,
    SeriesUpdate,
    WidgetCreate,
    WidgetList,
    WidgetRead,
    WidgetUpdate,
)

Problems = list[dict[str, Any]]


def describe(field: FieldModel) -> str:
    return f"{field.field_type} field {field.id} ({field.field_label})"


def aggregation_problem(aggregation: Aggregation | str, field: FieldModel) -> str | None:
    fits = kind_of(field.field_type).aggregations
    if Aggregation(aggregation) in fits:
        return None
    return f"{aggregation} does not fit {describe(field)}: use {' or '.join(fits)}"


def grouping_problem(grouping: str, label: FieldModel | None) -> str | None:
    if not grouping:
        return None
    if label is None:
        return f"date_grouping {grouping} needs a date label_field"
    if not kind_of(label.field_type).date_groupings:
        return f"date_grouping {grouping} needs a date label field; {describe(label)} is not one"
    return None


def _no_field(field_id: int) -> str:
    # The same words whether the id exists in another item or account or nowhere.
    return f"field {field_id} is not a field of this data item"


def _raise(problems: Problems, what: str) -> None:
    if not problems:
        return
    if len(problems) == 1:
        p = problems[0]
        raise BadRequest(f"Invalid {what}: {p['field']}: {p['message']}.", details=problems)
    raise BadRequest(
        f"Invalid {what}: {len(problems)} problems (see details); nothing was changed.",
        details=problems,
    )


def _check_label(
    label_field: int | None, grouping: str, fields: Mapping[int, FieldModel], problems: Problems
) -> None:
    label = None
    if label_field is not None:
        label = fields.get(label_field)
        if label is None:
            problems.append({"field": "label_field", "message": _no_field(label_field)})
            return
    if problem := grouping_problem(grouping, label):
        problems.append({"field": "date_grouping", "message": problem})


def _check_series(
    value_field: int,
    aggregation: Aggregation | str,
    fields: Mapping[int, FieldModel],
    problems: Problems,
    prefix: str = "",
) -> None:
    field = fields.get(value_field)
    if field is None:
        problems.append({"field": f"{prefix}value_field", "message": _no_field(value_field)})
    elif problem := aggregation_problem(aggregation, field):
        problems.append({"field": f"{prefix}aggregation", "message": problem})


def _check_filter(
    config: filters.FilterConfig | None, fields: Mapping[int, FieldModel], problems: Problems
) -> None:
    if config is not None:
        problems.extend(filters.filter_problems(config, fields, where="filter_config"))


def series_read(s: WidgetSeries) -> SeriesRead:
    return SeriesRead(
        id=s.id,
        value_field=s.value_field_id,
        aggregation=Aggregation(s.aggregation),
        label=s.label,
        series_order=s.series_order,
        color=s.color,
    )


def widget_read(w: Widget, series: Sequence[WidgetSeries]) -> WidgetRead:
    return WidgetRead(
        id=w.id,
        data_item=w.data_item_id,
        title=w.title,
        description=w.description,
        chart_type=w.chart_type,
        widget_order=w.widget_order,
        widget_size=w.widget_size,
        label_field=w.label_field_id,
        date_grouping=w.date_grouping,
        sort_direction=w.sort_direction,
        row_limit=w.row_limit,
        filter_config=(
            None
            if w.filter_config is None
            else filters.FilterConfig.model_validate(w.filter_config)
        ),
        chart_options=w.chart_options,
        created_at=w.created_at,
        updated_at=w.updated_at,
        series=[series_read(s) for s in series],
    )


def _stored(config: filters.FilterConfig | dict[str, Any] | None) -> dict[str, Any] | None:
    if config is None:
        return None
    if isinstance(config, filters.FilterConfig):
        return config.model_dump(mode="python")
    return config


# ------------------------------------------------------------------------------------ widgets


async def list_widgets(session: AsyncSession, item: DataItem) -> WidgetList:
    repo = WidgetRepository(session, item.id)
    widgets = await repo.ordered()
    series = await repo.series_of([w.id for w in widgets])
    return WidgetList(widgets=[widget_read(w, series[w.id]) for w in widgets])


async def read_widget(session: AsyncSession, item: DataItem, widget: Widget) -> WidgetRead:
    series = await WidgetRepository(session, item.id).series_of([widget.id])
    return widget_read(widget, series[widget.id])


async def get_widget(session: AsyncSession, item: DataItem, widget_id: int) -> Widget | None:
    """The item's widget, or None (another item's included)."""
    return await WidgetRepository(session, item.id).get(widget_id)


async def widget_data(
    session: AsyncSession, item: DataItem, fields: Sequence[FieldModel], widget: Widget
) -> dict[str, Any]:
    """The widget's data as `GET …/data/` answers it, for the domains that draw it (chart
    images): one code path for every aggregation."""
    from app.widgets import data  # (data.py builds on this module's checks: imported on use)

    return await data.widget_data(session, item, fields, widget)


def widget_problems(payload: WidgetCreate, fields: Mapping[int, FieldModel]) -> Problems:
    """Every problem of a new widget and its series against the item's fields (beyond what
    its schema checks): the label field and its date grouping, the filter, each series' field
    and aggregation. Empty when POST …/widgets/ would create it; bundle imports check the same."""
    problems: Problems = []
    _check_label(payload.label_field, payload.date_grouping, fields, problems)
    _check_filter(payload.filter_config, fields, problems)
    for i, s in enumerate(payload.series):
        _check_series(s.value_field, s.aggregation, fields, problems, prefix=f"series.{i}.")
    return problems


async def create_widget(
    session: AsyncSession, item: DataItem, fields: Sequence[FieldModel], payload: WidgetCreate
) -> WidgetRead:
    _raise(widget_problems(payload, {f.id: f for f in fields}), "widget")
    repo = WidgetRepository(session, item.id)
    await repo.lock()
    order = await positions.insert(repo, payload.widget_order, await repo.count())
    widget = await repo.add(
        {
            "title": payload.title,
            "description": payload.description,
            "chart_type": payload.chart_type.value,
            "widget_size": payload.widget_size.value,
            "widget_order": order,
            "label_field_id": payload.label_field,
            "date_grouping": payload.date_grouping.value,
            "sort_direction": payload.sort_direction.value,
            "row_limit": payload.row_limit,
            "filter_config": _stored(payload.filter_config),
            "chart_options": payload.chart_options,
        }
    )
    ordered = positions.in_given_order(payload.series, lambda s: s.series_order)
    series = await SeriesRepository(session, widget.id).add_many(
        [_series_values(s, position) for position, s in enumerate(ordered)]
    )
    return widget_read(widget, series)


def _series_values(s: SeriesCreate, order: int) -> dict[str, Any]:
    return {
        "value_field_id": s.value_field,
        "aggregation": s.aggregation.value,
        "label": s.label,
        "series_order": order,
        "color": s.color,
    }


_COLUMNS = {"label_field": "label_field_id"}


async def update_widget(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[FieldModel],
    widget: Widget,
    payload: WidgetUpdate,
) -> WidgetRead:
    changes = payload.model_dump(exclude_unset=True)
    by_id = {f.id: f for f in fields}
    problems: Problems = []
    if "label_field" in changes or "date_grouping" in changes:
        label = changes.get("label_field", widget.label_field_id)
        grouping = changes.get("date_grouping", widget.date_grouping)
        _check_label(label, str(grouping), by_id, problems)
    if "filter_config" in changes:
        _check_filter(payload.filter_config, by_id, problems)
    _raise(problems, "widget")
    repo = WidgetRepository(session, item.id)
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "widget_order":
            continue
        values[_COLUMNS.get(key, key)] = value.value if hasattr(value, "value") else value
    if "filter_config" in changes:
        values["filter_config"] = _stored(payload.filter_config)
    if "widget_order" in changes:
        await repo.lock()
        await session.refresh(widget, ["widget_order"])
        values["widget_order"] = await positions.move(
            repo, widget.widget_order, int(changes["widget_order"])
        )
    if values:
        widget = await repo.update(widget, values)
    return await read_widget(session, item, widget)


async def delete_widget(session: AsyncSession, item: DataItem, widget: Widget) -> None:
    repo = WidgetRepository(session, item.id)
    await repo.lock()
    await session.refresh(widget, ["widget_order"])
    await repo.delete(widget.id)
    await positions.close_gap(repo, widget.widget_order)


# ------------------------------------------------------------------------------------- series


async def list_series(session: AsyncSession, widget: Widget) -> SeriesList:
    return SeriesList(
        series=[series_read(s) for s in await SeriesRepository(session, widget.id).ordered()]
    )


async def create_series(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[FieldModel],
    widget: Widget,
    payload: SeriesCreate,
) -> SeriesRead:
    problems: Problems = []
    _check_series(payload.value_field, payload.aggregation, {f.id: f for f in fields}, problems)
    _raise(problems, "series")
    repo = SeriesRepository(session, widget.id)
    await repo.lock()
    count = await repo.count()
    if count >= MAX_SERIES:
        raise BadRequest(
            f"Widget {widget.id} already has {count} series; the limit is {MAX_SERIES}.",
            details=[{"field": "series", "message": f"at most {MAX_SERIES} per widget"}],
        )
    order = await positions.insert(repo, payload.series_order, count)
    (series,) = await repo.add_many([_series_values(payload, order)])
    await WidgetRepository(session, item.id).touch(widget.id)
    return series_read(series)


async def update_series(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[FieldModel],
    widget: Widget,
    series: WidgetSeries,
    payload: SeriesUpdate,
) -> SeriesRead:
    changes = payload.model_dump(exclude_unset=True)
    problems: Problems = []
    if "value_field" in changes or "aggregation" in changes:
        _check_series(
            changes.get("value_field", series.value_field_id),
            changes.get("aggregation", series.aggregation),
            {f.id: f for f in fields},
            problems,
        )
    _raise(problems, "series")
    repo = SeriesRepository(session, widget.id)
    values: dict[str, Any] = {}
    for key in ("aggregation", "label", "color"):
        if key in changes:
            values[key] = str(changes[key])
    if "value_field" in changes:
        values["value_field_id"] = changes["value_field"]
    if "series_order" in changes:
        await repo.lock()
        await session.refresh(series, ["series_order"])
        values["series_order"] = await positions.move(
            repo, series.series_order, int(changes["series_order"])
        )
    if values:
        series = await repo.update(series, values)
        await WidgetRepository(session, item.id).touch(widget.id)
    return series_read(series)


async def delete_series(
    session: AsyncSession, item: DataItem, widget: Widget, series: WidgetSeries
) -> None:
    repo = SeriesRepository(session, widget.id)
    await repo.lock()
    await session.refresh(series, ["series_order"])
    await repo.delete(series.id)
    await positions.close_gap(repo, series.series_order)
    await WidgetRepository(session, item.id).touch(widget.id)


# ------------------------------------------------------------------------------ field deletes


async def field_deleted(session: AsyncSession, item: DataItem, field_id: int) -> None:
    """After a field was deleted (its series went with it and label fields were cleared, by the
    foreign keys): series orders made dense again, date groupings of unlabelled widgets cleared,
    and filter conditions on the field removed (a filter left without conditions becomes null)."""
    repo = WidgetRepository(session, item.id)
    await repo.after_field_delete()
    for widget in await repo.with_filters():
        config = dict(widget.filter_config or {})
        conditions = list(config.get("conditions") or [])
        kept = [c for c in conditions if int(c.get("field", 0)) != field_id]
        if len(kept) != len(conditions):
            await repo.update(
                widget, {"filter_config": {**config, "conditions": kept} if kept else None}
            )
