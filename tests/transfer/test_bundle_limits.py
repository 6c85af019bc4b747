"""Bundles are held to what a JSON request body is held to: the nesting and value caps, counted
while the document streams in (as the JSON body or the `bundle_file` upload), and every widget
checked as POST …/widgets/ checks it. Over a cap or refused: a 400 naming it, nothing created."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.routing import MAX_JSON_DEPTH, MAX_JSON_ITEMS
from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error
from tests.transfer.helpers import item_names, partitions_after_last_item

pytestmark = pytest.mark.asyncio

IMPORT = "/data-items/import-bundle/"


def bundle(**head: Any) -> dict[str, Any]:
    return {
        "format": "data-items-bundle",
        "version": 1,
        "item": {"data_name": "Moved"},
        "fields": [
            {"id": 11, "field_label": "Region"},
            {"id": 12, "field_label": "Revenue", "field_type": "decimal"},
            {"id": 13, "field_label": "Closed", "field_type": "date"},
        ],
        "widgets": [],
        "rows": [{"11": "North", "12": 1.5}],
        **head,
    }


def nested(levels: int) -> bytes:
    """An object nested `levels` deep: {"a": {"a": … 1 …}}."""
    return b'{"a":' * (levels - 1) + b'{"a":1' + b"}" * levels


def with_options(options: bytes) -> bytes:
    """A bundle whose one widget has these chart_options (raw JSON text)."""
    doc = json.dumps(bundle(widgets=[{"title": "Deep", "chart_options": "OPTIONS"}]))
    return doc.replace('"OPTIONS"', options.decode()).encode()


async def send(api: Caller, data: bytes, as_file: bool) -> Any:
    if as_file:
        return await api.client.post(IMPORT, files={"bundle_file": ("b.bundle.json", data)})
    return await api.client.post(IMPORT, content=data, headers={"content-type": "application/json"})


AS = pytest.mark.parametrize("as_file", [False, True], ids=["json body", "bundle_file"])


def peak_rss() -> int | None:
    """This process's peak resident memory, bytes (None where /proc does not tell)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class TestDepth:
    @AS
    async def test_chart_options_5000_levels_deep(
        self, api: Caller, app: FastAPI, as_file: bool
    ) -> None:
        body = assert_error(await send(api, with_options(nested(5_000)), as_file), 400)
        assert f"nested more than {MAX_JSON_DEPTH + 2} levels" in body["error"], body
        assert "MAX_JSON_DEPTH" in body["error"]
        assert await item_names(api) == [] and await partitions_after_last_item(app) == 0

    @AS
    async def test_deep_anywhere(self, api: Caller, as_file: bool) -> None:
        deep = nested(5_000).decode()
        for doc in (
            json.dumps(bundle(rows=[{"11": "DEEP"}])),  # a row's cell
            json.dumps(bundle(rows=["DEEP"])),  # a row
            json.dumps(bundle(item={"data_name": "x", "id": "DEEP"})),
            json.dumps(bundle(widgets=[{"filter_config": {"conditions": ["DEEP"]}}])),
        ):
            data = doc.replace('"DEEP"', deep).encode()
            body = assert_error(await send(api, data, as_file), 400)
            assert "levels deep" in body["error"], (doc[:80], body)
        assert await item_names(api) == []

    @AS
    async def test_every_widget_the_api_takes_imports(
        self, api: Caller, sales: Sales, as_file: bool
    ) -> None:
        """chart_options as deep as a POST …/widgets/ body may hold them survive the export:
        the bundle's cap is two levels more than a body's (the document and `widgets`)."""
        options = json.loads(nested(MAX_JSON_DEPTH - 1))
        r = await api.client.post(
            f"/data-items/{sales.id}/widgets/", json={"chart_options": options}
        )
        assert r.status_code == 201, r.text
        deeper = await api.client.post(
            f"/data-items/{sales.id}/widgets/", json={"chart_options": {"a": options}}
        )
        assert_error(deeper, 400)
        exported = await api.client.get(f"/data-items/{sales.id}/bundle/")
        r = await send(api, exported.content, as_file)
        assert r.status_code == 201, r.text
        (widget,) = (await api.client.get(f"/data-items/{r.json()['id']}/widgets/")).json()[
            "widgets"
        ]
        assert widget["chart_options"] == options
        # one level more than that is refused
        body = assert_error(await send(api, with_options(nested(MAX_JSON_DEPTH)), as_file), 400)
        assert "levels deep" in body["error"]


