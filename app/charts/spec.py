"""A widget's data (what `GET …/widgets/{id}/data/` answers) as a Vega-Lite spec with its data
inline: the one description of the chart that `?format=vega-lite` answers and that the SVG, PNG
and PDF images are rendered from.

- The data is long-form, one record per drawn point: `{"label", "series", "value"}` (scatter:
  `{"x", "y", "series"}`; number: `{"series", "value", "text"}`), with the exact numbers of the
  data endpoint (the spec is for display: a chart library reads them as doubles). A group where
  a series has no value (null) draws nothing; a pie leaves out values that are not positive.
- Every mark drawn is one record: bars (grouped side by side per series), line and area points,
  pie and doughnut slices (one ring per series, outside in), scatter points, the numbers of a
  number widget. Nothing is drawn from the widget's `chart_options` (those are the client's).
- Groups keep the data endpoint's order; series keep their colors (a series without one has a
  palette color there already). Long labels are cut with "…" (the full text stays in the data).
- The spec fits the requested size exactly, title, axes and legend included
  (`autosize: fit`). No data at all draws "No data" under the title.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.widgets.schemas import ChartType

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
NO_DATA = "No data"
LABEL_LIMIT = 140  # px: a longer axis or legend label is cut with "…"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")


class Theme(StrEnum):
    LIGHT = "light"
    DARK = "dark"


@dataclass(frozen=True)
class ChartLook:
    """What the caller chose: the whole image's size in pixels and the theme."""

    width: int
    height: int
    theme: Theme


@dataclass(frozen=True)
class ChartText:
    """Titles: the widget's title, and the label field's name (with its date grouping)."""

    title: str
    x_title: str | None


_LIGHT: dict[str, Any] = {
    "background": "#ffffff",
    "font": "Liberation Sans, Arial, sans-serif",
    "view": {"stroke": None},
    "axis": {"labelColor": "#333333", "titleColor": "#222222", "gridColor": "#e6e6e6"},
    "legend": {"labelColor": "#333333", "titleColor": "#222222"},
    "title": {"color": "#111111", "subtitleColor": "#666666", "anchor": "start"},
}
_DARK: dict[str, Any] = {
    "background": "#1e1e1e",
    "font": "Liberation Sans, Arial, sans-serif",
    "view": {"stroke": None},
    "axis": {
        "labelColor": "#d0d0d0",
        "titleColor": "#eeeeee",
        "gridColor": "#3a3a3a",
        "domainColor": "#888888",
        "tickColor": "#888888",
    },
    "legend": {"labelColor": "#d0d0d0", "titleColor": "#eeeeee"},
    "title": {"color": "#f2f2f2", "subtitleColor": "#aaaaaa", "anchor": "start"},
}
_TEXT_COLOR = {Theme.LIGHT: "#111111", Theme.DARK: "#f2f2f2"}
_MUTED_COLOR = {Theme.LIGHT: "#666666", Theme.DARK: "#aaaaaa"}
_SLICE_STROKE = {Theme.LIGHT: "#ffffff", Theme.DARK: "#1e1e1e"}


def _config(theme: Theme) -> dict[str, Any]:
    base = _DARK if theme is Theme.DARK else _LIGHT
    return {
        **base,
        "axis": {**base["axis"], "labelLimit": LABEL_LIMIT, "titleFontSize": 12},
        "legend": {**base["legend"], "labelLimit": LABEL_LIMIT, "orient": "bottom"},
    }


def _series_names(datasets: Sequence[Mapping[str, Any]]) -> list[str]:
    """Series labels, made unique ("Sum of Revenue (2)"): the legend and the colors key on them."""
    names: list[str] = []
    for d in datasets:
        name, n = str(d["label"]), 1
        while name in names:
            n += 1
            name = f"{d['label']} ({n})"
        names.append(name)
    return names


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


def _frame(
    text: ChartText, look: ChartLook, data: Mapping[str, Any], subtitle: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "width": look.width,
        "height": look.height,
        "autosize": {"type": "fit", "contains": "padding"},
        "padding": 12,
        "config": _config(look.theme),
    }
    notes = [n for n in (subtitle, _truncated_note(data)) if n]
    if text.title or notes:
        spec["title"] = {"text": text.title or " ", "limit": max(look.width - 24, 50)}
        if notes:
            spec["title"]["subtitle"] = " ".join(notes)
    return spec


def _truncated_note(data: Mapping[str, Any]) -> str | None:
    if not data.get("truncated"):
        return None
    if data["chart_type"] == ChartType.SCATTER:
        return "(The first points only: row_limit.)"
    return f"(The first {len(data['labels'])} groups only: row_limit.)"


