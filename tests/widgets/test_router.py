"""Widgets over HTTP: the contract's shapes, defaults and enums, ordering, PATCH semantics,
validation that changes nothing, cascades from field and item deletes, tenancy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Widget, WidgetSeries
from tests.conftest import Caller
from tests.fixtures.sales import FIELDS, Sales
from tests.helpers import assert_error, create_item
from tests.widgets.helpers import create_widget, exact, fid, widgets

pytestmark = pytest.mark.asyncio

ENUMS = {
    "chart_type": ["bar", "line", "pie", "doughnut", "area", "scatter", "number"],
    "widget_size": ["sm", "md", "lg"],
    "date_grouping": ["", "day", "week", "month", "quarter", "year"],
    "sort_direction": ["", "asc", "desc"],
}


class TestCreate:
    async def test_defaults_and_shape(self, api: Caller, sales: Sales) -> None:
        r = await api.client.post(f"/data-items/{sales.id}/widgets/", json={})
        assert r.status_code == 201, r.text
        w = r.json()
        assert set(w) == {
            "id", "data_item", "title", "description", "chart_type", "widget_order",
            "widget_size", "label_field", "date_grouping", "sort_direction", "row_limit",
            "filter_config", "chart_options", "created_at", "updated_at", "series",
        }  # fmt: skip
        assert w["data_item"] == sales.id
        assert {k: w[k] for k in w if k not in {"id", "data_item", "created_at", "updated_at"}} == {
            "title": "", "description": "", "chart_type": "bar", "widget_order": 0,
            "widget_size": "md", "label_field": None, "date_grouping": "", "sort_direction": "",
            "row_limit": None, "filter_config": None, "chart_options": None, "series": [],
        }  # fmt: skip
        assert w["created_at"].endswith("+00:00")
        assert (await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}")).json() == w

    async def test_everything_with_series_in_one_request(self, api: Caller, sales: Sales) -> None:
        body = {
            "title": "Revenue by Region",
            "description": "Q1",
            "chart_type": "pie",
            "widget_size": "lg",
            "label_field": fid(sales, "Region"),
            "sort_direction": "desc",
            "row_limit": 5,
            "filter_config": {
                "match": "any",
                "conditions": [{"field": fid(sales, "Revenue"), "op": "gt", "value": 1000}],
            },
            "chart_options": {"legend": {"position": "right"}, "cutout": "50%"},
            "series": [
                {
                    "value_field": fid(sales, "Revenue"),
                    "label": "Total Revenue",
                    "color": "#0052FF",
                },
                {"value_field": fid(sales, "Region"), "aggregation": "count"},
            ],
        }
        w = await create_widget(api, sales.id, **body)
        for key in ("title", "description", "chart_type", "widget_size", "label_field"):
            assert w[key] == body[key]
        assert w["sort_direction"] == "desc" and w["row_limit"] == 5
        assert w["chart_options"] == body["chart_options"]
        assert w["filter_config"] == {
            "match": "any",
            "conditions": [{"field": fid(sales, "Revenue"), "op": "gt", "value": 1000}],
        }
        assert [
            (s["value_field"], s["aggregation"], s["label"], s["series_order"], s["color"])
            for s in w["series"]
        ] == [
            (fid(sales, "Revenue"), "sum", "Total Revenue", 0, "#0052FF"),
            (fid(sales, "Region"), "count", "", 1, ""),
        ]

    @pytest.mark.parametrize(("key", "value"), [(k, v) for k, vs in ENUMS.items() for v in vs])
    async def test_every_enum_value_is_accepted(
        self, api: Caller, sales: Sales, key: str, value: str
    ) -> None:
        body: dict[str, Any] = {key: value}
        if key == "date_grouping" and value:
            body["label_field"] = fid(sales, "Close Date")
        w = await create_widget(api, sales.id, **body)
        assert w[key] == value

    @pytest.mark.parametrize("key", [*ENUMS, "series.0.aggregation"])
    async def test_a_bad_enum_value_is_a_400_listing_the_valid_ones(
        self, api: Caller, sales: Sales, key: str
    ) -> None:
        if key.startswith("series"):
            body: dict[str, Any] = {
                "series": [{"value_field": fid(sales, "Revenue"), "aggregation": "median"}]
            }
            valid = ["count", "sum", "avg", "min", "max", "distinct_count"]
        else:
            body = {key: "sideways"}
            valid = ENUMS[key]
        r = await api.client.post(f"/data-items/{sales.id}/widgets/", json=body)
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == key
        assert all(f"'{v}'" in error["error"] for v in valid), error
        assert await widgets(api, sales.id) == []

    async def test_openapi_lists_the_valid_values(
        self, api: Caller, client: httpx.AsyncClient
    ) -> None:
        spec = (await client.get("/openapi.json")).json()
        schemas = spec["components"]["schemas"]
        assert schemas["ChartType"]["enum"] == ENUMS["chart_type"]
        assert schemas["WidgetSize"]["enum"] == ENUMS["widget_size"]
        assert schemas["DateGrouping"]["enum"] == ENUMS["date_grouping"]
        assert schemas["SortDirection"]["enum"] == ENUMS["sort_direction"]
        assert schemas["Aggregation"]["enum"] == [
            "count", "sum", "avg", "min", "max", "distinct_count",
        ]  # fmt: skip
        assert schemas["FilterOp"]["enum"] == [
            "eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "is_empty", "not_empty",
        ]  # fmt: skip
        paths = spec["paths"]
        base = "/api/v1/data-items/{item_id}/widgets/"
        assert set(paths[base]) == {"get", "post"}
        assert set(paths[base + "{widget_id}/"]) == {"get", "patch", "delete"}
        assert set(paths[base + "{widget_id}/data/"]) == {"get"}
        assert set(paths[base + "{widget_id}/series/"]) == {"get", "post"}
        assert set(paths[base + "{widget_id}/series/{series_id}/"]) == {"get", "patch", "delete"}

    async def test_null_date_grouping_and_sort_mean_none(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id, date_grouping=None, sort_direction=None)
        assert w["date_grouping"] == "" and w["sort_direction"] == ""

    @pytest.mark.parametrize(
        ("body", "field", "fragment"),
        [
            ({"row_limit": 0}, "row_limit", "greater than or equal to 1"),
            ({"row_limit": 1001}, "row_limit", "less than or equal to 1000"),
            ({"title": "x" * 256}, "title", "at most 255"),
            ({"title": "nul\u0000"}, "title", "NUL"),
            ({"widget_order": -1}, "widget_order", "greater than or equal to 0"),
            ({"chart_options": [1, 2]}, "chart_options", "valid dictionary"),
            ({"chart_options": {"a": "x" * 17_000}}, "chart_options", "the limit is 16,384"),
            ({"chart_options": {"a": ["nul\u0000"]}}, "chart_options", "NUL"),
            ({"filter_config": {"conditions": "x"}}, "filter_config.conditions", "valid list"),
            ({"filter_config": {"match": "some"}}, "filter_config.match", "'all' or 'any'"),
            ({"filter_config": {"x": 1}}, "filter_config.x", "Extra inputs"),
            ({"filter_config": {"conditions": [{"op": "eq"}]}}, "filter_config.conditions.0.field", "required"),
            ({"series": [{}]}, "series.0.value_field", "required"),
            ({"series": [{"value_field": 1, "color": "blurple"}]}, "series.0.color", "CSS color"),
            ({"series": [{"value_field": 1, "color": "#12345"}]}, "series.0.color", "hex color"),
            ({"series": [{"value_field": 1}] * 21}, "series", "at most 20"),
            ({"extra": 1}, "extra", "Extra inputs"),
        ],
    )  # fmt: skip
    async def test_invalid_bodies_are_400_and_create_nothing(
        self, api: Caller, sales: Sales, body: dict[str, Any], field: str, fragment: str
    ) -> None:
        r = await api.client.post(f"/data-items/{sales.id}/widgets/", json=body)
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == field, error
        assert fragment in error["error"], error
        assert await widgets(api, sales.id) == []

    async def test_field_rules_collect_every_problem_and_create_nothing(
        self, api: Caller, sales: Sales
    ) -> None:
        body = {
            "label_field": 999_999,
            "filter_config": {
                "conditions": [
                    {"field": fid(sales, "Revenue"), "op": "contains", "value": "1"},
                    {"field": fid(sales, "Region"), "op": "eq", "value": None},
                ]
            },
            "series": [
                {"value_field": fid(sales, "Revenue")},
                {"value_field": fid(sales, "Region"), "aggregation": "sum"},
                {"value_field": 999_998},
            ],
        }
        r = await api.client.post(f"/data-items/{sales.id}/widgets/", json=body)
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert {d["field"] for d in error["details"]} == {
            "label_field",
            "filter_config.conditions.0",
            "filter_config.conditions.1",
            "series.1.aggregation",
            "series.2.value_field",
        }
        assert "5 problems" in error["error"] and "nothing was changed" in error["error"]
        messages = {d["field"]: d["message"] for d in error["details"]}
        assert "sum does not fit char field" in messages["series.1.aggregation"]
        assert "use count or distinct_count" in messages["series.1.aggregation"]
        assert await widgets(api, sales.id) == []

    async def test_date_grouping_needs_a_date_label_field(self, api: Caller, sales: Sales) -> None:
        for body in (
            {"date_grouping": "month"},
            {"date_grouping": "month", "label_field": fid(sales, "Region")},
        ):
            r = await api.client.post(f"/data-items/{sales.id}/widgets/", json=body)
            error = assert_error(r, 400)
            assert error["details"][0]["field"] == "date_grouping"
            assert "date label" in error["error"]
        assert await widgets(api, sales.id) == []

    @pytest.mark.parametrize(
        "color", ["#0052FF", "#05f", "#0052ff80", "#05F8", "steelblue", "RebeccaPurple", ""]
    )
    async def test_colors(self, api: Caller, sales: Sales, color: str) -> None:
        w = await create_widget(
            api, sales.id, series=[{"value_field": fid(sales, "Revenue"), "color": color}]
        )
        assert w["series"][0]["color"] == color

    async def test_numbers_in_client_json_come_back_exactly(
        self, api: Caller, sales: Sales
    ) -> None:
        raw = (
            '{"chart_options": {"scale": 1234567890123456789.12345678, "tiny": 1e-7, "n": 3},'
            ' "filter_config": {"conditions": [{"field": FIELD, "op": "lt", "value": 0.1}]}}'
        ).replace("FIELD", sales.f["Revenue"])
        r = await api.client.post(
            f"/data-items/{sales.id}/widgets/",
            content=raw.encode(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 201, r.text
        assert '"scale":1234567890123456789.12345678' in r.text
        listed = (await api.client.get(f"/data-items/{sales.id}/widgets/")).text
        assert '"scale":1234567890123456789.12345678' in listed
        assert '"tiny":0.0000001' in listed and '"value":0.1' in listed

    async def test_numbers_past_28_digits_come_back_exactly(
        self, api: Caller, sales: Sales
    ) -> None:
        raw = b'{"chart_options": {"scale": 12345678901234567890.123456789}}'
        r = await api.client.post(
            f"/data-items/{sales.id}/widgets/",
            content=raw,
            headers={"content-type": "application/json"},
        )
        assert '"scale":12345678901234567890.123456789' in r.text

    async def test_a_chart_options_object_of_16_kb_is_accepted(
        self, api: Caller, sales: Sales
    ) -> None:
        options = {"a": "x" * (16_384 - len('{"a":""}'))}
        w = await create_widget(api, sales.id, chart_options=options)
        assert w["chart_options"] == options


class TestOrder:
    async def test_default_is_after_the_last_and_inserting_shifts(
        self, api: Caller, sales: Sales
    ) -> None:
        a = await create_widget(api, sales.id, title="a")
        b = await create_widget(api, sales.id, title="b")
        c = await create_widget(api, sales.id, title="c", widget_order=0)
        d = await create_widget(api, sales.id, title="d", widget_order=99)
        assert (a["widget_order"], b["widget_order"], c["widget_order"], d["widget_order"]) == (
            0, 1, 0, 3,
        )  # fmt: skip
        listed = await widgets(api, sales.id)
        assert [(w["title"], w["widget_order"]) for w in listed] == [
            ("c", 0), ("a", 1), ("b", 2), ("d", 3),
        ]  # fmt: skip

    async def test_move_and_delete_keep_the_order_dense(self, api: Caller, sales: Sales) -> None:
        ids = [(await create_widget(api, sales.id, title=t))["id"] for t in "abcd"]
        r = await api.client.patch(
            f"/data-items/{sales.id}/widgets/{ids[0]}/", json={"widget_order": 2}
        )
        assert r.json()["widget_order"] == 2
        assert [w["title"] for w in await widgets(api, sales.id)] == ["b", "c", "a", "d"]
        r = await api.client.patch(
            f"/data-items/{sales.id}/widgets/{ids[3]}/", json={"widget_order": 0}
        )
        assert [w["title"] for w in await widgets(api, sales.id)] == ["d", "b", "c", "a"]
        r = await api.client.patch(
            f"/data-items/{sales.id}/widgets/{ids[1]}/", json={"widget_order": 50}
        )
        assert r.json()["widget_order"] == 3
        r = await api.client.delete(f"/data-items/{sales.id}/widgets/{ids[2]}/")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        listed = await widgets(api, sales.id)
        assert [(w["title"], w["widget_order"]) for w in listed] == [("d", 0), ("a", 1), ("b", 2)]

    async def test_series_in_a_create_are_ordered_by_series_order(
        self, api: Caller, sales: Sales
    ) -> None:
        rev = fid(sales, "Revenue")
        w = await create_widget(
            api,
            sales.id,
            series=[
                {"value_field": rev, "label": "x", "series_order": 5},
                {"value_field": rev, "label": "y"},
                {"value_field": rev, "label": "z", "series_order": 0},
            ],
        )
        assert [(s["label"], s["series_order"]) for s in w["series"]] == [
            ("z", 0), ("x", 1), ("y", 2),
        ]  # fmt: skip


class TestPatch:
    async def test_changes_only_what_is_sent_and_never_series(
        self, api: Caller, sales: Sales
    ) -> None:
        w = await create_widget(
            api,
            sales.id,
            title="Revenue",
            chart_type="bar",
            label_field=fid(sales, "Close Date"),
            date_grouping="month",
            row_limit=10,
            chart_options={"a": 1},
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        r = await api.client.patch(
            f"/data-items/{sales.id}/widgets/{w['id']}/", json={"title": "Monthly revenue"}
        )
        assert r.status_code == 200, r.text
        after = exact(r)
        changed = {k for k in w if w[k] != after[k]}
        assert changed <= {"title", "updated_at"} and after["title"] == "Monthly revenue"
        r = await api.client.patch(
            f"/data-items/{sales.id}/widgets/{w['id']}/",
            json={"chart_type": "line", "date_grouping": "quarter", "row_limit": None,
                  "chart_options": None, "sort_direction": "asc", "widget_size": "sm",
                  "description": "by quarter"},
        )  # fmt: skip
        after = exact(r)
        assert (after["chart_type"], after["date_grouping"], after["row_limit"]) == (
            "line", "quarter", None,
        )  # fmt: skip
        assert after["chart_options"] is None and after["sort_direction"] == "asc"
        assert after["widget_size"] == "sm" and after["description"] == "by quarter"
        assert after["series"] == w["series"]

    async def test_sending_series_is_refused(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id, series=[{"value_field": fid(sales, "Revenue")}])
        r = await api.client.patch(
            f"/data-items/{sales.id}/widgets/{w['id']}/", json={"title": "x", "series": []}
        )
        assert "series/ endpoints" in assert_error(r, 400)["error"]
        assert (await widgets(api, sales.id)) == [w]

    @pytest.mark.parametrize(
        "body",
        [
            {"title": None},
            {"chart_type": None},
            {"chart_type": "radar"},
            {"label_field": 999_999},
            {"date_grouping": "week"},
            {"label_field": 0},
            {"filter_config": {"conditions": [{"field": 999_999, "op": "is_empty"}]}},
            {"row_limit": 5000},
            {"title": "ok", "widget_order": -3},
        ],
    )
    async def test_invalid_patch_changes_nothing(
        self, api: Caller, sales: Sales, body: dict[str, Any]
    ) -> None:
        w = await create_widget(api, sales.id, title="keep", label_field=fid(sales, "Region"))
        r = await api.client.patch(f"/data-items/{sales.id}/widgets/{w['id']}/", json=body)
        assert_error(r, 400, "VALIDATION_ERROR")
        assert (await widgets(api, sales.id)) == [w]

    async def test_label_and_grouping_are_checked_together(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(
            api, sales.id, label_field=fid(sales, "Close Date"), date_grouping="year"
        )
        url = f"/data-items/{sales.id}/widgets/{w['id']}/"
        assert_error(await api.client.patch(url, json={"label_field": fid(sales, "Region")}), 400)
        r = await api.client.patch(
            url, json={"label_field": fid(sales, "Region"), "date_grouping": ""}
        )
        assert r.status_code == 200 and r.json()["label_field"] == fid(sales, "Region")
        r = await api.client.patch(url, json={"label_field": None})
        assert r.json()["label_field"] is None

    async def test_filter_can_be_replaced_and_cleared(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id)
        url = f"/data-items/{sales.id}/widgets/{w['id']}/"
        config = {
            "match": "all",
            "conditions": [{"field": fid(sales, "Closed"), "op": "eq", "value": True}],
        }
        r = await api.client.patch(url, json={"filter_config": config})
        assert r.json()["filter_config"] == config
        r = await api.client.patch(url, json={"filter_config": None})
        assert r.json()["filter_config"] is None


class TestCascades:
    async def test_field_delete_removes_its_series_and_clears_label_and_filters(
        self, api: Caller, sales: Sales
    ) -> None:
        rev, region, date = fid(sales, "Revenue"), fid(sales, "Region"), fid(sales, "Close Date")
        by_region = await create_widget(
            api, sales.id, label_field=region,
            filter_config={"conditions": [{"field": region, "op": "ne", "value": "x"},
                                          {"field": rev, "op": "gt", "value": 0}]},
            series=[{"value_field": rev, "label": "a"}, {"value_field": region, "aggregation": "count", "label": "b"},
                    {"value_field": rev, "aggregation": "max", "label": "c"}],
        )  # fmt: skip
        monthly = await create_widget(
            api, sales.id, label_field=date, date_grouping="month",
            filter_config={"conditions": [{"field": region, "op": "is_empty"}]},
            series=[{"value_field": region, "aggregation": "count"}],
        )  # fmt: skip
        r = await api.client.delete(f"/data-items/{sales.id}/fields/{region}/")
        assert r.status_code == 200
        after = {w["id"]: w for w in await widgets(api, sales.id)}
        w = after[by_region["id"]]
        assert w["label_field"] is None
        assert [(s["label"], s["series_order"]) for s in w["series"]] == [("a", 0), ("c", 1)]
        assert w["filter_config"] == {
            "match": "all", "conditions": [{"field": rev, "op": "gt", "value": 0}],
        }  # fmt: skip
        m = after[monthly["id"]]
        assert m["series"] == [] and m["filter_config"] is None
        assert m["label_field"] == date and m["date_grouping"] == "month"
        # the widgets still draw
        for wid in after:
            r = await api.client.get(f"/data-items/{sales.id}/widgets/{wid}/data/")
            assert r.status_code == 200, r.text
        r = await api.client.delete(f"/data-items/{sales.id}/fields/{date}/")
        m = {w["id"]: w for w in await widgets(api, sales.id)}[monthly["id"]]
        assert m["label_field"] is None and m["date_grouping"] == ""

    async def test_item_delete_removes_its_widgets_and_series(
        self,
        api: Caller,
        sales: Sales,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        w = await create_widget(api, sales.id, series=[{"value_field": fid(sales, "Revenue")}])
        other = await create_item(api.client, "Other", FIELDS)
        kept = await create_widget(api, other["id"], title="kept")
        assert (await api.client.delete(f"/data-items/{sales.id}/")).status_code == 200
        async with sessionmaker() as session:
            widgets_left = await session.scalar(
                select(func.count()).select_from(Widget).where(Widget.id == w["id"])
            )
            series_left = await session.scalar(
                select(func.count())
                .select_from(WidgetSeries)
                .where(WidgetSeries.widget_id == w["id"])
            )
        assert widgets_left == 0 and series_left == 0
        assert await widgets(api, other["id"]) == [kept]


class TestTenancy:
    async def test_another_account_gets_404_on_every_widget_and_series_path(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        w = await create_widget(api, sales.id, series=[{"value_field": fid(sales, "Revenue")}])
        s = w["series"][0]
        base = f"/data-items/{sales.id}/widgets/"
        one = f"{base}{w['id']}/"
        series = f"{one}series/"
        attempts = [
            intruder.client.get(base),
            intruder.client.post(base, json={"title": "x"}),
            intruder.client.get(one),
            intruder.client.patch(one, json={"title": "stolen"}),
            intruder.client.delete(one),
            intruder.client.get(f"{one}data/"),
            intruder.client.get(series),
            intruder.client.post(series, json={"value_field": fid(sales, "Revenue")}),
            intruder.client.get(f"{series}{s['id']}/"),
            intruder.client.patch(f"{series}{s['id']}/", json={"label": "stolen"}),
            intruder.client.delete(f"{series}{s['id']}/"),
        ]
        for attempt in attempts:
            body = assert_error(await attempt, 404, "NOT_FOUND")
            assert body["error"] == f"Data item {sales.id} not found."
        assert await widgets(api, sales.id) == [w]

    async def test_widgets_of_another_item_are_404_like_missing_ones(
        self, api: Caller, sales: Sales
    ) -> None:
        other = await create_item(api.client, "Other", FIELDS)
        w = await create_widget(
            api, other["id"], series=[{"value_field": other["fields"][1]["id"]}]
        )
        s = w["series"][0]["id"]
        mine = await create_widget(api, sales.id)
        for widget_id, series_id in ((w["id"], None), (987_654, None), (mine["id"], s)):
            url = f"/data-items/{sales.id}/widgets/{widget_id}/"
            if series_id is not None:
                url += f"series/{series_id}/"
            for r in (await api.client.get(url), await api.client.patch(url, json={}),
                      await api.client.delete(url)):  # fmt: skip
                assert_error(r, 404, "NOT_FOUND")
        assert await widgets(api, other["id"]) == [w]

    async def test_foreign_field_ids_are_refused_like_missing_ones(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        theirs = await create_item(intruder.client, "Mine", FIELDS)
        victim = fid(sales, "Revenue")
        missing = 987_654_321

        async def errors(field_id: int) -> list[str]:
            base = f"/data-items/{theirs['id']}/widgets/"
            out = []
            for body in (
                {"label_field": field_id},
                {"series": [{"value_field": field_id, "aggregation": "count"}]},
                {"filter_config": {"conditions": [{"field": field_id, "op": "is_empty"}]}},
            ):
                r = await intruder.client.post(base, json=body)
                out.append(assert_error(r, 400)["error"].replace(str(field_id), "ID"))
            w = await create_widget(intruder, theirs["id"])
            r = await intruder.client.post(
                f"{base}{w['id']}/series/", json={"value_field": field_id}
            )
            out.append(assert_error(r, 400)["error"].replace(str(field_id), "ID"))
            r = await intruder.client.get(
                f"/data-items/{theirs['id']}/rows/", params={"sort": str(field_id)}
            )
            out.append(assert_error(r, 400)["error"].replace(str(field_id), "ID"))
            return out

        assert await errors(victim) == await errors(missing)

    async def test_widget_and_series_ids_are_validated_in_the_path(
        self, api: Caller, sales: Sales
    ) -> None:
        w = await create_widget(api, sales.id)
        for path in ("widgets/abc/", "widgets/0/", f"widgets/{w['id']}/series/abc/"):
            assert_error(await api.client.get(f"/data-items/{sales.id}/{path}"), 400)


async def test_slashless_paths_work(api: Caller, sales: Sales) -> None:
    r = await api.client.post(f"/data-items/{sales.id}/widgets", json={"title": "t"})
    assert r.status_code == 201
    wid = r.json()["id"]
    assert (await api.client.get(f"/data-items/{sales.id}/widgets/{wid}/data")).status_code == 200
    r = await api.client.post(
        f"/data-items/{sales.id}/widgets/{wid}/series", json={"value_field": fid(sales, "Revenue")}
    )
    assert r.status_code == 201


async def test_filter_values_are_stored_as_given(api: Caller, sales: Sales) -> None:
    rev = fid(sales, "Revenue")
    config = {"conditions": [{"field": rev, "op": "eq", "value": "45,200.50"}]}
    w = await create_widget(api, sales.id, filter_config=config)
    assert w["filter_config"]["conditions"] == [{"field": rev, "op": "eq", "value": "45,200.50"}]
    assert w["filter_config"]["match"] == "all"
