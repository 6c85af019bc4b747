"""Widget series over HTTP: defaults, ordering, aggregations that fit their field, PATCH, caps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error
from tests.widgets.helpers import create_widget, fid

pytestmark = pytest.mark.asyncio


async def series_of(api: Caller, sales: Sales, widget_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{sales.id}/widgets/{widget_id}/series/")
    assert r.status_code == 200, r.text
    listed: list[dict[str, Any]] = r.json()["series"]
    return listed


async def add(api: Caller, sales: Sales, widget_id: int, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"/data-items/{sales.id}/widgets/{widget_id}/series/", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


class TestCreate:
    async def test_defaults_and_shape(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id)
        s = await add(api, sales, w["id"], value_field=fid(sales, "Revenue"))
        assert set(s) == {"id", "value_field", "aggregation", "label", "series_order", "color"}
        assert (s["value_field"], s["aggregation"], s["label"], s["series_order"], s["color"]) == (
            fid(sales, "Revenue"), "sum", "", 0, "",
        )  # fmt: skip
        url = f"/data-items/{sales.id}/widgets/{w['id']}/series/{s['id']}/"
        assert (await api.client.get(url)).json() == s
        widget = (await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/")).json()
        assert widget["series"] == [s]
        assert widget["updated_at"] >= w["updated_at"]

    @pytest.mark.parametrize(
        ("label", "aggregations"),
        [
            ("Revenue", ["count", "sum", "avg", "min", "max", "distinct_count"]),
            ("Close Date", ["count", "distinct_count", "min", "max"]),
            ("Region", ["count", "distinct_count"]),
            ("Notes", ["count", "distinct_count"]),
            ("Closed", ["count", "distinct_count"]),
        ],
    )
    async def test_aggregations_that_fit_each_type(
        self, api: Caller, sales: Sales, label: str, aggregations: list[str]
    ) -> None:
        w = await create_widget(api, sales.id)
        every = ["count", "sum", "avg", "min", "max", "distinct_count"]
        for aggregation in every:
            r = await api.client.post(
                f"/data-items/{sales.id}/widgets/{w['id']}/series/",
                json={"value_field": fid(sales, label), "aggregation": aggregation},
            )
            if aggregation in aggregations:
                assert r.status_code == 201, r.text
            else:
                error = assert_error(r, 400, "VALIDATION_ERROR")
                assert error["details"][0]["field"] == "aggregation"
                assert f"{aggregation} does not fit" in error["error"]
                assert " or ".join(aggregations) in error["error"]
        listed = await series_of(api, sales, w["id"])
        assert sorted(s["aggregation"] for s in listed) == sorted(aggregations)

    async def test_order_defaults_to_after_the_last_and_inserting_shifts(
        self, api: Caller, sales: Sales
    ) -> None:
        w = await create_widget(api, sales.id)
        rev = fid(sales, "Revenue")
        for label, order in (("a", None), ("b", None), ("c", 0), ("d", 1), ("e", 99)):
            body: dict[str, Any] = {"value_field": rev, "label": label}
            if order is not None:
                body["series_order"] = order
            await add(api, sales, w["id"], **body)
        listed = await series_of(api, sales, w["id"])
        assert [(s["label"], s["series_order"]) for s in listed] == [
            ("c", 0), ("d", 1), ("a", 2), ("b", 3), ("e", 4),
        ]  # fmt: skip

    async def test_at_most_20_series(self, api: Caller, sales: Sales) -> None:
        rev = fid(sales, "Revenue")
        w = await create_widget(api, sales.id, series=[{"value_field": rev}] * 20)
        r = await api.client.post(
            f"/data-items/{sales.id}/widgets/{w['id']}/series/", json={"value_field": rev}
        )
        assert "the limit is 20" in assert_error(r, 400)["error"]
        assert len(await series_of(api, sales, w["id"])) == 20

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "value_field"),
            ({"value_field": 999_999}, "value_field"),
            ({"value_field": "abc"}, "value_field"),
            ({"value_field": 1, "aggregation": "median"}, "aggregation"),
            ({"value_field": 1, "color": "not-a-color"}, "color"),
            ({"value_field": 1, "label": "x" * 256}, "label"),
            ({"value_field": 1, "series_order": -1}, "series_order"),
            ({"value_field": 1, "extra": True}, "extra"),
        ],
    )
    async def test_invalid_bodies_create_nothing(
        self, api: Caller, sales: Sales, body: dict[str, Any], field: str
    ) -> None:
        w = await create_widget(api, sales.id)
        r = await api.client.post(f"/data-items/{sales.id}/widgets/{w['id']}/series/", json=body)
        assert assert_error(r, 400, "VALIDATION_ERROR")["details"][0]["field"] == field
        assert await series_of(api, sales, w["id"]) == []


class TestPatchAndDelete:
    async def test_patch_changes_only_what_is_sent(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id)
        s = await add(
            api, sales, w["id"], value_field=fid(sales, "Revenue"), label="x", color="red"
        )
        url = f"/data-items/{sales.id}/widgets/{w['id']}/series/{s['id']}/"
        r = await api.client.patch(url, json={"aggregation": "avg"})
        assert r.status_code == 200 and r.json() == {**s, "aggregation": "avg"}
        r = await api.client.patch(
            url, json={"value_field": fid(sales, "Region"), "aggregation": "count", "color": "#abc"}
        )
        assert r.json() == {
            **s, "value_field": fid(sales, "Region"), "aggregation": "count", "color": "#abc",
        }  # fmt: skip
        r = await api.client.patch(url, json={"label": "", "color": ""})
        assert (r.json()["label"], r.json()["color"]) == ("", "")

    @pytest.mark.parametrize(
        "body",
        [
            {"aggregation": "sum", "value_field": None},
            {"value_field": 999_999},
            {"aggregation": None},
            {"value_field": "Region"},
            {"color": "#12"},
            {"label": None},
        ],
    )
    async def test_invalid_patch_changes_nothing(
        self, api: Caller, sales: Sales, body: dict[str, Any]
    ) -> None:
        w = await create_widget(api, sales.id)
        s = await add(api, sales, w["id"], value_field=fid(sales, "Region"), aggregation="count")
        url = f"/data-items/{sales.id}/widgets/{w['id']}/series/{s['id']}/"
        assert_error(await api.client.patch(url, json=body), 400, "VALIDATION_ERROR")
        assert await series_of(api, sales, w["id"]) == [s]

    async def test_aggregation_is_checked_against_the_resulting_field(
        self, api: Caller, sales: Sales
    ) -> None:
        w = await create_widget(api, sales.id)
        s = await add(api, sales, w["id"], value_field=fid(sales, "Revenue"), aggregation="avg")
        url = f"/data-items/{sales.id}/widgets/{w['id']}/series/{s['id']}/"
        r = await api.client.patch(url, json={"value_field": fid(sales, "Notes")})
        assert "avg does not fit text field" in assert_error(r, 400)["error"]
        assert await series_of(api, sales, w["id"]) == [s]

    async def test_moves_and_deletes_keep_the_order_dense(self, api: Caller, sales: Sales) -> None:
        rev = fid(sales, "Revenue")
        w = await create_widget(
            api, sales.id, series=[{"value_field": rev, "label": label} for label in "abcd"]
        )
        ids = {s["label"]: s["id"] for s in w["series"]}
        base = f"/data-items/{sales.id}/widgets/{w['id']}/series/"
        r = await api.client.patch(f"{base}{ids['a']}/", json={"series_order": 3})
        assert r.json()["series_order"] == 3
        assert [s["label"] for s in await series_of(api, sales, w["id"])] == list("bcda")
        await api.client.patch(f"{base}{ids['d']}/", json={"series_order": 0})
        assert [s["label"] for s in await series_of(api, sales, w["id"])] == list("dbca")
        r = await api.client.delete(f"{base}{ids['b']}/")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        listed = await series_of(api, sales, w["id"])
        assert [(s["label"], s["series_order"]) for s in listed] == [("d", 0), ("c", 1), ("a", 2)]
        assert_error(await api.client.delete(f"{base}{ids['b']}/"), 404, "NOT_FOUND")

    async def test_widget_delete_takes_its_series(self, api: Caller, sales: Sales) -> None:
        w = await create_widget(api, sales.id, series=[{"value_field": fid(sales, "Revenue")}])
        s = w["series"][0]
        assert (await api.client.delete(f"/data-items/{sales.id}/widgets/{w['id']}/")).json() == {
            "deleted": True
        }
        r = await api.client.get(f"/data-items/{sales.id}/widgets/{w['id']}/series/{s['id']}/")
        assert_error(r, 404, "NOT_FOUND")
