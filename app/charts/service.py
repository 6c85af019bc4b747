"""Chart images of widgets and dashboards: a widget's data (the widgets domain computes it,
exactly as `GET …/data/` answers it), drawn from one Vega-Lite spec (app/charts/spec.py) that is
also answered as JSON, rendered by vl-convert in worker processes (app/charts/renderer.py); a
dashboard's charts placed on its grid in one picture (app/charts/board.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.charts import board
from app.charts.board import BoardLook
from app.charts.renderer import MEDIA_TYPES, RENDERER, ImageFormat
from app.charts.spec import ChartLook, Theme, chart_spec
from app.charts.titles import chart_text
from app.core.db import end_reads
from app.core.errors import AppError
from app.core.jsonexact import dumps
from app.dashboards import service as dashboards_service
from app.dashboards.schemas import DashboardRead
from app.models import DataItem, Widget
from app.models import Field as FieldModel
from app.widgets import service as widgets_service


@dataclass(frozen=True)
class Image:
    body: bytes
    media_type: str


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


async def dashboard_image(
    session: AsyncSession,
    *,
    account_id: int,
    dashboard_id: int,
    look: BoardLook,
    image: ImageFormat,
    slots: anyio.CapacityLimiter,
) -> Image:
    """The dashboard as one picture (see app/charts/board.py): every widget's chart from its
    own data, placed on the layout's grid. The database is done with before drawing starts."""
    dashboard = await dashboards_service.read_dashboard(
        session, account_id=account_id, dashboard_id=dashboard_id
    )
    composition = await board.board(session, account_id, dashboard, look)
    await end_reads(session)
    body = await RENDERER.render(
        dumps(composition).encode(), image, account_id=account_id, slots=slots, dashboard=True
    )
    return Image(body=body, media_type=MEDIA_TYPES[image])


async def dashboard_charts(
    session: AsyncSession,
    *,
    account_id: int,
    dashboard_id: int,
    slots: anyio.CapacityLimiter,
    budget_seconds: float,
) -> tuple[DashboardRead, list[str | None]]:
    """The dashboard and each of its widgets' charts drawn alone as SVG (light theme, in layout
    order, each at the size of its cell in the dashboard's picture), for pages that lay the grid
    out themselves (a share page, app/shares). The renders take the renderer's usual turns (`slots`, one at a time per
    account). A chart that cannot be drawn now (its render failed or took too long, or the
    renders before it used up `budget_seconds`) is None; the others are still drawn. NotFound if
    the account has no such dashboard."""
    dashboard = await dashboards_service.read_dashboard(
        session, account_id=account_id, dashboard_id=dashboard_id
    )
    specs = await board.cell_specs(session, account_id, dashboard, Theme.LIGHT)
    await end_reads(session)
    deadline = time.monotonic() + budget_seconds
    charts: list[str | None] = []
    for spec in specs:
        if time.monotonic() > deadline:
            charts.append(None)
            continue
        try:
            drawn = await render(spec, ImageFormat.SVG, account_id=account_id, slots=slots)
        except AppError:  # (logged by the renderer) one chart does not take the page down
            charts.append(None)
            continue
        charts.append(drawn.body.decode())
    return dashboard, charts