class TestValues:
    @AS
    async def test_millions_of_empty_arrays_stop_at_the_cap(
        self, api: Caller, app: FastAPI, as_file: bool
    ) -> None:
        """~10 MB of `[],` (3.3 million empty arrays) in the head: the count passes
        MAX_JSON_ITEMS a third of the way in, so at most that much is ever built (it cost 232 MB
        for this file, and a 500 MB upload would have cost ~12 GB)."""
        count = 3_300_000
        arrays = b"[" + b"[]," * (count - 1) + b"[]]"
        data = with_options(b'{"a":' + arrays + b"}")
        measured = reset_peak_rss()
        before = peak_rss()
        body = assert_error(await send(api, data, as_file), 400)
        after = peak_rss()
        if measured and before is not None and after is not None:
            assert after - before < 150 << 20, f"{(after - before) >> 20} MiB"
        assert f"more than {MAX_JSON_ITEMS:,} values" in body["error"], body
        assert "MAX_JSON_ITEMS" in body["error"] and "outside `rows`" in body["error"]
        assert await item_names(api) == [] and await partitions_after_last_item(app) == 0

    @AS
    async def test_a_row_over_the_cap(self, api: Caller, as_file: bool) -> None:
        arrays = b"[" + b"[]," * MAX_JSON_ITEMS + b"[]]"
        doc = json.dumps(bundle(rows=[{"11": "a"}, {"11": "WIDE"}])).encode()
        body = assert_error(await send(api, doc.replace(b'"WIDE"', arrays), as_file), 400)
        assert "in row 1" in body["error"] and f"{MAX_JSON_ITEMS:,}" in body["error"], body
        assert await item_names(api) == []

    async def test_rows_of_more_values_than_the_cap_import(self, api: Caller) -> None:
        """The cap holds for each batch of rows built at once, not for all rows: rows of many
        cells (here: 300, mostly empty) are read in smaller batches, every one of them."""
        fields = [{"id": i, "field_label": f"f{i}", "field_type": "decimal"} for i in range(1, 301)]
        rows: list[dict[str, Any]] = [
            {"1": r, **{str(i): None for i in range(2, 301)}} for r in range(7_000)
        ]
        assert len(rows) * 300 > MAX_JSON_ITEMS
        rows[6_999]["300"] = "12.5"
        r = await send(api, json.dumps(bundle(fields=fields, rows=rows)).encode(), True)
        assert r.status_code == 201, r.text
        assert r.json()["row_count"] == 7_000
        last = (await api.client.get(f"/data-items/{r.json()['id']}/rows/6999/")).json()["row"]
        f1, f300 = (str(f["id"]) for f in r.json()["fields"][::299])
        assert (last[f1], last[f300]) == (6_999, 12.5)


