"""Chart images of widgets: the widget's data (the widgets domain computes it, exactly as
`GET …/data/` answers it), drawn from one Vega-Lite spec (app/charts/spec.py) that is also
answered as JSON, rendered by vl-convert in worker processes (app/charts/renderer.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.charts.renderer import MEDIA_TYPES, RENDERER, ImageFormat
from app.charts.spec import ChartLook, ChartText, chart_spec
from app.core.db import end_reads
from app.core.jsonexact import dumps
from app.fieldtypes import DateGrouping
from app.models import DataItem, Widget
from app.models import Field as FieldModel
from app.widgets import service as widgets_service

_GROUPING_NAMES = {
    DateGrouping.DAY: "day",
    DateGrouping.WEEK: "ISO week",
    DateGrouping.MONTH: "month",
    DateGrouping.QUARTER: "quarter",
    DateGrouping.YEAR: "year",
}


@dataclass(frozen=True)
class Image:
    body: bytes
    media_type: str


def chart_text(widget: Widget, fields: Sequence[FieldModel]) -> ChartText:
    """The widget's title, and the label field's name (by its date grouping, if any)."""
    label = next((f for f in fields if f.id == widget.label_field_id), None)
    x_title = None
    if label is not None:
        grouping = DateGrouping(widget.date_grouping or "")
        x_title = label.field_label
        if grouping is not DateGrouping.NONE:
            x_title = f"{label.field_label} (by {_GROUPING_NAMES[grouping]})"
    return ChartText(title=widget.title, x_title=x_title)


async def widget_spec(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[FieldModel],
    widget: Widget,
    *,
    look: ChartLook,
) -> dict[str, Any]:
    """The widget's chart as a Vega-Lite spec with its data inline (exact numbers)."""
    data = await widgets_service.widget_data(session, item, fields, widget)
    return chart_spec(data, chart_text(widget, fields), look)


async def render(
    spec: dict[str, Any],
    image: ImageFormat,
    *,
    account_id: int,
    slots: anyio.CapacityLimiter,
) -> Image:
    """`spec` drawn as `image`, off the event loop, within `slots` and the account's turn."""
    body = await RENDERER.render(dumps(spec).encode(), image, account_id=account_id, slots=slots)
    return Image(body=body, media_type=MEDIA_TYPES[image])


async def widget_image(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[FieldModel],
    widget: Widget,
    *,
    look: ChartLook,
    image: ImageFormat,
    account_id: int,
    slots: anyio.CapacityLimiter,
) -> Image:
    """The widget's chart drawn as `image`. The database is done with before the drawing
    starts (its connection goes back to the pool while the chart waits for a slot)."""
    spec = await widget_spec(session, item, fields, widget, look=look)
    await end_reads(session)
    return await render(spec, image, account_id=account_id, slots=slots)
