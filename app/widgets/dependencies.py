"""The widget and series named in the path, resolved within an item the caller owns: another
account's (or another item's) widget is a 404 like a missing one."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.core.db import SessionDep
from app.core.errors import NotFound
from app.data_items.dependencies import DataItemDep
from app.models import Widget, WidgetSeries
from app.widgets.repository import SeriesRepository, WidgetRepository

WidgetId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Widget id.", examples=[1])]
SeriesId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Series id.", examples=[1])]


async def owned_widget(widget_id: WidgetId, item: DataItemDep, session: SessionDep) -> Widget:
    widget = await WidgetRepository(session, item.id).get(widget_id)
    if widget is None:
        raise NotFound(f"Widget {widget_id} not found in data item {item.id}.")
    return widget


WidgetDep = Annotated[Widget, Depends(owned_widget)]


async def owned_series(series_id: SeriesId, widget: WidgetDep, session: SessionDep) -> WidgetSeries:
    series = await SeriesRepository(session, widget.id).get(series_id)
    if series is None:
        raise NotFound(f"Series {series_id} not found in widget {widget.id}.")
    return series


SeriesDep = Annotated[WidgetSeries, Depends(owned_series)]