def _color(names: list[str], colors: list[str], *, legend: bool) -> dict[str, Any]:
    return {
        "field": "series",
        "type": "nominal",
        "scale": {"domain": names, "range": colors},
        "sort": names,
        "legend": {"title": None} if legend else None,
    }


def message_spec(message: str, text: ChartText, look: ChartLook) -> dict[str, Any]:
    """A chart that says `message` instead (a dashboard's widget that cannot be drawn)."""
    return _no_data(_frame(text, look, {}), look, message)


def _no_data(spec: dict[str, Any], look: ChartLook, message: str = NO_DATA) -> dict[str, Any]:
    return {
        **spec,
        "data": {"values": [{"text": message}]},
        "mark": {
            "type": "text",
            "fontSize": 16,
            "color": _MUTED_COLOR[look.theme],
            "align": "center",
            "baseline": "middle",
        },
        "encoding": {"text": {"field": "text", "type": "nominal"}},
    }


def _label_axis(labels: Sequence[str], look: ChartLook) -> dict[str, Any]:
    """Labels side by side when they fit, else slanted; every label is shown while a slanted
    one has 14 px to itself, and some are skipped past that (never drawn over each other)."""
    longest = max((len(label) for label in labels), default=0)
    if min(longest, 20) * 6 * len(labels) <= look.width * 0.8:
        return {"labelAngle": 0, "labelOverlap": True}
    return {"labelAngle": -40, "labelOverlap": len(labels) * 14 > look.width * 0.8}


def _grouped(
    data: Mapping[str, Any], text: ChartText, look: ChartLook, names: list[str], colors: list[str]
) -> dict[str, Any]:
    """bar, line, area: one record per (group, series) with a value."""
    chart = ChartType(data["chart_type"])
    labels: list[str] = list(data["labels"])
    values = [
        {"label": label, "series": name, "value": value}
        for name, d in zip(names, data["datasets"], strict=True)
        for label, value in zip(labels, d["data"], strict=True)
        if value is not None
    ]
    spec = _frame(text, look, data)
    if not values:
        return _no_data(spec, look)
    several = len(names) > 1
    x: dict[str, Any] = {
        "field": "label",
        "type": "nominal" if chart is ChartType.BAR else "ordinal",
        "sort": labels,
        "title": text.x_title,
        "axis": _label_axis(labels, look),
    }
    y: dict[str, Any] = {
        "field": "value",
        "type": "quantitative",
        "title": None if several else names[0],
    }
    encoding: dict[str, Any] = {"x": x, "y": y, "color": _color(names, colors, legend=several)}
    mark: dict[str, Any]
    if chart is ChartType.BAR:
        mark = {"type": "bar"}
        if several:
            encoding["xOffset"] = {"field": "series", "type": "nominal", "sort": names}
    elif chart is ChartType.LINE:
        mark = {"type": "line", "point": {"filled": True, "size": 40}, "strokeWidth": 2}
    else:  # area: series overlap (not stacked), each with its line and points
        mark = {
            "type": "area",
            "opacity": 0.3,
            "line": {"strokeWidth": 2},
            "point": {"filled": True, "size": 40},
        }
        y["stack"] = None
    return {**spec, "data": {"values": values}, "mark": mark, "encoding": encoding}


def _pie(
    data: Mapping[str, Any], text: ChartText, look: ChartLook, names: list[str]
) -> dict[str, Any]:
    """pie, doughnut: one slice per group with a positive value; one ring per series."""
    labels: list[str] = list(data["labels"])
    rings: list[tuple[str, list[dict[str, Any]]]] = []
    for name, d in zip(names, data["datasets"], strict=True):
        ring = [
            {"label": label, "series": name, "value": value, "order": i}
            for i, (label, value) in enumerate(zip(labels, d["data"], strict=True))
            if _is_number(value) and value > 0
        ]
        if ring:
            rings.append((name, ring))
    several = len(rings) > 1
    subtitle = "Rings, outside in: " + ", ".join(n for n, _ in rings) + "." if several else None
    spec = _frame(text, look, data, subtitle)
    if not rings:
        return _no_data(spec, look)
    hole = 0.45 if ChartType(data["chart_type"]) is ChartType.DOUGHNUT else 0.0
    step = (1 - hole) / len(rings)
    radius = "min(width, height) / 2"
    layers = []
    for i, (name, _) in enumerate(rings):
        outer, inner = 1 - i * step, 1 - (i + 1) * step
        layers.append(
            {
                "transform": [{"filter": {"field": "series", "equal": name}}],
                "mark": {
                    "type": "arc",
                    "outerRadius": {"expr": f"{radius} * {outer:.4f}"},
                    "innerRadius": {"expr": f"{radius} * {inner:.4f}"},
                    "stroke": _SLICE_STROKE[look.theme],
                    "strokeWidth": 1,
                },
            }
        )
    return {
        **spec,
        "data": {"values": [v for _, ring in rings for v in ring]},
        "encoding": {
            "theta": {"field": "value", "type": "quantitative", "stack": True},
            "order": {"field": "order", "type": "quantitative"},
            "color": {
                "field": "label",
                "type": "nominal",
                "sort": labels,
                "scale": {"scheme": "tableau10" if len(labels) <= 10 else "tableau20"},
                "legend": {"title": text.x_title},
            },
        },
        "layer": layers,
    }


