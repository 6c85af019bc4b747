"""Chart images of widgets (GET …/chart.svg, …/chart.png, ?format=vega-lite): every chart type
drawn with one mark per data point and its labels and titles as text, PNGs of the size asked
for, the spec with its data inline and exact, "No data", long labels, bad parameters (400),
another account's widget (404), and rendering that leaves the event loop free. Dashboards as
one picture (GET /dashboards/{id}/image.svg, .png, .pdf): each widget's chart in its grid cell."""

from __future__ import annotations

import importlib.util
import json
import struct
import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

from app.charts.renderer import ChartRenderer, RenderBusy
from app.core.errors import AppError
from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item
from tests.widgets.helpers import add_rows, create_widget, exact, fid

pytestmark = pytest.mark.asyncio

renders = pytest.mark.skipif(
    importlib.util.find_spec("vl_convert") is None,
    reason="vl-convert-python is not installed (pip install -e '.[dev]' installs it)",
)

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BIG = "1000000000000000000.01"  # a double cannot hold it: the spec must carry it exactly

ROWS: tuple[dict[str, Any], ...] = (
    {"region": "North", "revenue": BIG, "date": "2026-01-15"},
    {"region": "North", "revenue": "0.1", "date": "2026-02-03"},
    {"region": "South", "revenue": "0.2", "date": "2026-02-20"},
    {"region": "East", "revenue": "12.5", "date": "2026-03-01"},
)
REGIONS = ["East", "North", "South"]  # the groups, by label


def chart_url(item_id: int, widget_id: int, kind: str = "svg") -> str:
    return f"/data-items/{item_id}/widgets/{widget_id}/chart.{kind}"


