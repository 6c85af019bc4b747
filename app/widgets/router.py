"""Dashboard widgets of a data item, their series, and the data to draw them."""

from __future__ import annotations

from fastapi import status

from app.accounts.dependencies import AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import AggregateSlotDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult
from app.data_items.dependencies import DataItemDep, LockedItemDep
from app.fields.dependencies import ItemFieldsDep, LockedFieldsDep
from app.widgets import data, insights, service
from app.widgets.dependencies import SeriesDep, WidgetDep
from app.widgets.schemas import (
    InsightList,
    SeriesCreate,
    SeriesList,
    SeriesRead,
    SeriesUpdate,
    WidgetCreate,
    WidgetData,
    WidgetList,
    WidgetRead,
    WidgetUpdate,
)

router = ApiRouter(
    prefix="/data-items/{item_id}/widgets", tags=["widgets"], route_class=AuthenticatedRoute
)

# Widgets carry client JSON (filter values, chart options) whose numbers must come back exactly.


@router.get(
    "/",
    response_model=WidgetList,
    response_class=ExactJSONResponse,
    summary="List the widgets of a data item, in widget order, each with its series",
    responses=errors(400, 401, 404),
)
async def list_widgets(item: DataItemDep, session: SessionDep) -> ExactJSONResponse:
    return ExactJSONResponse(await service.list_widgets(session, item))


@router.post(
    "/",
    response_model=WidgetRead,
    response_class=ExactJSONResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Create a widget, optionally with its series (all or nothing)",
    description=(
        "Every input is optional. Defaults: `chart_type` bar, `widget_size` md, `widget_order` "
        'after the last, no label field, no date grouping, `sort_direction` "" (by label), '
        "`row_limit` null (up to 1000 groups). `label_field` and each series' `value_field` must "
        "be fields of this item; an aggregation must fit its field's type (sum, avg: decimal; "
        "min, max: decimal or date; count, distinct_count: any)."
    ),
    responses=errors(400, 401, 404, 413),
)
async def create_widget(
    payload: WidgetCreate, item: LockedItemDep, fields: LockedFieldsDep, session: SessionDep
) -> ExactJSONResponse:
    widget = await service.create_widget(session, item, fields, payload)
    return ExactJSONResponse(widget, status_code=status.HTTP_201_CREATED)


@router.get(
    "/{widget_id}/",
    response_model=WidgetRead,
    response_class=ExactJSONResponse,
    summary="Get a widget with its series",
    responses=errors(400, 401, 404),
)
async def get_widget(
    item: DataItemDep, widget: WidgetDep, session: SessionDep
) -> ExactJSONResponse:
    return ExactJSONResponse(await service.read_widget(session, item, widget))


@router.patch(
    "/{widget_id}/",
    response_model=WidgetRead,
    response_class=ExactJSONResponse,
    summary="Change a widget (only what is sent; series are not touched)",
    description=(
        "`label_field`, `row_limit`, `filter_config` and `chart_options` may be set to null. "
        "Moving `widget_order` shifts the other widgets. Series change through …/series/."
    ),
    responses=errors(400, 401, 404, 413),
)
async def update_widget(
    payload: WidgetUpdate,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
) -> ExactJSONResponse:
    return ExactJSONResponse(await service.update_widget(session, item, fields, widget, payload))


@router.delete(
    "/{widget_id}/",
    response_model=DeletedResult,
    summary="Delete a widget with its series",
    responses=errors(400, 401, 404),
)
async def delete_widget(item: DataItemDep, widget: WidgetDep, session: SessionDep) -> DeletedResult:
    await service.delete_widget(session, item, widget)
    return DeletedResult(deleted=True)


