"""A dashboard as one picture: its title (and description) above its widgets' charts, each drawn
from its own spec (app/charts/spec.py, from its widget's data) at the size of its cell, placed
where the layout's 12-column grid puts it. The worker (app/charts/worker.py, `compose`) draws
the charts and places them; PNG and PDF are both drawn from that one SVG.

Geometry, at the default width of 1200 px (everything scales with the width): 16 px margins,
12 px between cells, a grid row 80 px high; a cell is `w` columns wide and `h` rows high. The
picture is as tall as the layout's lowest cell. Widgets of several items may sit side by side;
one that cannot be drawn (a field's type changed under it) says why in its cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.charts.spec import ChartLook, ChartText, Theme, chart_spec, message_spec
from app.charts.titles import chart_text
from app.core.errors import AppError, BadRequest
from app.dashboards.schemas import DashboardRead, LayoutEntryRead
from app.data_items import service as data_items_service
from app.fields import service as fields_service
from app.widgets import service as widgets_service

COLUMNS = 12
BASE_WIDTH = 1200
MARGIN, GAP, ROW, TITLE, SUBTITLE = 16, 12, 80, 24, 14  # px at BASE_WIDTH
MAX_BOARD_PIXELS = 16_000_000  # 1200 x 13,333, 4000 x 4000
_PAGE = {Theme.LIGHT: "#eef0f3", Theme.DARK: "#111111"}
_INK = {Theme.LIGHT: ("#111111", "#555555"), Theme.DARK: ("#f2f2f2", "#aaaaaa")}


@dataclass(frozen=True)
class BoardLook:
    width: int
    theme: Theme


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    width: int
    height: int


class Geometry:
    """Where the title and each layout entry go, in pixels, for a picture `width` wide."""

    def __init__(self, width: int, *, description: bool, rows: int) -> None:
        self.scale = width / BASE_WIDTH
        self.width = width
        self.margin = round(MARGIN * self.scale)
        self.gap = round(GAP * self.scale)
        self.column = (width - 2 * self.margin + self.gap) / COLUMNS
        self.row = ROW * self.scale
        self.title_size = round(TITLE * self.scale)
        self.subtitle_size = round(SUBTITLE * self.scale)
        header = self.title_size * 1.6 + (self.subtitle_size * 1.6 if description else 0)
        self.top = round(self.margin + header)
        self.height = round(self.top + max(rows, 1) * self.row - self.gap + self.margin)

    def cell(self, entry: LayoutEntryRead) -> Cell:
        x = round(self.margin + entry.x * self.column)
        y = round(self.top + entry.y * self.row)
        right = round(self.margin + (entry.x + entry.w) * self.column - self.gap)
        bottom = round(self.top + (entry.y + entry.h) * self.row - self.gap)
        return Cell(x, y, max(right - x, 20), max(bottom - y, 20))


def geometry(dashboard: DashboardRead, look: BoardLook) -> Geometry:
    """The picture's geometry; a 400 if it would be over MAX_BOARD_PIXELS."""
    rows = max((e.y + e.h for e in dashboard.layout), default=0)
    shape = Geometry(look.width, description=bool(dashboard.description), rows=rows)
    if shape.width * shape.height > MAX_BOARD_PIXELS:
        raise BadRequest(
            f"The dashboard's picture would be {shape.width} x {shape.height} pixels (its layout "
            f"reaches grid row {rows}); the most is {MAX_BOARD_PIXELS:,} pixels: ask for a "
            "smaller width.",
            details=[
                {
                    "field": "width",
                    "message": f"width x height must be at most {MAX_BOARD_PIXELS:,}",
                }
            ],
        )
    return shape


async def _cell_spec(
    session: AsyncSession, account_id: int, entry: LayoutEntryRead, look: ChartLook
) -> dict[str, Any]:
    fallback = ChartText(title=entry.title, x_title=None)
    item = await data_items_service.get_item(session, account_id, entry.data_item_id)
    widget = (
        None if item is None else await widgets_service.get_widget(session, item, entry.widget_id)
    )
    if item is None or widget is None:  # (gone since the layout was read)
        return message_spec("This widget was deleted.", fallback, look)
    fields = await fields_service.list_fields(session, item)
    try:
        data = await widgets_service.widget_data(session, item, fields, widget)
    except BadRequest as exc:  # one widget that cannot be drawn does not hide the others
        return message_spec(_short(exc), fallback, look)
    return chart_spec(data, chart_text(widget, fields), look)


def _short(exc: AppError) -> str:
    text = exc.message
    return text if len(text) <= 120 else text[:119] + "…"


async def board(
    session: AsyncSession, account_id: int, dashboard: DashboardRead, look: BoardLook
) -> dict[str, Any]:
    """What the worker composes: the picture's size and background, its texts, and each cell's
    position and chart spec."""
    shape = geometry(dashboard, look)
    ink, muted = _INK[look.theme]
    texts: list[dict[str, Any]] = [
        {
            "x": shape.margin,
            "y": round(shape.margin + shape.title_size),
            "size": shape.title_size,
            "weight": "bold",
            "color": ink,
            "text": dashboard.title,
        }
    ]
    if dashboard.description:
        texts.append(
            {
                "x": shape.margin,
                "y": round(shape.margin + shape.title_size * 1.6 + shape.subtitle_size),
                "size": shape.subtitle_size,
                "weight": "normal",
                "color": muted,
                "text": _line(dashboard.description, shape.width, shape.subtitle_size),
            }
        )
    if not dashboard.layout:
        texts.append(
            {
                "x": shape.margin,
                "y": round(shape.top + shape.row / 2),
                "size": shape.subtitle_size,
                "weight": "normal",
                "color": muted,
                "text": "No widgets on this dashboard yet.",
            }
        )
    cells = []
    for entry in dashboard.layout:
        cell = shape.cell(entry)
        spec = await _cell_spec(
            session, account_id, entry, ChartLook(cell.width, cell.height, look.theme)
        )
        cells.append({"x": cell.x, "y": cell.y, "spec": spec})
    return {
        "width": shape.width,
        "height": shape.height,
        "background": _PAGE[look.theme],
        "texts": texts,
        "cells": cells,
    }


async def cell_specs(
    session: AsyncSession, account_id: int, dashboard: DashboardRead, theme: Theme
) -> list[dict[str, Any]]:
    """Each layout entry's chart spec alone, in layout order, at the size of its cell in the
    picture at the default width (for a page that lays the grid out itself)."""
    rows = max((e.y + e.h for e in dashboard.layout), default=0)
    shape = Geometry(BASE_WIDTH, description=bool(dashboard.description), rows=rows)
    specs = []
    for entry in dashboard.layout:
        cell = shape.cell(entry)
        look = ChartLook(cell.width, cell.height, theme)
        specs.append(await _cell_spec(session, account_id, entry, look))
    return specs


def _line(text: str, width: int, size: int) -> str:
    """The description's first line, cut to what fits the width (about half an em a letter)."""
    first = " ".join(text.split())
    fits = max(int((width - 2 * MARGIN) / (size * 0.5)), 10)
    return first if len(first) <= fits else first[: fits - 1] + "…"
