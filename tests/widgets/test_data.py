"""The widget data endpoint: exact aggregations, date buckets across a year boundary, ordering,
row_limit, filters, number and scatter widgets, empty items and groups, and widgets whose fields
changed type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error
from tests.widgets.helpers import add_rows, create_widget, exact, fid, widget_data

pytestmark = pytest.mark.asyncio

D = Decimal

GROUPING_DATES = (
    "2026-09-30",
    "2026-10-01",
    "2026-12-28",
    "2026-12-31T23:59:59",
    "2027-01-01",
    "2027-01-03",
    "2027-01-04T08:00:00",
    "2027-01-04",
)
ORDER_ROWS = (("North", 5), ("South", 20), ("East", 1), ("West", 20), ("Central", 7))
FILTER_ROWS: tuple[dict[str, Any], ...] = (
    {"region": "North", "revenue": 10, "date": "2026-01-15", "closed": True},
    {"region": "north", "revenue": 9, "date": "2026-02-01"},
    {"region": "South", "revenue": "100.5", "date": "2025-12-31", "closed": False},
    {"revenue": -2},
)


def only(result: dict[str, Any]) -> list[Any]:
    """The data of the only dataset."""
    (dataset,) = result["datasets"]
    data: list[Any] = dataset["data"]
    return data


class TestAggregations:
    @pytest.mark.parametrize(
        ("aggregation", "north", "south"),
        [
            ("sum", D("0.8"), D("1000000000000000003.015")),  # 0.1 + 0.2 + 0.3 + 0.2, exactly
            ("avg", D("0.2"), D("333333333333333334.338")),  # 3 places: the values carry 3
            ("min", D("0.1"), D("1.005")),
            ("max", D("0.3"), D("1000000000000000000.01")),
            ("count", 4, 3),
            ("distinct_count", 3, 3),
        ],
    )
    async def test_each_aggregation_is_exact(
        self, api: Caller, sales: Sales, aggregation: str, north: Any, south: Any
    ) -> None:
        await add_rows(
            api,
            sales,
            {"region": "North", "revenue": "0.1"},
            {"region": "North", "revenue": 0.2},
            {"region": "North", "revenue": "0.30"},
            {"region": "North", "revenue": "0.2"},
            {"region": "North"},  # no revenue: not counted, not averaged
            {"region": "South", "revenue": "1000000000000000000.01"},
            {"region": "South", "revenue": "1.005"},
            {"region": "South", "revenue": 2},
        )
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": aggregation}],
        )
        assert result["labels"] == ["North", "South"]
        assert only(result) == [north, south]
        assert all(type(v) is type(north) for v in only(result))

    async def test_avg_rounds_half_up_to_two_places_like_the_summary(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api,
            sales,
            *({"region": "A", "revenue": v} for v in ("1", "2", "2")),  # 1.6666…
            *({"region": "B", "revenue": v} for v in ("0.01", "0.02")),  # 0.015 -> 0.02
            *({"region": "C", "revenue": v} for v in ("-0.01", "-0.02")),  # away from zero
        )
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": "avg"}],
        )
        assert only(result) == [D("1.67"), D("0.02"), D("-0.02")]
        summary = exact(await api.client.get(f"/data-items/{sales.id}/summary/"))
        revenue = next(s for s in summary["field_summaries"] if s["field_label"] == "Revenue")
        number = await widget_data(
            api,
            sales.id,
            chart_type="number",
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": "avg"}],
        )
        assert only(number) == [revenue["avg"]]

    async def test_min_and_max_of_dates_are_chronological(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            {"region": "A", "date": "2026-03-05T10:00:00"},
            {"region": "A", "date": "2026-03-05"},
            {"region": "A", "date": "2025-12-31T23:59:59.5"},
        )
        date = fid(sales, "Close Date")
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[
                {"value_field": date, "aggregation": "min"},
                {"value_field": date, "aggregation": "max"},
            ],
        )
        assert [d["data"] for d in result["datasets"]] == [
            ["2025-12-31T23:59:59.5"],
            ["2026-03-05T10:00:00"],
        ]

    async def test_sums_past_28_digits_stay_exact(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            {"region": "A", "revenue": "12345678901234567890.123456789"},
            {"region": "A", "revenue": "1"},
        )
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        assert only(result) == [D("12345678901234567891.123456789")]


class TestGrouping:
    @pytest.mark.parametrize(
        ("grouping", "labels", "counts"),
        [
            (
                "day",
                ["2026-09-30", "2026-10-01", "2026-12-28", "2026-12-31", "2027-01-01",
                 "2027-01-03", "2027-01-04", "(empty)"],
                [1, 1, 1, 1, 1, 1, 2, 1],
            ),
            ("week", ["2026-W40", "2026-W53", "2027-W01", "(empty)"], [2, 4, 2, 1]),
            ("month", ["2026-09", "2026-10", "2026-12", "2027-01", "(empty)"], [1, 1, 2, 4, 1]),
            ("quarter", ["2026-Q3", "2026-Q4", "2027-Q1", "(empty)"], [1, 3, 4, 1]),
            ("year", ["2026", "2027", "(empty)"], [4, 4, 1]),
        ],
    )  # fmt: skip
    async def test_each_date_grouping_across_a_year_boundary(
        self, api: Caller, sales: Sales, grouping: str, labels: list[str], counts: list[int]
    ) -> None:
        await add_rows(
            api,
            sales,
            *({"date": d, "region": "x"} for d in GROUPING_DATES),
            {"region": "no date"},
        )
        result = await widget_data(
            api,
            sales.id,
            chart_type="line",
            label_field=fid(sales, "Close Date"),
            date_grouping=grouping,
            series=[{"value_field": fid(sales, "Region"), "aggregation": "count"}],
        )
        assert result["labels"] == labels
        assert only(result) == counts
        assert result["chart_type"] == "line" and result["truncated"] is False

    async def test_labels_of_each_type_sort_their_way(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            *({"revenue": v, "closed": c} for v, c in (("10", True), ("9", False), ("-1.5", None))),
            {"revenue": "10", "closed": True},
            {"region": "only"},
        )
        count = [{"value_field": fid(sales, "Region"), "aggregation": "count"}]
        by_revenue = await widget_data(
            api, sales.id, label_field=fid(sales, "Revenue"), series=count
        )
        assert by_revenue["labels"] == ["-1.5", "9", "10", "(empty)"]
        assert only(by_revenue) == [0, 0, 0, 1]
        by_closed = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Closed"),
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": "count"}],
        )
        assert by_closed["labels"] == ["false", "true", "(empty)"]
        assert only(by_closed) == [1, 2, 1]

    async def test_text_labels_by_code_point_with_empty_last(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api,
            sales,
            *({"region": r, "revenue": 1} for r in ("b", "B", "a", "Ä", "A")),
            {"revenue": 5},
        )
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        assert result["labels"] == ["A", "B", "a", "b", "Ä", "(empty)"]
        assert only(result) == [1, 1, 1, 1, 1, 5]

    async def test_without_a_label_field_one_group(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, {"revenue": 1}, {"revenue": "2.5"})
        result = await widget_data(
            api, sales.id, chart_type="pie", series=[{"value_field": fid(sales, "Revenue")}]
        )
        assert result["labels"] == ["All"] and only(result) == [D("3.5")]


class TestOrderAndLimit:
    async def _data(self, api: Caller, sales: Sales, **body: Any) -> dict[str, Any]:
        await add_rows(api, sales, *({"region": r, "revenue": v} for r, v in ORDER_ROWS))
        return await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[
                {"value_field": fid(sales, "Revenue"), "aggregation": "sum"},
                {"value_field": fid(sales, "Region"), "aggregation": "count"},
            ],
            **body,
        )

    @pytest.mark.parametrize(
        ("direction", "labels", "sums"),
        [
            ("", ["Central", "East", "North", "South", "West"], [7, 1, 5, 20, 20]),
            ("asc", ["East", "North", "Central", "South", "West"], [1, 5, 7, 20, 20]),
            ("desc", ["South", "West", "Central", "North", "East"], [20, 20, 7, 5, 1]),
        ],
    )
    async def test_sort_by_label_or_first_series_both_ways(
        self, api: Caller, sales: Sales, direction: str, labels: list[str], sums: list[int]
    ) -> None:
        result = await self._data(api, sales, sort_direction=direction)
        assert result["labels"] == labels
        assert [d["data"] for d in result["datasets"]] == [sums, [1] * 5]  # ties: by label

    async def test_row_limit_keeps_the_first_groups_and_says_so(
        self, api: Caller, sales: Sales
    ) -> None:
        result = await self._data(api, sales, sort_direction="desc", row_limit=2)
        assert result["labels"] == ["South", "West"] and result["truncated"] is True
        assert result["datasets"][0]["data"] == [20, 20]
        exact_fit = await create_widget(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            row_limit=5,
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{exact_fit['id']}/data/")
        assert r.json()["truncated"] is False and len(r.json()["labels"]) == 5

    async def test_at_most_1000_groups_without_a_limit(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *({"revenue": i} for i in range(1005)))
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Revenue"),
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": "count"}],
        )
        assert len(result["labels"]) == 1000 and result["truncated"] is True
        assert result["labels"][:3] == ["0", "1", "2"]

    async def test_datasets_name_and_color_series(self, api: Caller, sales: Sales) -> None:
        result = await self._data(api, sales)
        assert [(d["label"], d["color"]) for d in result["datasets"]] == [
            ("Sum of Revenue", "#4E79A7"),
            ("Count of Region", "#F28E2B"),
        ]
        w = await create_widget(
            api,
            sales.id,
            series=[
                {"value_field": fid(sales, "Revenue"), "label": "Total", "color": "#0052FF"},
                {"value_field": fid(sales, "Revenue"), "aggregation": "avg"},
            ],
        )
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/data/")
        datasets = r.json()["datasets"]
        assert [(d["series_id"], d["label"], d["color"]) for d in datasets] == [
            (w["series"][0]["id"], "Total", "#0052FF"),
            (w["series"][1]["id"], "Average of Revenue", "#F28E2B"),
        ]


class TestFilters:
    @pytest.mark.parametrize(
        ("label", "op", "value", "expected"),
        [
            ("Revenue", "eq", "10.0", 10),
            ("Revenue", "ne", 10, D("107.5")),  # empty cells count as "not 10" too
            ("Revenue", "gt", 9, D("110.5")),
            ("Revenue", "gte", 9, D("119.5")),
            ("Revenue", "lt", 9, -2),
            ("Revenue", "lte", 9, 7),
            ("Region", "contains", "NORTH", 19),
            ("Region", "in", ["South", "North"], D("110.5")),
            ("Region", "is_empty", None, -2),
            ("Closed", "not_empty", None, D("110.5")),
            ("Close Date", "lt", "2026-01-01", D("100.5")),
            ("Close Date", "gte", "2026-01-15", 19),
        ],
    )
    async def test_each_filter_op(
        self, api: Caller, sales: Sales, label: str, op: str, value: Any, expected: Any
    ) -> None:
        await add_rows(api, sales, *FILTER_ROWS)
        condition: dict[str, Any] = {"field": fid(sales, label), "op": op}
        if value is not None:
            condition["value"] = value
        result = await widget_data(
            api,
            sales.id,
            chart_type="number",
            filter_config={"conditions": [condition]},
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        assert only(result) == [expected]

    async def test_match_any_and_grouped_data(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *FILTER_ROWS)
        result = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            filter_config={
                "match": "any",
                "conditions": [
                    {"field": fid(sales, "Closed"), "op": "eq", "value": True},
                    {"field": fid(sales, "Revenue"), "op": "lt", "value": 0},
                ],
            },
            series=[{"value_field": fid(sales, "Revenue")}],
        )
        assert result["labels"] == ["North", "(empty)"] and only(result) == [10, -2]


class TestEmpty:
    async def test_an_empty_item(self, api: Caller, sales: Sales) -> None:
        series = [
            {"value_field": fid(sales, "Revenue"), "aggregation": a}
            for a in ("count", "sum", "avg", "min", "max", "distinct_count")
        ]
        grouped = await widget_data(api, sales.id, label_field=fid(sales, "Region"), series=series)
        assert grouped["labels"] == [] and [d["data"] for d in grouped["datasets"]] == [[]] * 6
        unlabelled = await widget_data(api, sales.id, series=series)
        assert unlabelled["labels"] == []
        number = await widget_data(api, sales.id, chart_type="number", series=series)
        assert [d["data"] for d in number["datasets"]] == [[0], [None], [None], [None], [None], [0]]
        scatter = await widget_data(
            api, sales.id, chart_type="scatter", label_field=fid(sales, "Close Date"), series=series
        )
        assert [d["data"] for d in scatter["datasets"]] == [[]] * 6
        assert (await widget_data(api, sales.id))["datasets"] == []

    async def test_empty_groups_and_a_filter_that_matches_nothing(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(api, sales, {"region": "A", "revenue": 1}, {"region": "B"})
        series = [
            {"value_field": fid(sales, "Revenue"), "aggregation": a}
            for a in ("sum", "count", "avg", "max", "distinct_count")
        ]
        result = await widget_data(api, sales.id, label_field=fid(sales, "Region"), series=series)
        assert result["labels"] == ["A", "B"]
        assert [d["data"] for d in result["datasets"]] == [
            [1, None], [1, 0], [D("1"), None], [1, None], [1, 0],
        ]  # fmt: skip
        nothing = await widget_data(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            filter_config={
                "conditions": [{"field": fid(sales, "Revenue"), "op": "gt", "value": 5}]
            },
            series=series,
        )
        assert nothing["labels"] == [] and nothing["truncated"] is False


class TestNumberAndScatter:
    async def test_number_gives_one_value_per_series(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api, sales, {"revenue": "1.1", "region": "a"}, {"revenue": "2.2", "region": "a"}
        )
        result = await widget_data(
            api,
            sales.id,
            chart_type="number",
            label_field=fid(sales, "Region"),  # ignored
            series=[
                {"value_field": fid(sales, "Revenue")},
                {"value_field": fid(sales, "Region"), "aggregation": "distinct_count"},
            ],
        )
        assert result["labels"] == []
        assert [d["data"] for d in result["datasets"]] == [[D("3.3")], [1]]

    async def test_scatter_gives_points_of_rows_with_both_values(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api,
            sales,
            {"date": "2026-01-02", "revenue": "10.50"},
            {"date": "2026-01-01"},
            {"revenue": 3},
            {"date": "2026-01-03", "revenue": -1},
            {"date": "2026-01-04", "revenue": 7},
        )
        body = {
            "chart_type": "scatter",
            "label_field": fid(sales, "Close Date"),
            "sort_direction": "desc",  # does not apply
            "series": [{"value_field": fid(sales, "Revenue"), "aggregation": "avg"}],
        }
        result = await widget_data(api, sales.id, **body)
        assert only(result) == [
            {"x": "2026-01-02", "y": D("10.5")},
            {"x": "2026-01-03", "y": -1},
            {"x": "2026-01-04", "y": 7},
        ]
        assert result["truncated"] is False and result["labels"] == []
        limited = await widget_data(api, sales.id, **body, row_limit=2)
        assert len(only(limited)) == 2 and limited["truncated"] is True

    async def test_scatter_without_a_label_field_is_a_400(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id, chart_type="scatter")
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/data/")
        assert "scatter widget needs label_field" in assert_error(r, 400)["error"]


class TestFieldChanges:
    async def test_a_type_change_keeps_what_fits_and_names_what_does_not(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(api, sales, {"region": "A", "revenue": 9}, {"region": "B", "revenue": 10})
        rev = fid(sales, "Revenue")
        counting = await create_widget(
            api,
            sales.id,
            label_field=fid(sales, "Region"),
            series=[{"value_field": rev, "aggregation": "count"}],
        )
        summing = await create_widget(
            api, sales.id, label_field=fid(sales, "Region"), series=[{"value_field": rev}]
        )
        filtered = await create_widget(
            api,
            sales.id,
            filter_config={"conditions": [{"field": rev, "op": "gt", "value": 9}]},
            series=[{"value_field": rev, "aggregation": "count"}],
        )
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{rev}/", json={"field_type": "char"}
        )
        assert r.status_code == 200, r.text
        base = f"/data-items/{sales.id}/widgets/"
        r = await api.client.get(f"{base}{counting['id']}/data/")
        assert r.status_code == 200 and r.json()["datasets"][0]["data"] == [1, 1]
        r = await api.client.get(f"{base}{summing['id']}/data/")
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert f"Widget {summing['id']} cannot be drawn" in error["error"]
        assert "sum does not fit char field" in error["error"]
        assert error["details"][0]["series_id"] == summing["series"][0]["id"]
        r = await api.client.get(f"{base}{filtered['id']}/data/")
        assert "op gt is not valid for char field" in assert_error(r, 400)["error"]
        # and back: everything fits again
        await api.client.patch(
            f"/data-items/{sales.id}/fields/{rev}/", json={"field_type": "decimal"}
        )
        r = await api.client.get(f"{base}{summing['id']}/data/")
        assert r.status_code == 200 and r.json()["datasets"][0]["data"] == [9, 10]
        r = await api.client.get(f"{base}{filtered['id']}/data/")
        assert r.json()["datasets"][0]["data"] == [1]

    async def test_date_grouping_over_a_label_that_is_no_longer_a_date(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(api, sales, {"date": "2026-03-05"})
        date = fid(sales, "Close Date")
        w = await create_widget(
            api,
            sales.id,
            label_field=date,
            date_grouping="month",
            series=[{"value_field": date, "aggregation": "count"}],
        )
        await api.client.patch(
            f"/data-items/{sales.id}/fields/{date}/", json={"field_type": "char"}
        )
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/data/")
        assert "date_grouping month needs a date label field" in assert_error(r, 400)["error"]
