"""A widget's chart as an SVG or PNG image, or as its Vega-Lite spec; a dashboard as one SVG, PNG or
PDF picture."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.charts import service
from app.charts.params import BoardLookDep, ChartLookDep, FormatParam
from app.charts.renderer import MEDIA_TYPES, ImageFormat
from app.core.db import SessionDep
from app.core.deps import XlsxSlotsDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import ErrorBody
from app.dashboards.dependencies import DashboardDep
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
        503: {
            "model": ErrorBody,
            "description": "The chart took too long to draw, or its renderer stopped; see "
            "`Retry-After`.",
        },
    }


def _widget_chart(image: ImageFormat, summary: str) -> None:
    """GET …/widgets/{id}/chart.<format>/: the same route for each format."""

    async def draw(
        item: DataItemDep,
        fields: ItemFieldsDep,
        widget: WidgetDep,
        session: SessionDep,
        account: AccountDep,
        look: ChartLookDep,
        slots: XlsxSlotsDep,
        spec_format: FormatParam = None,
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

    router.get(
        f"/{{widget_id}}/chart.{image.value}/",
        response_class=Response,
        name=f"widget_chart_{image.value}",
        summary=summary,
        description=_DESCRIPTION,
        responses=_content(MEDIA_TYPES[image]),
    )(draw)


_widget_chart(ImageFormat.SVG, "The widget's chart as SVG (or its Vega-Lite spec)")
_widget_chart(ImageFormat.PNG, "The widget's chart as PNG (or its Vega-Lite spec)")


# ---------------------------------------------------------------------------------- dashboards

dashboard_router = ApiRouter(
    prefix="/dashboards", tags=["dashboards"], route_class=AuthenticatedRoute
)

_BOARD_DESCRIPTION = """
The dashboard as one picture: its title (and the first line of its description) above its
widgets' charts, each drawn from its widget's data at the size of its cell and placed where the
12-column grid puts it (16 px margins, 12 px gaps, grid rows 80 px high at the default width of
1200; everything scales with `width`). The picture is as tall as the lowest cell, at most
16,000,000 pixels in all (a 400 says so). A widget that cannot be drawn says why in its cell.
SVG and PDF are vector (text stays text). A key limited to some data items cannot use it (403).
"""


def _board_content(media_type: str) -> dict[int | str, dict[str, Any]]:
    schema = (
        {"type": "string"}
        if media_type == "image/svg+xml"
        else {"type": "string", "format": "binary"}
    )
    return {
        200: {
            "description": f"The dashboard ({media_type}).",
            "content": {media_type: {"schema": schema}},
        },
        **errors(400, 401, 404),
        503: {
            "model": ErrorBody,
            "description": "The picture took too long to draw, or its renderer stopped; see "
            "`Retry-After`.",
        },
    }


def _dashboard_picture(image: ImageFormat, summary: str) -> None:
    """GET /dashboards/{id}/image.<format>/: the same route for each format."""

    async def draw(
        dashboard: DashboardDep,
        session: SessionDep,
        account: AccountDep,
        look: BoardLookDep,
        slots: XlsxSlotsDep,
    ) -> Response:
        drawn = await service.dashboard_image(
            session,
            account_id=account.id,
            dashboard_id=dashboard.id,
            look=look,
            image=image,
            slots=slots,
        )
        return Response(drawn.body, media_type=drawn.media_type)

    dashboard_router.get(
        f"/{{dashboard_id}}/image.{image.value}/",
        response_class=Response,
        name=f"dashboard_{image.value}",
        summary=summary,
        description=_BOARD_DESCRIPTION,
        responses=_board_content(MEDIA_TYPES[image]),
    )(draw)


_dashboard_picture(ImageFormat.SVG, "The dashboard as an SVG picture")
_dashboard_picture(ImageFormat.PNG, "The dashboard as a PNG picture")
_dashboard_picture(ImageFormat.PDF, "The dashboard as a PDF (one page)")
