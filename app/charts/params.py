"""Query parameters of the chart and dashboard picture endpoints: `width`, `height`, `theme` and
`format`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from app.charts.board import BASE_WIDTH, MAX_BOARD_PIXELS, BoardLook
from app.charts.schemas import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    SpecFormat,
    Theme,
)
from app.charts.spec import ChartLook
from app.core.errors import BadRequest

Width = Annotated[
    int,
    Query(
        ge=MIN_SIDE,
        le=MAX_SIDE,
        description=(
            f"The image's width in pixels, {MIN_SIDE} to {MAX_SIDE} (title, axes and legend "
            f"included); width x height at most {MAX_PIXELS:,}."
        ),
        examples=[DEFAULT_WIDTH],
    ),
]
Height = Annotated[
    int,
    Query(
        ge=MIN_SIDE,
        le=MAX_SIDE,
        description=f"The image's height in pixels, {MIN_SIDE} to {MAX_SIDE}.",
        examples=[DEFAULT_HEIGHT],
    ),
]
ThemeParam = Annotated[
    Theme, Query(description="light (white background) or dark.", examples=["light"])
]


async def chart_look(
    width: Width = DEFAULT_WIDTH, height: Height = DEFAULT_HEIGHT, theme: ThemeParam = Theme.LIGHT
) -> ChartLook:
    if width * height > MAX_PIXELS:
        raise BadRequest(
            f"width x height is {width * height:,} pixels; the most is {MAX_PIXELS:,} "
            f"(2000 x 2000, for example).",
            details=[
                {"field": "width", "message": f"width x height must be at most {MAX_PIXELS:,}"}
            ],
        )
    return ChartLook(width=width, height=height, theme=theme)


ChartLookDep = Annotated[ChartLook, Depends(chart_look)]

FormatParam = Annotated[
    SpecFormat | None,
    Query(
        alias="format",
        description=(
            "`vega-lite`: answer the chart's Vega-Lite spec (JSON, its data inline, for the same "
            "width, height and theme) instead of the image."
        ),
        examples=["vega-lite"],
    ),
]


BoardWidth = Annotated[
    int,
    Query(
        ge=400,
        le=MAX_SIDE,
        description=(
            "The picture's width in pixels, 400 to 4000 (default 1200); its height follows the "
            "layout (a grid row is 80 px at 1200 wide, scaled with the width), at most "
            f"{MAX_BOARD_PIXELS:,} pixels in all."
        ),
        examples=[BASE_WIDTH],
    ),
]


async def board_look(width: BoardWidth = BASE_WIDTH, theme: ThemeParam = Theme.LIGHT) -> BoardLook:
    return BoardLook(width=width, theme=theme)


BoardLookDep = Annotated[BoardLook, Depends(board_look)]