def svg_tree(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    return ET.fromstring(response.content)


def marks(root: ET.Element, role: str) -> list[ET.Element]:
    """The drawn marks Vega describes as `role` (bar, point, arc mark, text mark): the
    graphics-symbol children of its mark groups (axes, legends and titles are other roles)."""
    return [
        element
        for group in root.iter(f"{SVG}g")
        if "role-mark" in (group.get("class") or "").split()
        for element in group
        if element.get("role") == "graphics-symbol" and element.get("aria-roledescription") == role
    ]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == PNG_SIGNATURE
    assert body[12:16] == b"IHDR"
    width, height = struct.unpack(">II", body[16:24])
    return width, height


async def two_series_widget(api: Caller, sales: Sales, chart_type: str, **extra: Any) -> int:
    """Revenue summed and counted per region: two series, three groups."""
    revenue = fid(sales, "Revenue")
    widget = await create_widget(
        api,
        sales.id,
        title=f"Revenue {chart_type}",
        chart_type=chart_type,
        label_field=fid(sales, "Region"),
        series=[
            {"value_field": revenue, "aggregation": "sum", "label": "Revenue"},
            {"value_field": revenue, "aggregation": "count", "label": "Deals"},
        ],
        **extra,
    )
    return int(widget["id"])


@renders
class TestEveryChartType:
    @pytest.mark.parametrize(
        ("chart_type", "role", "count"),
        [
            ("bar", "bar", 6),  # 3 groups x 2 series
            ("line", "point", 6),  # a point on each line per group
            ("area", "point", 6),
            ("pie", "arc mark", 6),  # one ring of 3 slices per series
            ("doughnut", "arc mark", 6),
        ],
    )
    async def test_one_mark_per_data_point_and_the_labels_as_text(
        self, api: Caller, sales: Sales, chart_type: str, role: str, count: int
    ) -> None:
        await add_rows(api, sales, *ROWS)
        wid = await two_series_widget(api, sales, chart_type)
        root = svg_tree(await api.client.get(chart_url(sales.id, wid)))
        assert len(marks(root, role)) == count
        shown = texts(root)
        assert f"Revenue {chart_type}" in shown  # the widget's title
        assert set(REGIONS) <= set(shown)  # axis labels (pie: legend labels)
        assert "Region" in shown  # the label field names the axis (pie: the legend)
        if chart_type in ("bar", "line", "area"):
            assert {"Revenue", "Deals"} <= set(shown)  # the series, in the legend

    async def test_scatter_draws_a_point_per_row(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *ROWS, {"region": "West", "date": "2026-04-01"})  # no y
        revenue = fid(sales, "Revenue")
        widget = await create_widget(
            api,
            sales.id,
            title="Deals over time",
            chart_type="scatter",
            label_field=fid(sales, "Close Date"),
            series=[
                {"value_field": revenue, "label": "Revenue"},
                {"value_field": revenue, "label": "Again"},
            ],
        )
        root = svg_tree(await api.client.get(chart_url(sales.id, widget["id"])))
        assert len(marks(root, "point")) == 8  # 4 rows with both values, 2 series
        shown = texts(root)
        assert {"Deals over time", "Close Date", "Revenue", "Again"} <= set(shown)

    async def test_number_shows_each_series_exactly(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *ROWS)
        revenue = fid(sales, "Revenue")
        widget = await create_widget(
            api,
            sales.id,
            title="Totals",
            chart_type="number",
            series=[
                {"value_field": revenue, "aggregation": "sum", "label": "Revenue"},
                {"value_field": revenue, "aggregation": "count", "label": "Deals"},
            ],
        )
        root = svg_tree(await api.client.get(chart_url(sales.id, widget["id"])))
        shown = texts(root)
        # 10^18 + 0.01 + 0.1 + 0.2 + 12.5, to the cent: drawn from the exact text, not a double
        assert "1,000,000,000,000,000,012.81" in shown
        assert {"4", "Revenue", "Deals", "Totals"} <= set(shown)
        assert len(marks(root, "text mark")) == 4  # a value and its label per series

    async def test_date_buckets_name_the_grouping(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *ROWS)
        widget = await create_widget(
            api,
            sales.id,
            chart_type="line",
            label_field=fid(sales, "Close Date"),
            date_grouping="month",
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": "count"}],
        )
        root = svg_tree(await api.client.get(chart_url(sales.id, widget["id"])))
        assert len(marks(root, "point")) == 3
        shown = texts(root)
        assert {"2026-01", "2026-02", "2026-03", "Close Date (by month)"} <= set(shown)
        assert "Count of Revenue" in shown  # one series: it names the value axis


@renders
class TestImages:
    async def test_png_has_the_size_asked_for(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *ROWS)
        wid = await two_series_widget(api, sales, "bar")
        r = await api.client.get(chart_url(sales.id, wid, "png"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        assert png_size(r.content) == (640, 400)  # the defaults
        for theme in ("light", "dark"):
            r = await api.client.get(
                chart_url(sales.id, wid, "png"),
                params={"width": 480, "height": 300, "theme": theme},
            )
            assert r.status_code == 200, r.text
            assert png_size(r.content) == (480, 300)

    async def test_svg_has_the_size_and_theme_asked_for(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *ROWS)
        wid = await two_series_widget(api, sales, "pie")
        light = svg_tree(await api.client.get(chart_url(sales.id, wid)))
        dark = svg_tree(
            await api.client.get(
                chart_url(sales.id, wid), params={"width": 300, "height": 1000, "theme": "dark"}
            )
        )
        assert (dark.get("width"), dark.get("height")) == ("300", "1000")

        def background(root: ET.Element) -> str | None:
            return next(iter(root.iter(f"{SVG}rect"))).get("fill")

        assert background(light) == "#ffffff"
        assert background(dark) == "#1e1e1e"

    async def test_no_data_says_so(self, api: Caller, sales: Sales) -> None:
        for chart_type in ("bar", "pie", "scatter", "number"):
            widget = await create_widget(
                api,
                sales.id,
                chart_type=chart_type,
                label_field=fid(sales, "Close Date" if chart_type == "scatter" else "Region"),
                series=[{"value_field": fid(sales, "Revenue")}],
            )
            root = svg_tree(await api.client.get(chart_url(sales.id, widget["id"])))
            assert "No data" in texts(root)  # (number: a sum over no rows has no value)
        bare = await create_widget(api, sales.id, title="Nothing yet")  # no series at all
        shown = texts(svg_tree(await api.client.get(chart_url(sales.id, bare["id"]))))
        assert {"No data", "Nothing yet"} <= set(shown)

    async def test_long_labels_are_cut_in_the_image_not_in_the_spec(
        self, api: Caller, sales: Sales
    ) -> None:
        long = "A region whose name goes on" + " and on" * 40
        await add_rows(api, sales, {"region": long, "revenue": 1}, {"region": "B", "revenue": 2})
        widget = await create_widget(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        root = svg_tree(await api.client.get(chart_url(sales.id, widget["id"])))
        assert len(marks(root, "bar")) == 2
        cut = [t for t in texts(root) if t.startswith("A region")]
        assert len(cut) == 1 and cut[0].endswith("…") and len(cut[0]) < 40
        r = await api.client.get(chart_url(sales.id, widget["id"]), params={"format": "vega-lite"})
        assert [v["label"] for v in exact(r)["data"]["values"]] == [long, "B"]


class TestVegaLiteSpec:
    async def test_the_spec_carries_its_data_inline_and_exact(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(api, sales, *ROWS)
        wid = await two_series_widget(api, sales, "bar")
        for kind in ("svg", "png"):
            r = await api.client.get(
                chart_url(sales.id, wid, kind),
                params={"format": "vega-lite", "width": 480, "height": 300},
            )
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("application/json")
            spec = exact(r)
            assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
            assert (spec["width"], spec["height"]) == (480, 300)
            assert "url" not in spec["data"]
            assert spec["data"]["values"] == [
                {"label": "East", "series": "Revenue", "value": Decimal("12.5")},
                {"label": "North", "series": "Revenue", "value": Decimal(BIG) + Decimal("0.1")},
                {"label": "South", "series": "Revenue", "value": Decimal("0.2")},
                {"label": "East", "series": "Deals", "value": 1},
                {"label": "North", "series": "Deals", "value": 2},
                {"label": "South", "series": "Deals", "value": 1},
            ]
            assert b"1000000000000000000.11" in r.content  # the number as written, not a double

    async def test_the_spec_follows_the_widget_data(self, api: Caller, sales: Sales) -> None:
        """One code path: the spec's values are the data endpoint's, group for group."""
        await add_rows(api, sales, *ROWS)
        wid = await two_series_widget(api, sales, "line", sort_direction="desc", row_limit=2)
        data = exact(await api.client.get(f"/data-items/{sales.id}/widgets/{wid}/data/"))
        spec = exact(await api.client.get(chart_url(sales.id, wid), params={"format": "vega-lite"}))
        drawn = [
            (v["label"], v["value"]) for v in spec["data"]["values"] if v["series"] == "Revenue"
        ]
        assert drawn == list(zip(data["labels"], data["datasets"][0]["data"], strict=True))
        assert spec["encoding"]["x"]["sort"] == data["labels"] == ["North", "East"]
        assert "row_limit" in spec["title"]["subtitle"]  # truncated says so


class TestErrors:
    @pytest.mark.parametrize(
        "params",
        [
            {"width": 99},
            {"width": 4001},
            {"height": 0},
            {"height": "tall"},
            {"width": 4000, "height": 4000},  # 16 million pixels: over the 4 million allowed
            {"theme": "blue"},
            {"format": "json"},
        ],
    )
    async def test_bad_parameters_are_400(
        self, api: Caller, sales: Sales, params: dict[str, Any]
    ) -> None:
        wid = await two_series_widget(api, sales, "bar")
        for kind in ("svg", "png"):
            r = await api.client.get(chart_url(sales.id, wid, kind), params=params)
            body = assert_error(r, 400, "VALIDATION_ERROR")
            assert next(iter(params)) in str(body["details"]), body

    async def test_another_accounts_widget_is_404(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        wid = await two_series_widget(api, sales, "bar")
        for kind in ("svg", "png"):
            for params in ({}, {"format": "vega-lite"}):
                r = await intruder.client.get(chart_url(sales.id, wid, kind), params=params)
                assert_error(r, 404, "NOT_FOUND")
        other = await create_widget(api, sales.id)
        r = await api.client.get(chart_url(sales.id, other["id"] + 1000))
        assert_error(r, 404, "NOT_FOUND")

    async def test_a_widget_that_cannot_be_drawn_is_400(self, api: Caller, sales: Sales) -> None:
        widget = await create_widget(
            api, sales.id, chart_type="scatter", series=[{"value_field": fid(sales, "Revenue")}]
        )
        r = await api.client.get(chart_url(sales.id, widget["id"], "png"))
        assert "label_field" in assert_error(r, 400)["error"]


@renders
class TestRenderingOffTheLoop:
    async def test_the_event_loop_keeps_serving_while_a_chart_is_drawn(
        self, api: Caller, sales: Sales
    ) -> None:
        """vl-convert holds the GIL while it renders: in a thread, it would stall every request
        of the process for the whole render. It runs in a child process instead."""
        await add_rows(api, sales, *({"region": f"R{i:03}", "revenue": i} for i in range(300)))
        wid = await two_series_widget(api, sales, "bar")
        gaps: list[float] = []
        rendered = anyio.Event()

        async def tick() -> None:
            last = time.perf_counter()
            while not rendered.is_set():
                await anyio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            started = time.perf_counter()
            r = await api.client.get(
                chart_url(sales.id, wid, "png"), params={"width": 2000, "height": 2000}
            )
            took = time.perf_counter() - started
            rendered.set()
        assert png_size(r.content) == (2000, 2000)
        assert max(gaps) < max(0.5, took / 3), (max(gaps), took)


# ---------------------------------------------------------------------------------- dashboards

# The layout below at the default width (1200): 16 px margins, 12 px gaps, 98.33 px columns,
# 80 px rows, below a title (24 px type) and a description line (14 px): the grid starts at
# y 77, and the picture is as tall as its lowest cell (7 rows) and a margin.
LAYOUT = [
    {"x": 0, "y": 0, "w": 6, "h": 4},
    {"x": 6, "y": 0, "w": 6, "h": 4},
    {"x": 0, "y": 4, "w": 12, "h": 3},
]
CELLS = [(16, 77, 578, 308), (606, 77, 578, 308), (16, 397, 1168, 228)]
BOARD_SIZE = (1200, 641)


async def sales_board(api: Caller, sales: Sales) -> tuple[int, list[int]]:
    """A bar and a number chart of the sales item, and a pie of a second item, on a grid."""
    await add_rows(api, sales, *ROWS)
    bar = await two_series_widget(api, sales, "bar")
    number = await create_widget(
        api,
        sales.id,
        title="Totals",
        chart_type="number",
        series=[{"value_field": fid(sales, "Revenue"), "aggregation": "sum", "label": "Revenue"}],
    )
    other = await create_item(api.client, "Deals", [{"field_label": "Stage", "field_type": "char"}])
    stage = other["fields"][0]["id"]
    rows = [{str(stage): s} for s in ("won", "won", "lost", "open")]
    r = await api.client.post(f"/data-items/{other['id']}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text
    pie = await create_widget(
        api,
        other["id"],
        title="Deals by stage",
        chart_type="pie",
        label_field=stage,
        series=[{"value_field": stage, "aggregation": "count"}],
    )
    widgets = [bar, int(pie["id"]), int(number["id"])]
    layout = [{"widget_id": w, **place} for w, place in zip(widgets, LAYOUT, strict=True)]
    body = {"title": "Sales overview", "description": "Revenue and deals", "layout": layout}
    r = await api.client.post("/dashboards/", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), widgets


def board_url(dashboard_id: int, kind: str) -> str:
    return f"/dashboards/{dashboard_id}/image.{kind}"


@renders
class TestDashboardImages:
    async def test_every_widget_is_drawn_in_its_cell(self, api: Caller, sales: Sales) -> None:
        board, _ = await sales_board(api, sales)
        root = svg_tree(await api.client.get(board_url(board, "svg")))
        assert (int(root.get("width") or 0), int(root.get("height") or 0)) == BOARD_SIZE
        cells = [e for e in root if e.tag == f"{SVG}svg"]
        placed = [
            (int(c.get("x") or 0), int(c.get("y") or 0), int(c.get("width") or 0)) for c in cells
        ]
        assert placed == [(x, y, w) for x, y, w, _ in CELLS]
        assert [int(c.get("height") or 0) for c in cells] == [h for *_, h in CELLS]
        bar, pie, number = cells
        assert len(marks(bar, "bar")) == 6
        assert len(marks(pie, "arc mark")) == 3  # won, lost, open
        assert "1,000,000,000,000,000,012.81" in texts(number)
        shown = texts(root)
        assert {"Sales overview", "Revenue and deals", "Deals by stage", "Totals"} <= set(shown)
        assert {"East", "North", "South", "won", "lost", "open"} <= set(shown)

    async def test_png_and_pdf(self, api: Caller, sales: Sales) -> None:
        board, _ = await sales_board(api, sales)
        r = await api.client.get(board_url(board, "png"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        assert png_size(r.content) == BOARD_SIZE
        r = await api.client.get(board_url(board, "png"), params={"width": 600, "theme": "dark"})
        assert png_size(r.content) == (600, 320)  # everything at half the size
        r = await api.client.get(board_url(board, "pdf"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-")
        assert b"/MediaBox [0 0 1200 641]" in r.content  # one page, the picture's size

    async def test_a_widget_that_cannot_be_drawn_says_why_in_its_cell(
        self, api: Caller, sales: Sales
    ) -> None:
        board, (bar, *_) = await sales_board(api, sales)
        broken = await create_widget(  # a scatter without a label field cannot be drawn
            api,
            sales.id,
            title="Broken",
            chart_type="scatter",
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        layout = [
            {"widget_id": bar, "x": 0, "y": 0, "w": 6, "h": 4},
            {"widget_id": broken["id"], "x": 6, "y": 0, "w": 6, "h": 4},
        ]
        r = await api.client.patch(f"/dashboards/{board}/", json={"layout": layout})
        assert r.status_code == 200, r.text
        root = svg_tree(await api.client.get(board_url(board, "svg")))
        first, second = (e for e in root if e.tag == f"{SVG}svg")
        assert len(marks(first, "bar")) == 6
        assert any("needs label_field" in t for t in texts(second)), texts(second)
        assert "Broken" in texts(second)

    async def test_an_empty_dashboard_says_so(self, api: Caller) -> None:
        r = await api.client.post("/dashboards/", json={"title": "Soon"})
        assert r.status_code == 201, r.text
        root = svg_tree(await api.client.get(board_url(r.json()["id"], "svg")))
        assert {"Soon", "No widgets on this dashboard yet."} <= set(texts(root))
        assert [e for e in root if e.tag == f"{SVG}svg"] == []


class TestDashboardImageErrors:
    async def test_another_accounts_dashboard_is_404(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        r = await api.client.post("/dashboards/", json={"title": "Mine"})
        board = r.json()["id"]
        for kind in ("svg", "png", "pdf"):
            assert_error(await intruder.client.get(board_url(board, kind)), 404, "NOT_FOUND")
            assert_error(await api.client.get(board_url(board + 1000, kind)), 404, "NOT_FOUND")

    @pytest.mark.parametrize("params", [{"width": 399}, {"width": 4001}, {"theme": "sepia"}])
    async def test_bad_parameters_are_400(self, api: Caller, params: dict[str, Any]) -> None:
        r = await api.client.post("/dashboards/", json={"title": "Mine"})
        for kind in ("svg", "png", "pdf"):
            r2 = await api.client.get(board_url(r.json()["id"], kind), params=params)
            body = assert_error(r2, 400, "VALIDATION_ERROR")
            assert next(iter(params)) in str(body["details"]), body

    async def test_a_picture_too_big_is_400(self, api: Caller, sales: Sales) -> None:
        widget = await create_widget(api, sales.id)
        place = {"widget_id": widget["id"], "x": 0, "y": 900, "w": 12, "h": 100}
        r = await api.client.post("/dashboards/", json={"title": "Tall", "layout": [place]})
        assert r.status_code == 201, r.text
        r2 = await api.client.get(board_url(r.json()["id"], "png"), params={"width": 4000})
        body = assert_error(r2, 400, "VALIDATION_ERROR")
        assert "smaller width" in body["error"], body


@renders
class TestRenderer:
    """The worker processes themselves (app/charts/renderer.py)."""

    SPEC = json.dumps(
        {
            "data": {"values": [{"a": "x", "b": 1}]},
            "mark": "bar",
            "encoding": {"x": {"field": "a"}, "y": {"field": "b", "type": "quantitative"}},
        }
    ).encode()

    async def test_a_worker_is_kept_for_the_next_render(self) -> None:
        renderer = ChartRenderer()
        try:
            first = await anyio.to_thread.run_sync(renderer.render_blocking, "svg", self.SPEC)
            (worker,) = renderer._idle
            second = await anyio.to_thread.run_sync(renderer.render_blocking, "png", self.SPEC)
            assert renderer._idle == [worker]  # the same process drew both
            assert first.startswith(b"<svg") and second.startswith(PNG_SIGNATURE)
        finally:
            renderer.close()
        assert worker.process.returncode == 0  # ended by closing its input

    async def test_a_render_over_its_time_is_stopped(self) -> None:
        renderer = ChartRenderer(timeout=0.05)  # less than a new worker needs to start
        try:
            with pytest.raises(RenderBusy, match="longer than 0 s") as raised:
                await anyio.to_thread.run_sync(renderer.render_blocking, "png", self.SPEC)
            assert raised.value.status_code == 503
            assert renderer._idle == []  # the killed worker is not kept
        finally:
            renderer.close()

    async def test_a_spec_vega_lite_refuses_is_a_500_that_names_no_internals(self) -> None:
        renderer = ChartRenderer()
        try:
            with pytest.raises(AppError) as raised:
                await anyio.to_thread.run_sync(renderer.render_blocking, "svg", b"{not json")
            assert raised.value.status_code == 500
            assert raised.value.message == "The chart could not be drawn."
            assert len(renderer._idle) == 1  # the worker itself is fine, and kept
        finally:
            renderer.close()
