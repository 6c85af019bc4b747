"""Widget insights on data whose answers are known: trend and largest change over months, the top
category's share, IQR outliers (quartiles checked against PostgreSQL's percentile_cont), exact
decimals, too little data, chart types, several series, tenancy and bad ids."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item
from tests.widgets.helpers import add_rows, create_widget, exact, fid

pytestmark = pytest.mark.asyncio

D = Decimal

MONTHS = (  # Jan 100, Feb 150, Mar 90 (Jan in two rows; a row without a date on top)
    {"date": "2026-01-03", "revenue": 60, "region": "North"},
    {"date": "2026-01-28", "revenue": 40, "region": "South"},
    {"date": "2026-02-14", "revenue": 150, "region": "North"},
    {"date": "2026-03-01", "revenue": 90, "region": "East"},
    {"revenue": 1000, "region": "West"},
)


async def insights_of(api: Caller, item_id: int, widget_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/widgets/{widget_id}/insights/")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = exact(r)["insights"]
    return found


async def insights(api: Caller, sales: Sales, **widget: Any) -> list[dict[str, Any]]:
    w = await create_widget(api, sales.id, **widget)
    return await insights_of(api, sales.id, w["id"])


def monthly(sales: Sales, aggregation: str = "sum", **more: Any) -> dict[str, Any]:
    return {
        "chart_type": "line",
        "label_field": fid(sales, "Close Date"),
        "date_grouping": "month",
        "series": [{"value_field": fid(sales, "Revenue"), "aggregation": aggregation}],
        **more,
    }


def by_region(sales: Sales, chart_type: str = "bar", **more: Any) -> dict[str, Any]:
    return {
        "chart_type": chart_type,
        "label_field": fid(sales, "Region"),
        "series": [{"value_field": fid(sales, "Revenue"), "aggregation": "sum"}],
        **more,
    }


def without_ids(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "values": {**i["values"], "series_id": None}} for i in found]


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [i["kind"] for i in found]


def of(found: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (one,) = [i for i in found if i["kind"] == kind]
    return one


class TestOverTime:
    async def test_trend_and_largest_change_over_known_months(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(api, sales, *MONTHS)
        found = await insights(api, sales, **monthly(sales))
        assert kinds(found) == ["trend", "largest_change"]  # 3 buckets: no outliers
        trend, change = found
        series_id = trend["values"]["series_id"]
        assert trend["values"] == {
            "series_id": series_id,
            "series": "Sum of Revenue",
            "buckets": 3,  # the "(empty)" bucket (no date) is not a period
            "first_label": "2026-01",
            "first": 100,
            "last_label": "2026-03",
            "last": 90,
            "change": -10,
            "change_pct": D("-10.0"),
        }
        assert trend["text"] == "Sum of Revenue fell 10.0% from 100 (2026-01) to 90 (2026-03)."
        assert change["values"] == {
            "series_id": series_id,
            "series": "Sum of Revenue",
            "previous_label": "2026-02",
            "previous_value": 150,
            "label": "2026-03",
            "value": 90,
            "change": -60,
            "change_pct": D("-40.0"),
        }
        assert change["text"] == (
            "The largest change in Sum of Revenue was from 2026-02 to 2026-03: "
            "down 60 (40.0%), from 150 to 90."
        )

    async def test_time_order_whatever_the_charts_sort(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *MONTHS)
        plain = await insights(api, sales, **monthly(sales))
        for direction in ("asc", "desc"):
            sorted_ = await insights(api, sales, **monthly(sales, sort_direction=direction))
            assert without_ids(sorted_) == without_ids(plain)

    async def test_change_pct_is_null_from_zero(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api, sales, {"date": "2026-01-05", "revenue": 0}, {"date": "2026-02-05", "revenue": 5}
        )
        found = await insights(api, sales, **monthly(sales))
        assert kinds(found) == ["trend"]  # 2 buckets: the largest change would be the trend
        assert found[0]["values"]["change_pct"] is None
        assert found[0]["text"] == "Sum of Revenue went from 0 (2026-01) to 5 (2026-02)."

    async def test_a_rise_from_a_negative_start_is_relative_to_its_size(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api,
            sales,
            {"date": "2026-01-05", "revenue": -200},
            {"date": "2026-02-05", "revenue": -50},
            {"date": "2026-03-05", "revenue": "-49.5"},
        )
        trend, change = await insights(api, sales, **monthly(sales))
        assert trend["values"]["change"] == D("150.5")
        assert trend["values"]["change_pct"] == D("75.3")  # 150.5 / 200 = 75.25%: half up
        assert trend["text"].startswith("Sum of Revenue rose 75.3% from -200 (2026-01)")
        assert change["values"]["change"] == 150 and change["values"]["change_pct"] == 75

    async def test_largest_change_tie_goes_to_the_earliest(self, api: Caller, sales: Sales) -> None:
        for month, revenue in (("01", 10), ("02", 20), ("03", 10), ("04", 20)):
            await add_rows(api, sales, {"date": f"2026-{month}-09", "revenue": revenue})
        found = await insights(api, sales, **monthly(sales))
        step = of(found, "largest_change")["values"]
        assert (step["previous_label"], step["label"], step["change"]) == ("2026-01", "2026-02", 10)
        assert (
            of(found, "trend")["text"]
            == "Sum of Revenue rose 100.0% from 10 (2026-01) to 20 (2026-04)."
        )


class TestTopShare:
    async def test_exactly_half(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            {"region": "North", "revenue": 100},
            {"region": "North", "revenue": 50},
            {"region": "South", "revenue": 100},
            {"region": "East", "revenue": 50},
        )
        found = await insights(api, sales, **by_region(sales, "pie"))
        assert kinds(found) == ["top_share"]  # 3 groups: too few for outliers
        (share,) = found
        assert share["values"] == {
            "series_id": share["values"]["series_id"],
            "series": "Sum of Revenue",
            "label": "North",
            "value": 150,
            "total": 300,
            "share_pct": D("50.0"),
            "groups": 3,
        }
        assert share["text"] == (
            "North is the largest group of Sum of Revenue: 50.0% of the total (150 of 300)."
        )

    async def test_a_tie_goes_to_the_first_group_in_the_chart(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api, sales, {"region": "B", "revenue": 1}, {"region": "A", "revenue": 1},
            {"region": "C", "revenue": 1},
        )  # fmt: skip
        (share,) = await insights(api, sales, **by_region(sales))
        assert (share["values"]["label"], share["values"]["share_pct"]) == ("A", D("33.3"))
        (share,) = await insights(api, sales, **by_region(sales, sort_direction="desc"))
        assert share["values"]["label"] == "A"  # by value, ties by label: A first

    async def test_no_share_with_negative_values_or_no_total(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api, sales, {"region": "North", "revenue": 10}, {"region": "South", "revenue": -4}
        )
        assert await insights(api, sales, **by_region(sales)) == []
        zero = await create_item_with_rows(api, sales, [("North", 0), ("South", 0)])
        assert await insights(api, sales, **by_region(sales, filter_config=zero)) == []

    async def test_count_per_category(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api, sales, {"region": "North"}, {"region": "North"}, {"region": "North"},
            {"region": "South"},
        )  # fmt: skip
        (share,) = await insights(
            api,
            sales,
            label_field=fid(sales, "Region"),
            series=[{"value_field": fid(sales, "Region"), "aggregation": "count"}],
        )
        assert share["values"]["share_pct"] == 75 and share["values"]["total"] == 4


async def create_item_with_rows(
    api: Caller, sales: Sales, rows: list[tuple[str, int]]
) -> dict[str, Any]:
    """Rows tagged in Notes, and the filter that keeps only them."""
    await add_rows(api, sales, *({"region": r, "revenue": v, "notes": "zero"} for r, v in rows))
    return {"conditions": [{"field": fid(sales, "Notes"), "op": "eq", "value": "zero"}]}


class TestOutliers:
    async def test_one_high_value(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            *(
                {"region": r, "revenue": v}
                for r, v in zip("ABCDE", (10, 11, 12, 13, 100), strict=True)
            ),
        )
        found = await insights(api, sales, **by_region(sales))
        assert kinds(found) == ["top_share", "outliers"]
        assert of(found, "top_share")["values"]["share_pct"] == D("68.5")  # 100 / 146
        outliers = of(found, "outliers")
        assert outliers["values"] == {
            "series_id": outliers["values"]["series_id"],
            "series": "Sum of Revenue",
            "outliers": [{"label": "E", "value": 100}],
            "q1": 11,
            "q3": 13,
            "iqr": 2,
            "lower_bound": 8,
            "upper_bound": 16,
            "count": 5,
        }
        assert outliers["text"] == (
            "1 outlier in Sum of Revenue: E (100), outside the usual range 8 to 16."
        )

    async def test_interpolated_quartiles_are_exact(self, api: Caller, sales: Sales) -> None:
        values = (1, 2, 3, 4, 5, 6, 7, 8, 9, 50, -30)
        await add_rows(
            api, sales, *({"region": f"r{i:02}", "revenue": v} for i, v in enumerate(values))
        )
        found = await insights(api, sales, **by_region(sales))
        assert kinds(found) == ["outliers"]  # a negative value: no share
        v = found[0]["values"]
        # 11 values: Q1 at position 3.5 (2 and 3), Q3 at 8.5 (7 and 8)
        assert (v["q1"], v["q3"], v["iqr"]) == (D("2.5"), D("7.5"), 5)
        assert (v["lower_bound"], v["upper_bound"]) == (-5, 15)
        assert v["outliers"] == [{"label": "r09", "value": 50}, {"label": "r10", "value": -30}]
        assert "2 outliers in Sum of Revenue: r09 (50), r10 (-30)," in found[0]["text"]

    async def test_quartiles_match_percentile_cont(
        self, api: Caller, sales: Sales, app: FastAPI
    ) -> None:
        values = (3, 7, 8, 5, 12, 14, 21, 13, 18, 1000)  # float-exact, so percentile_cont agrees
        await add_rows(
            api, sales, *({"region": f"r{i}", "revenue": v} for i, v in enumerate(values))
        )
        found = of(await insights(api, sales, **by_region(sales)), "outliers")
        async with app.state.sessionmaker() as session:
            q1, q3 = (
                await session.execute(
                    text(
                        "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY v),"
                        " percentile_cont(0.75) WITHIN GROUP (ORDER BY v)"
                        " FROM unnest(CAST(:v AS float8[])) AS v"
                    ),
                    {"v": [float(v) for v in values]},
                )
            ).one()
        assert (found["values"]["q1"], found["values"]["q3"]) == (D(str(q1)), D(str(q3)))
        assert found["values"]["outliers"] == [{"label": "r9", "value": 1000}]

    async def test_none_without_an_outlier_or_with_too_few_values(
        self, api: Caller, sales: Sales
    ) -> None:
        await add_rows(
            api,
            sales,
            *({"region": r, "revenue": v} for r, v in zip("ABCD", (1, 2, 3, 4), strict=True)),
        )
        assert kinds(await insights(api, sales, **by_region(sales))) == ["top_share"]
        await add_rows(api, sales, {"region": "A", "revenue": 1000})  # A: 1001 of 4 groups
        found = await insights(api, sales, **by_region(sales))
        assert of(found, "outliers")["values"]["outliers"] == [{"label": "A", "value": 1001}]
        three = {"conditions": [
            {"field": fid(sales, "Region"), "op": "in", "value": ["A", "B", "C"]}
        ]}  # fmt: skip
        assert kinds(await insights(api, sales, **by_region(sales, filter_config=three))) == [
            "top_share"
        ]


class TestExactDecimals:
    async def test_point_one_plus_point_two(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            {"date": "2026-01-05", "revenue": "0.1"},
            {"date": "2026-01-06", "revenue": 0.2},
            {"date": "2026-02-05", "revenue": "0.6"},
        )
        (trend,) = await insights(api, sales, **monthly(sales))
        v = trend["values"]
        assert (v["first"], v["last"], v["change"], v["change_pct"]) == (
            D("0.3"), D("0.6"), D("0.3"), 100,
        )  # fmt: skip
        assert trend["text"] == "Sum of Revenue rose 100.0% from 0.3 (2026-01) to 0.6 (2026-02)."

    async def test_the_values_are_the_data_endpoints_own(self, api: Caller, sales: Sales) -> None:
        """avg is rounded as the chart shows it (2 places here), and insights start from that."""
        await add_rows(
            api,
            sales,
            {"date": "2026-01-05", "revenue": 1},
            {"date": "2026-01-06", "revenue": 1},
            {"date": "2026-01-07", "revenue": 0},
            {"date": "2026-02-05", "revenue": 1},
            {"date": "2026-03-05", "revenue": "123456789012345678901234.5"},
        )
        w = await create_widget(api, sales.id, **monthly(sales, "avg"))
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/data/")
        assert exact(r)["datasets"][0]["data"] == [
            D("0.67"),
            D("1.00"),
            D("123456789012345678901234.50"),
        ]
        trend, change = await insights_of(api, sales.id, w["id"])
        assert (trend["values"]["first"], trend["values"]["last"]) == (
            D("0.67"), D("123456789012345678901234.5"),
        )  # fmt: skip
        # (x - 0.67) / 0.67 exactly, to 1 place: no float could carry these digits
        assert trend["values"]["change"] == D("123456789012345678901233.83")
        assert trend["values"]["change_pct"] == D("18426386419753086403169228.4")
        assert change["values"]["change"] == D("123456789012345678901233.5")  # Feb -> Mar
        assert trend["text"] == (
            "Average of Revenue rose 18426386419753086403169228.4% from 0.67 (2026-01) to "
            "123456789012345678901234.5 (2026-03)."
        )

    async def test_text_rounds_values_keep_every_digit(self, api: Caller, sales: Sales) -> None:
        await add_rows(
            api,
            sales,
            {"date": "2026-01-05", "revenue": "1.005"},
            {"date": "2026-02-05", "revenue": "2.12345"},
        )
        (trend,) = await insights(api, sales, **monthly(sales))
        assert (trend["values"]["first"], trend["values"]["last"]) == (D("1.005"), D("2.12345"))
        assert trend["values"]["change_pct"] == D("111.3")  # 111.288...%
        assert trend["text"] == "Sum of Revenue rose 111.3% from 1.01 (2026-01) to 2.12 (2026-02)."


class TestWhichInsights:
    async def test_too_little_data(self, api: Caller, sales: Sales) -> None:
        assert await insights(api, sales, **monthly(sales)) == []  # no rows at all
        await add_rows(api, sales, {"date": "2026-01-05", "revenue": 5}, {"revenue": 7})
        assert await insights(api, sales, **monthly(sales)) == []  # one month (and "(empty)")
        await add_rows(api, sales, {"date": "2026-02-05"})  # a month without any revenue
        assert await insights(api, sales, **monthly(sales)) == []  # its sum is null: left out
        await add_rows(api, sales, {"region": "North", "revenue": 1})
        only_north = {"conditions": [{"field": fid(sales, "Region"), "op": "not_empty"}]}
        assert await insights(api, sales, **by_region(sales, filter_config=only_north)) == []
        # "(empty)" (rows without a region) is a slice of the chart like any other
        (share,) = await insights(api, sales, **by_region(sales))
        assert share["values"] == {**share["values"], "label": "(empty)", "value": 12, "total": 13}

    @pytest.mark.parametrize("chart_type", ["bar", "line", "area", "pie", "doughnut"])
    async def test_chart_types_share_the_rules(
        self, api: Caller, sales: Sales, chart_type: str
    ) -> None:
        await add_rows(api, sales, *MONTHS)
        over_time = await insights(api, sales, **monthly(sales, chart_type=chart_type))
        assert kinds(over_time) == ["trend", "largest_change"]
        categories = await insights(api, sales, **by_region(sales, chart_type))
        assert kinds(categories) == ["top_share", "outliers"]  # 40, 90, 210 and 1000
        assert categories[0]["values"]["label"] == "West"
        assert categories[0]["values"]["share_pct"] == D("74.6")  # 1000 of 1340
        fences = categories[1]["values"]
        assert (fences["q1"], fences["q3"], fences["upper_bound"]) == (
            D("77.5"), D("407.5"), D("902.5"),
        )  # fmt: skip

    async def test_number_and_scatter_have_none(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *MONTHS)
        assert await insights(api, sales, **monthly(sales, chart_type="number")) == []
        assert await insights(api, sales, **monthly(sales, chart_type="scatter")) == []

    async def test_decimal_labels_get_outliers_only(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *({"revenue": v} for v in (1, 2, 3, 4, 50)))
        found = await insights(
            api,
            sales,
            label_field=fid(sales, "Revenue"),
            series=[{"value_field": fid(sales, "Revenue"), "aggregation": "sum"}],
        )
        assert kinds(found) == ["outliers"]
        assert found[0]["values"]["outliers"] == [{"label": "50", "value": 50}]

    async def test_every_numeric_series_its_own_insights(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *MONTHS)
        date = fid(sales, "Close Date")
        w = await create_widget(
            api,
            sales.id,
            **monthly(sales),
        )
        for body in (
            {"value_field": fid(sales, "Revenue"), "aggregation": "count"},
            {"value_field": date, "aggregation": "max"},  # dates: no insights
        ):
            r = await api.client.post(
                f"/data-items/{sales.id}/widgets/{w['id']}/series/", json=body
            )
            assert r.status_code == 201, r.text
        found = await insights_of(api, sales.id, w["id"])
        assert [(i["kind"], i["values"]["series"]) for i in found] == [
            ("trend", "Sum of Revenue"),
            ("largest_change", "Sum of Revenue"),
            ("trend", "Count of Revenue"),
            ("largest_change", "Count of Revenue"),
        ]
        count = found[2]["values"]
        assert (count["first"], count["last"], count["change_pct"]) == (2, 1, D("-50.0"))
        assert found[0]["values"]["series_id"] != count["series_id"]

    async def test_deterministic(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *MONTHS)
        w = await create_widget(api, sales.id, **by_region(sales))
        r1 = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/insights/")
        r2 = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/insights")
        assert r1.status_code == r2.status_code == 200 and r1.content == r2.content

    async def test_a_widget_that_cannot_be_drawn_is_a_400(self, api: Caller, sales: Sales) -> None:
        await add_rows(api, sales, *MONTHS)
        date = fid(sales, "Close Date")
        w = await create_widget(api, sales.id, **monthly(sales))
        r = await api.client.patch(
            f"/data-items/{sales.id}/fields/{date}/", json={"field_type": "char"}
        )
        assert r.status_code == 200, r.text
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/insights/")
        assert "date_grouping month needs a date label field" in assert_error(r, 400)["error"]


class TestAccess:
    async def test_another_accounts_widget_is_404(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        await add_rows(api, sales, *MONTHS)
        w = await create_widget(api, sales.id, **monthly(sales))
        r = await intruder.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/insights/")
        body = assert_error(r, 404, "NOT_FOUND")
        assert body["error"] == f"Data item {sales.id} not found."
        assert "Sum of Revenue" not in r.text
        # the widget under the intruder's own item: still a 404, like a missing widget
        mine = (await create_item(intruder.client, "Mine"))["id"]
        r = await intruder.client.get(f"/data-items/{mine}/widgets/{w['id']}/insights/")
        assert_error(r, 404, "NOT_FOUND")
        assert len(await insights_of(api, sales.id, w["id"])) == 2

    @pytest.mark.parametrize(
        ("item", "widget"),
        [
            ("1", "abc"),
            ("1", "0"),
            ("1", "-3"),
            ("1", str(2**63)),
            ("1", "1.5"),
            ("x", "1"),
            ("0", "1"),
            (str(2**64), "1"),
        ],
    )
    async def test_bad_ids_are_400_never_500(
        self, api: Caller, sales: Sales, item: str, widget: str
    ) -> None:
        item_id = sales.id if item == "1" else item
        r = await api.client.get(f"/data-items/{item_id}/widgets/{widget}/insights/")
        assert_error(r, 400, "VALIDATION_ERROR")

    async def test_missing_widget_is_404(self, api: Caller, sales: Sales) -> None:
        r = await api.client.get(f"/data-items/{sales.id}/widgets/987654/insights/")
        assert_error(r, 404, "NOT_FOUND")