# (what, widget with field labels for ids, words of the answer, checked by the widgets service
# rather than by the schema: those answers also name the widget by its title)
BAD_WIDGETS: list[tuple[str, dict[str, Any], list[str], bool]] = [
    (
        "aggregation not for the type",
        {"label_field": "Revenue", "series": [{"value_field": "Region", "aggregation": "sum"}]},
        ["series.0.aggregation", "sum does not fit char field"],
        True,
    ),
    (
        "date grouping of a text label",
        {"label_field": "Region", "date_grouping": "month"},
        ["date_grouping", "needs a date label field"],
        True,
    ),
    (
        "date grouping without a label",
        {"date_grouping": "year"},
        ["date_grouping", "needs a date label_field"],
        True,
    ),
    (
        "filter op not for the type",
        {"filter_config": {"conditions": [{"field": "Region", "op": "gt", "value": "a"}]}},
        ["filter_config.conditions.0", "op gt is not valid for char field"],
        True,
    ),
    (
        "filter value not of the type",
        {"filter_config": {"conditions": [{"field": "Revenue", "op": "eq", "value": "lots"}]}},
        ["filter_config.conditions.0", "'lots' is not a number"],
        True,
    ),
    (
        "filter in without a list",
        {"filter_config": {"conditions": [{"field": "Closed", "op": "in", "value": "x"}]}},
        ["filter_config.conditions.0", "op in needs a non-empty list"],
        True,
    ),
    (
        "chart_options too big",
        {"chart_options": {"a": "x" * 17_000}},
        ["chart_options", "16,384 bytes"],
        False,
    ),
    (
        "series color",
        {"series": [{"value_field": "Region", "aggregation": "count", "color": "nope"}]},
        ["series.0.color", "hex color"],
        False,
    ),
]


LABELS = {"Region": "Region", "Revenue": "Revenue", "Closed": "Close Date"}


def _resolve(widget: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
    """A widget with field labels replaced by ids (`ids`: label -> id)."""
    out = copy.deepcopy(widget)
    if "label_field" in out:
        out["label_field"] = ids[out["label_field"]]
    for s in out.get("series", []):
        s["value_field"] = ids[s["value_field"]]
    for c in (out.get("filter_config") or {}).get("conditions", []):
        c["field"] = ids[c["field"]]
    return out


class TestWidgets:
    @pytest.mark.parametrize(
        ("widget", "words", "service"),
        [b[1:] for b in BAD_WIDGETS],
        ids=[b[0] for b in BAD_WIDGETS],
    )
    async def test_what_the_widgets_api_refuses_a_bundle_refuses(
        self,
        api: Caller,
        app: FastAPI,
        sales: Sales,
        widget: dict[str, Any],
        words: list[str],
        service: bool,
    ) -> None:
        here = {label: int(sales.f[key]) for label, key in LABELS.items()}
        r = await api.client.post(f"/data-items/{sales.id}/widgets/", json=_resolve(widget, here))
        assert_error(r, 400)
        assert (await api.client.get(f"/data-items/{sales.id}/widgets/")).json()["widgets"] == []

        good = {"title": "Fine", "chart_type": "number"}
        bad = {
            "title": "Revenue check",
            **_resolve(widget, {"Region": 11, "Revenue": 12, "Closed": 13}),
        }
        doc = json.dumps(bundle(widgets=[good, bad])).encode()
        for as_file in (False, True):
            body = assert_error(await send(api, doc, as_file), 400)
            text = json.dumps(body)
            assert all(w in text for w in words), body
            assert all(p["field"].startswith("widgets.1.") for p in body["details"]), body
            if service:
                assert "widget 1 'Revenue check'" in body["error"], body
        assert await item_names(api) == ["Sales"]
        assert await partitions_after_last_item(app) == 0

    async def test_a_good_widget_still_imports(self, api: Caller) -> None:
        widget = {
            "title": "By month",
            "label_field": 13,
            "date_grouping": "month",
            "filter_config": {"conditions": [{"field": 12, "op": "gt", "value": "1,000.5"}]},
            "series": [
                {"value_field": 12, "aggregation": "avg"},
                {"value_field": 11, "aggregation": "count"},
            ],
        }
        r = await send(api, json.dumps(bundle(widgets=[widget])).encode(), False)
        assert r.status_code == 201, r.text
        (w,) = (await api.client.get(f"/data-items/{r.json()['id']}/widgets/")).json()["widgets"]
        assert w["date_grouping"] == "month" and len(w["series"]) == 2
