"""A widget's chart as an SVG or PNG image, or as its Vega-Lite spec."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.charts import service
from app.charts.params import ChartLookDep, FormatParam
from app.charts.renderer import ImageFormat
from app.core.db import SessionDep
from app.core.deps import XlsxSlotsDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.data_items.dependencies import DataItemDep
from app.fields.dependencies import ItemFieldsDep
from app.widgets.dependencies import WidgetDep

router = ApiRouter(
    prefix="/data-items/{item_id}/widgets", tags=["widgets"], route_class=AuthenticatedRoute
)

_DESCRIPTION = """
The widget's chart, drawn on the server from the same data as `GET …/data/` (every chart type:
bar, line, area, pie, doughnut, scatter, number). `width` x `height` is the whole image, title,
axes and legend included. Series keep their colors; a pie or doughnut with several series draws
one ring per series, outside in; groups where a series has no value draw nothing (a pie also
leaves out values that are not positive); no data at all draws "No data".

`?format=vega-lite` answers the chart's Vega-Lite spec instead (JSON, with its data inline and
exact numbers): the one description the images are rendered from, for your own Vega-Lite viewer.
A widget that cannot be drawn as it stands is a 400 naming why, as for its data.
"""

_SPEC_EXAMPLE: dict[str, Any] = {
    "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
    "width": 640,
    "height": 400,
    "title": {"text": "Revenue by Region"},
    "data": {
        "values": [
            {"label": "North", "series": "Total Revenue", "value": 45200.5},
            {"label": "South", "series": "Total Revenue", "value": 31500},
        ]
    },
    "mark": {"type": "bar"},
    "encoding": {
        "x": {"field": "label", "type": "nominal"},
        "y": {"field": "value", "type": "quantitative"},
    },
}


def _content(media_type: str) -> dict[int | str, dict[str, Any]]:
    image: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
    if media_type == "image/svg+xml":
        image = {"schema": {"type": "string"}, "example": "<svg xmlns=…>…</svg>"}
    return {
        200: {
            "description": f"The chart ({media_type}), or with `format=vega-lite` its spec.",
            "content": {
                media_type: image,
                "application/json": {"schema": {"type": "object"}, "example": _SPEC_EXAMPLE},
            },
        },
        **errors(400, 401, 404),
        503: {"description": "The chart took too long to draw, or its renderer stopped."},
    }


async def _chart(
    image: ImageFormat,
    spec_format: FormatParam,
    item: DataItemDep,
    fields: ItemFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
    account: AccountDep,
    look: ChartLookDep,
    slots: XlsxSlotsDep,
) -> Response:
    if spec_format is not None:
        spec = await service.widget_spec(session, item, fields, widget, look=look)
        return ExactJSONResponse(spec)
    drawn = await service.widget_image(
        session,
        item,
        fields,
        widget,
        look=look,
        image=image,
        account_id=account.id,
        slots=slots,
    )
    return Response(drawn.body, media_type=drawn.media_type)


@router.get(
    "/{widget_id}/chart.svg/",
    response_class=Response,
    summary="The widget's chart as SVG (or its Vega-Lite spec)",
    description=_DESCRIPTION,
    responses=_content("image/svg+xml"),
)
async def widget_chart_svg(
    item: DataItemDep,
    fields: ItemFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
    account: AccountDep,
    look: ChartLookDep,
    slots: XlsxSlotsDep,
    spec_format: FormatParam = None,
) -> Response:
    return await _chart(
        ImageFormat.SVG, spec_format, item, fields, widget, session, account, look, slots
    )


@router.get(
    "/{widget_id}/chart.png/",
    response_class=Response,
    summary="The widget's chart as PNG (or its Vega-Lite spec)",
    description=_DESCRIPTION,
    responses=_content("image/png"),
)
async def widget_chart_png(
    item: DataItemDep,
    fields: ItemFieldsDep,
    widget: WidgetDep,
    session: SessionDep,
    account: AccountDep,
    look: ChartLookDep,
    slots: XlsxSlotsDep,
    spec_format: FormatParam = None,
) -> Response:
    return await _chart(
        ImageFormat.PNG, spec_format, item, fields, widget, session, account, look, slots
    )