@router.get(
    "/{widget_id}/data/",
    response_model=WidgetData,
    response_class=ExactJSONResponse,
    summary="The widget's data, computed over the item's rows, ready for a chart library",
    description=(
        "Rows (matching `filter_config`) are grouped by the label field, or its date bucket "
        "(day `2026-03-05`, ISO week `2026-W09`, month `2026-03`, quarter `2026-Q1`, year "
        '`2026`); rows without a label form the group "(empty)". Each series gives one exact '
        "value per group (`count` counts non-empty cells; `avg` is rounded to 2 places, more "
        "when the values carry more; a group with nothing to aggregate gives null). Sorted by "
        'label (sort_direction "") or by the first series\' value (asc/desc), then cut to '
        '`row_limit` groups (default and most 1000; no "Other" group; `truncated` says so). '
        "`number`: one value per series. `scatter`: points `{x, y}` (label field, value field) "
        "of the first rows having both, at most `row_limit` (default 1000). A widget that cannot "
        "be drawn as it stands (an aggregation that does not fit its field's type after a type "
        "change, a filter value that no longer reads as its field's type) is a 400 naming why."
    ),
    responses=errors(400, 401, 404),
)
async def get_widget_data(
    item: DataItemDep,
    fields: ItemFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
    slot: AggregateSlotDep,
) -> ExactJSONResponse:
    return ExactJSONResponse(await data.widget_data(session, item, fields, widget))


@router.get(
    "/{widget_id}/insights/",
    response_model=InsightList,
    response_class=ExactJSONResponse,
    summary="Plain-English insights about the widget's data, with the exact numbers behind them",
    description=(
        "Computed from the groups the data endpoint returns (same filter, grouping, sort and "
        "`row_limit`), per series with numeric values, exactly in PostgreSQL; no model involved, "
        "the same data always gives the same insights. `trend` and `largest_change`: a label "
        "field grouped by a date bucket, at least 2 (trend) or 3 (largest change) buckets with a "
        'value, "(empty)" left out. `top_share`: a char, text or boolean label field, at least 2 '
        "groups, none negative. `outliers`: at least 4 values, groups outside [Q1 - 1.5 IQR, "
        "Q3 + 1.5 IQR], only when there is one. number and scatter widgets have none. A widget "
        "that cannot be drawn is a 400, as for its data."
    ),
    responses=errors(400, 401, 404),
)
async def get_widget_insights(
    item: DataItemDep,
    fields: ItemFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
    slot: AggregateSlotDep,
) -> ExactJSONResponse:
    return ExactJSONResponse(await insights.widget_insights(session, item, fields, widget))


# -------------------------------------------------------------------------------------- series


@router.get(
    "/{widget_id}/series/",
    response_model=SeriesList,
    summary="List a widget's series, in series order",
    responses=errors(400, 401, 404),
)
async def list_series(widget: WidgetDep, session: SessionDep) -> SeriesList:
    return await service.list_series(session, widget)


@router.post(
    "/{widget_id}/series/",
    response_model=SeriesRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a series to a widget",
    description=(
        "`value_field` (required) must be a field of this item. Defaults: `aggregation` sum, "
        '`label` "" (the data endpoint says "Sum of Revenue"), `series_order` after the last, '
        '`color` "" (a palette color). At most 20 series per widget.'
    ),
    responses=errors(400, 401, 404, 413),
)
async def create_series(
    payload: SeriesCreate,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
) -> SeriesRead:
    return await service.create_series(session, item, fields, widget, payload)


@router.get(
    "/{widget_id}/series/{series_id}/",
    response_model=SeriesRead,
    summary="Get one series",
    responses=errors(400, 401, 404),
)
async def get_series(series: SeriesDep) -> SeriesRead:
    return service.series_read(series)


@router.patch(
    "/{widget_id}/series/{series_id}/",
    response_model=SeriesRead,
    summary="Change a series (only what is sent)",
    responses=errors(400, 401, 404, 413),
)
async def update_series(
    payload: SeriesUpdate,
    item: LockedItemDep,
    fields: LockedFieldsDep,
    widget: WidgetDep,
    series: SeriesDep,
    session: SessionDep,
) -> SeriesRead:
    return await service.update_series(session, item, fields, widget, series, payload)


@router.delete(
    "/{widget_id}/series/{series_id}/",
    response_model=DeletedResult,
    summary="Delete a series",
    responses=errors(400, 401, 404),
)
async def delete_series(
    item: DataItemDep, widget: WidgetDep, series: SeriesDep, session: SessionDep
) -> DeletedResult:
    await service.delete_series(session, item, widget, series)
    return DeletedResult(deleted=True)
