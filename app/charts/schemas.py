"""What a chart request may choose: its size, its theme, and the spec instead of an image."""

from __future__ import annotations

from enum import StrEnum

from app.charts.spec import Theme

DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 400
MIN_SIDE = 100
MAX_SIDE = 4000
MAX_PIXELS = 4_000_000  # width x height: 2000 x 2000, 4000 x 1000 (a PNG of at most 16 MB raw)


class SpecFormat(StrEnum):
    VEGA_LITE = "vega-lite"


__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "SpecFormat",
    "Theme",
]