def _x_type(xs: Sequence[Any]) -> str:
    if all(_is_number(x) for x in xs):
        return "quantitative"
    if all(isinstance(x, str) and _ISO_DATE.match(x) for x in xs):
        return "temporal"
    return "nominal"


def _scatter(
    data: Mapping[str, Any], text: ChartText, look: ChartLook, names: list[str], colors: list[str]
) -> dict[str, Any]:
    values = [
        {"x": p["x"], "y": p["y"], "series": name}
        for name, d in zip(names, data["datasets"], strict=True)
        for p in d["data"]
        if p["x"] is not None and _is_number(p["y"])
    ]
    spec = _frame(text, look, data)
    if not values:
        return _no_data(spec, look)
    x_type = _x_type([v["x"] for v in values])
    if x_type == "nominal":  # (booleans and text: shown as written)
        for v in values:
            x = v["x"]
            v["x"] = ("true" if x else "false") if isinstance(x, bool) else str(x)
    several = len(names) > 1
    return {
        **spec,
        "data": {"values": values},
        "mark": {"type": "point", "filled": True, "size": 50, "opacity": 0.8},
        "encoding": {
            "x": {
                "field": "x",
                "type": x_type,
                "title": text.x_title,
                "scale": {"zero": False, "padding": 12} if x_type != "nominal" else {},
            },
            "y": {
                "field": "y",
                "type": "quantitative",
                "title": None if several else names[0],
                "scale": {"zero": False, "padding": 12},
            },
            "color": _color(names, colors, legend=several),
        },
    }


def number_text(value: Any) -> str:
    """A number widget's value as shown: exact, with thousands separators."""
    if value is None:
        return NO_DATA
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return format(value, ",")
    return str(value)


def _number(
    data: Mapping[str, Any], text: ChartText, look: ChartLook, names: list[str]
) -> dict[str, Any]:
    """number: each series' value, large, above its label; one row per series."""
    values = [
        {"series": name, "value": d["data"][0], "text": number_text(d["data"][0])}
        for name, d in zip(names, data["datasets"], strict=True)
        if d["data"]
    ]
    spec = _frame(text, look, data)
    if not values:
        return _no_data(spec, look)
    row = look.height / (len(values) + 1)
    size = int(max(12, min(64, row * 0.45, look.width / max(len(v["text"]) for v in values))))
    y = {"field": "series", "type": "nominal", "sort": names, "axis": None}
    return {
        **spec,
        "data": {"values": values},
        "encoding": {"y": y},
        "layer": [
            {
                "mark": {
                    "type": "text",
                    "fontSize": size,
                    "fontWeight": "bold",
                    "color": _TEXT_COLOR[look.theme],
                    "baseline": "bottom",
                    "align": "center",
                },
                "encoding": {"text": {"field": "text", "type": "nominal"}},
            },
            {
                "mark": {
                    "type": "text",
                    "fontSize": max(11, size // 3),
                    "color": _MUTED_COLOR[look.theme],
                    "baseline": "top",
                    "align": "center",
                    "dy": 4,
                    "limit": max(look.width - 24, 50),
                },
                "encoding": {"text": {"field": "series", "type": "nominal"}},
            },
        ],
    }


def chart_spec(data: Mapping[str, Any], text: ChartText, look: ChartLook) -> dict[str, Any]:
    """The Vega-Lite spec drawing `data` (a widget's data, as the data endpoint answers it)."""
    datasets: Sequence[Mapping[str, Any]] = data["datasets"]
    names = _series_names(datasets)
    colors = [str(d["color"]) for d in datasets]
    chart = ChartType(data["chart_type"])
    if not datasets:
        return _no_data(_frame(text, look, data), look)
    if chart in (ChartType.PIE, ChartType.DOUGHNUT):
        return _pie(data, text, look, names)
    if chart is ChartType.SCATTER:
        return _scatter(data, text, look, names, colors)
    if chart is ChartType.NUMBER:
        return _number(data, text, look, names)
    return _grouped(data, text, look, names, colors)
