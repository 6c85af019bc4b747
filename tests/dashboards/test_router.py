"""Dashboard endpoints: CRUD, validation of every field (400, never 422 or 500), widget
references (a widget that is missing or another account's is a 400 naming it), layouts that
lose a widget when it or its item is deleted, scopes, and tenancy (another account's dashboard
is a 404 and stays untouched)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from tests.accounts.keys import make_key, using
from tests.conftest import Caller
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


async def widget(api: Caller, item_id: int, title: str = "W", chart: str = "bar") -> int:
    r = await api.client.post(
        f"/data-items/{item_id}/widgets/", json={"title": title, "chart_type": chart}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def create(api: Caller, **body: Any) -> dict[str, Any]:
    payload = {"title": "Overview", **body}
    r = await api.client.post("/dashboards/", json=payload)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def read(api: Caller, dashboard_id: int) -> dict[str, Any]:
    r = await api.client.get(f"/dashboards/{dashboard_id}/")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def at(widget_id: int, x: int = 0, y: int = 0, w: int = 6, h: int = 4) -> dict[str, int]:
    return {"widget_id": widget_id, "x": x, "y": y, "w": w, "h": h}


class TestCreate:
    async def test_widgets_of_several_items(self, api: Caller) -> None:
        sales = await create_item(api.client, "Sales")
        deals = await create_item(api.client, "Deals")
        revenue = await widget(api, sales["id"], "Revenue", "line")
        count = await widget(api, deals["id"], "Deals", "number")
        created = await create(
            api,
            title="  Sales overview ",
            description="by month",
            layout=[at(revenue, 0, 0, 8, 4), at(count, 8, 0, 4, 2)],
        )
        assert set(created) == {"id", "title", "description", "layout", "created_at", "updated_at"}
        assert created["title"] == "Sales overview" and created["description"] == "by month"
        assert created["layout"] == [
            {"widget_id": revenue, "data_item_id": sales["id"], "title": "Revenue",
             "chart_type": "line", "x": 0, "y": 0, "w": 8, "h": 4},
            {"widget_id": count, "data_item_id": deals["id"], "title": "Deals",
             "chart_type": "number", "x": 8, "y": 0, "w": 4, "h": 2},
        ]  # fmt: skip
        assert await read(api, created["id"]) == created

    async def test_the_layout_keeps_the_order_given(self, api: Caller) -> None:
        item = await create_item(api.client)
        ids = [await widget(api, item["id"], f"W{i}") for i in range(4)]
        created = await create(api, layout=[at(i, y=n) for n, i in enumerate(reversed(ids))])
        assert [e["widget_id"] for e in created["layout"]] == list(reversed(ids))

    async def test_defaults_and_limits_that_pass(self, api: Caller) -> None:
        created = await create(api)
        assert created["description"] == "" and created["layout"] == []
        item = await create_item(api.client)
        ids = [await widget(api, item["id"]) for _ in range(100)]
        corner = [at(ids[0], x=11, y=999, w=1, h=1), at(ids[1], x=0, y=900, w=12, h=100)]
        big = await create(
            api, title="t" * 255, layout=corner + [at(i) for i in ids[2:]]
        )  # entries may overlap
        assert len(big["layout"]) == 100 and big["layout"][:2] == [
            {**corner[0], "data_item_id": item["id"], "title": "W", "chart_type": "bar"},
            {**corner[1], "data_item_id": item["id"], "title": "W", "chart_type": "bar"},
        ]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "title"),
            ({"title": ""}, "title"),
            ({"title": "   "}, "title"),
            ({"title": None}, "title"),
            ({"title": 5}, "title"),
            ({"title": "t" * 256}, "title"),
            ({"title": "a\x00b"}, "title"),
            ({"title": "T", "description": "d" * 10_001}, "description"),
            ({"title": "T", "description": None}, "description"),
            ({"title": "T", "layout": None}, "layout"),
            ({"title": "T", "layout": {"widget_id": 1}}, "layout"),
            ({"title": "T", "layout": [5]}, "layout.0"),
            ({"title": "T", "owner": 1}, "owner"),
        ],
    )
    async def test_bad_fields_are_400(self, api: Caller, body: dict[str, Any], field: str) -> None:
        r = await api.client.post("/dashboards/", json=body)
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert any(str(d.get("field", "")).startswith(field) for d in problem["details"]), problem
        assert (await api.client.get("/dashboards/")).json()["total"] == 0

    @pytest.mark.parametrize(
        ("entry", "field"),
        [
            ({"x": -1}, "x"),
            ({"x": 12, "w": 1}, "x"),
            ({"w": 0}, "w"),
            ({"w": 13}, "w"),
            ({"x": 7, "w": 6}, "x + w"),
            ({"y": -1}, "y"),
            ({"y": 1000, "h": 1}, "y"),
            ({"h": 0}, "h"),
            ({"h": 101}, "h"),
            ({"y": 950, "h": 51}, "y + h"),
            ({"x": 1.5}, "x"),
            ({"x": "1"}, "x"),
            ({"x": True}, "x"),
            ({"w": None}, "w"),
            ({"widget_id": 0}, "widget_id"),
            ({"widget_id": -3}, "widget_id"),
            ({"widget_id": 2**63}, "widget_id"),
            ({"widget_id": "7"}, "widget_id"),
            ({"widget_id": None}, "widget_id"),
            ({"colour": "red"}, "colour"),
        ],
    )
    async def test_bad_layout_entries_are_400(
        self, api: Caller, entry: dict[str, Any], field: str
    ) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        r = await api.client.post(
            "/dashboards/", json={"title": "T", "layout": [at(w), {**at(w, x=6), **entry}]}
        )
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        text = repr(problem)
        assert "layout.1" in text and field in text, problem
        assert (await api.client.get("/dashboards/")).json()["total"] == 0

    async def test_a_missing_entry_key_is_400(self, api: Caller) -> None:
        for key in ("widget_id", "x", "y", "w", "h"):
            entry = {k: v for k, v in at(1).items() if k != key}
            r = await api.client.post("/dashboards/", json={"title": "T", "layout": [entry]})
            problem = assert_error(r, 400, "VALIDATION_ERROR")
            assert any(d.get("field") == f"layout.0.{key}" for d in problem["details"]), problem

    async def test_more_than_100_entries_is_400(self, api: Caller) -> None:
        r = await api.client.post(
            "/dashboards/", json={"title": "T", "layout": [at(i + 1) for i in range(101)]}
        )
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert "100" in repr(problem), problem

    async def test_the_same_widget_twice_is_400(self, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        r = await api.client.post(
            "/dashboards/", json={"title": "T", "layout": [at(w), at(w, x=6)]}
        )
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert f"widget {w} is in the layout twice (entries 0 and 1)" in problem["error"], problem

    @pytest.mark.parametrize("body", [[], "x", 3, 1.5, None])
    async def test_a_body_that_is_not_an_object_is_400(self, api: Caller, body: Any) -> None:
        assert_error(await api.client.post("/dashboards/", json=body), 400)

    async def test_malformed_json_is_400(self, api: Caller) -> None:
        r = await api.client.post(
            "/dashboards/", content=b'{"title": ', headers={"content-type": "application/json"}
        )
        assert_error(r, 400)


class TestWidgetReferences:
    async def test_a_missing_widget_is_400_naming_it(self, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        r = await api.client.post(
            "/dashboards/", json={"title": "T", "layout": [at(w), at(987654321, x=6)]}
        )
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert problem["error"] == (
            "Invalid layout: layout.1.widget_id: widget 987654321 is not a widget of your data "
            "items."
        )
        assert problem["details"] == [
            {"field": "layout.1.widget_id", "widget_id": 987654321,
             "message": "widget 987654321 is not a widget of your data items"},
        ]  # fmt: skip
        assert (await api.client.get("/dashboards/")).json()["total"] == 0

    async def test_another_accounts_widget_is_400_like_a_missing_one(
        self, api: Caller, intruder: Caller
    ) -> None:
        theirs = await create_item(intruder.client)
        their_widget = await widget(intruder, theirs["id"])
        r = await api.client.post("/dashboards/", json={"title": "T", "layout": [at(their_widget)]})
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert f"widget {their_widget} is not a widget of your data items" in problem["error"]
        assert (await api.client.get("/dashboards/")).json()["total"] == 0

    async def test_every_bad_reference_is_named(self, api: Caller, intruder: Caller) -> None:
        theirs = await create_item(intruder.client)
        their_widget = await widget(intruder, theirs["id"])
        r = await api.client.post(
            "/dashboards/",
            json={"title": "T", "layout": [at(their_widget), at(987654321, x=6)]},
        )
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert "2 widgets" in problem["error"]
        assert [d["field"] for d in problem["details"]] == [
            "layout.0.widget_id",
            "layout.1.widget_id",
        ]

    async def test_a_patch_with_a_bad_widget_changes_nothing(
        self, api: Caller, intruder: Caller
    ) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        created = await create(api, layout=[at(w)])
        theirs = await create_item(intruder.client)
        their_widget = await widget(intruder, theirs["id"])
        r = await api.client.patch(
            f"/dashboards/{created['id']}/",
            json={"title": "Changed", "layout": [at(their_widget)]},
        )
        problem = assert_error(r, 400, "VALIDATION_ERROR")
        assert problem["details"][0]["field"] == "layout.0.widget_id"
        assert await read(api, created["id"]) == created


class TestList:
    async def test_pages(self, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        ids = [(await create(api, title=f"D{i}", layout=[at(w)]))["id"] for i in range(3)]
        listed = (await api.client.get("/dashboards/")).json()
        assert (listed["total"], listed["offset"], listed["limit"]) == (3, 0, 100)
        assert [d["id"] for d in listed["dashboards"]] == ids
        assert listed["dashboards"][0] == await read(api, ids[0])
        page = (await api.client.get("/dashboards/", params={"offset": 1, "limit": 1})).json()
        assert page["total"] == 3 and [d["id"] for d in page["dashboards"]] == [ids[1]]
        past = (await api.client.get("/dashboards/", params={"offset": 5})).json()
        assert past["total"] == 3 and past["dashboards"] == []

    @pytest.mark.parametrize(
        "params",
        [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}, {"offset": 2**40}],
    )
    async def test_bad_paging_is_400(self, api: Caller, params: dict[str, Any]) -> None:
        assert_error(await api.client.get("/dashboards/", params=params), 400, "VALIDATION_ERROR")


class TestUpdate:
    async def test_only_what_is_sent_changes(self, api: Caller) -> None:
        item = await create_item(api.client)
        a, b = await widget(api, item["id"], "A"), await widget(api, item["id"], "B")
        created = await create(api, description="d", layout=[at(a)])
        path = f"/dashboards/{created['id']}/"

        r = await api.client.patch(path, json={"title": " Renamed "})
        assert r.status_code == 200, r.text
        assert r.json() == {**created, "title": "Renamed", "updated_at": r.json()["updated_at"]}

        r = await api.client.patch(path, json={"layout": [at(b, 0, 0, 12, 2), at(a, 0, 2)]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["title"] == "Renamed" and body["description"] == "d"
        assert [(e["widget_id"], e["title"], e["w"]) for e in body["layout"]] == [
            (b, "B", 12),
            (a, "A", 6),
        ]
        r = await api.client.patch(path, json={"description": "", "layout": []})
        assert r.status_code == 200 and r.json()["layout"] == [] and r.json()["description"] == ""
        assert (await api.client.patch(path, json={})).json() == await read(api, created["id"])

    @pytest.mark.parametrize(
        "body",
        [
            {"title": None},
            {"title": ""},
            {"title": "  "},
            {"title": "t" * 256},
            {"description": None},
            {"description": "d" * 10_001},
            {"layout": None},
            {"layout": [{"widget_id": 1, "x": 11, "y": 0, "w": 2, "h": 1}]},
            {"layout": [at(1), at(1)]},
            {"id": 5},
            {"created_at": "2026-01-01T00:00:00+00:00"},
        ],
    )
    async def test_bad_fields_are_400(self, api: Caller, body: dict[str, Any]) -> None:
        created = await create(api)
        r = await api.client.patch(f"/dashboards/{created['id']}/", json=body)
        assert_error(r, 400, "VALIDATION_ERROR")
        assert await read(api, created["id"]) == created

    @pytest.mark.parametrize("body", [[], "x", 3, None])
    async def test_a_body_that_is_not_an_object_is_400(self, api: Caller, body: Any) -> None:
        created = await create(api)
        assert_error(await api.client.patch(f"/dashboards/{created['id']}/", json=body), 400)


class TestDelete:
    async def test_the_dashboard_goes_its_widgets_stay(self, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        created = await create(api, layout=[at(w)])
        r = await api.client.delete(f"/dashboards/{created['id']}/")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        assert_error(await api.client.get(f"/dashboards/{created['id']}/"), 404, "NOT_FOUND")
        assert_error(await api.client.delete(f"/dashboards/{created['id']}/"), 404, "NOT_FOUND")
        assert (await api.client.get(f"/data-items/{item['id']}/widgets/{w}/")).status_code == 200
        # the widget can go on another dashboard
        assert (await create(api, layout=[at(w)]))["layout"][0]["widget_id"] == w


class TestDeletesTakeWidgetsOut:
    async def test_deleting_a_widget_takes_it_out_of_every_layout(self, api: Caller) -> None:
        item = await create_item(api.client)
        a, b = await widget(api, item["id"], "A"), await widget(api, item["id"], "B")
        one = await create(api, layout=[at(a), at(b, x=6)])
        two = await create(api, layout=[at(b), at(a, x=6)])
        r = await api.client.delete(f"/data-items/{item['id']}/widgets/{a}/")
        assert r.status_code == 200, r.text
        for dashboard in (one, two):
            assert [e["widget_id"] for e in (await read(api, dashboard["id"]))["layout"]] == [b]
        listed = (await api.client.get("/dashboards/")).json()["dashboards"]
        assert [[e["widget_id"] for e in d["layout"]] for d in listed] == [[b], [b]]
        # the layout can be written again around the gap the delete left
        r = await api.client.patch(f"/dashboards/{one['id']}/", json={"layout": [at(b, x=3)]})
        assert r.status_code == 200 and r.json()["layout"][0]["x"] == 3

    async def test_deleting_an_item_takes_its_widgets_out(self, api: Caller) -> None:
        gone = await create_item(api.client, "Gone")
        kept = await create_item(api.client, "Kept")
        a, b = await widget(api, gone["id"], "A"), await widget(api, gone["id"], "B")
        c = await widget(api, kept["id"], "C")
        created = await create(api, layout=[at(a), at(c, x=6), at(b, y=4)])
        r = await api.client.delete(f"/data-items/{gone['id']}/")
        assert r.status_code == 200, r.text
        layout = (await read(api, created["id"]))["layout"]
        assert [(e["widget_id"], e["data_item_id"]) for e in layout] == [(c, kept["id"])]

    async def test_a_deleted_widget_is_a_bad_reference(self, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        await api.client.delete(f"/data-items/{item['id']}/widgets/{w}/")
        r = await api.client.post("/dashboards/", json={"title": "T", "layout": [at(w)]})
        assert_error(r, 400, "VALIDATION_ERROR")


class TestWidgetChangesShow:
    async def test_a_renamed_widget_shows_its_new_title(self, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"], "Old", "bar")
        created = await create(api, layout=[at(w)])
        r = await api.client.patch(
            f"/data-items/{item['id']}/widgets/{w}/", json={"title": "New", "chart_type": "pie"}
        )
        assert r.status_code == 200, r.text
        entry = (await read(api, created["id"]))["layout"][0]
        assert (entry["title"], entry["chart_type"]) == ("New", "pie")


class TestTenancy:
    async def test_another_accounts_dashboard_is_404_and_untouched(
        self, api: Caller, intruder: Caller
    ) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        mine = await create(api, layout=[at(w)])
        path = f"/dashboards/{mine['id']}/"
        for method, body in (("GET", None), ("PATCH", {"title": "Mine now"}), ("DELETE", None)):
            problem = assert_error(await intruder.client.request(method, path, json=body), 404)
            assert problem["error"] == f"Dashboard {mine['id']} not found.", method
        # a layout that would be valid for the owner changes nothing either
        r = await intruder.client.patch(path, json={"layout": [at(w)]})
        assert_error(r, 404, "NOT_FOUND")
        listed = (await intruder.client.get("/dashboards/")).json()
        assert listed["total"] == 0 and listed["dashboards"] == []
        assert await read(api, mine["id"]) == mine

    async def test_bad_ids_are_never_500(self, api: Caller) -> None:
        for raw in ("0", "-1", "abc", "1.5", "99999999999999999999", "9223372036854775807"):
            for method in ("GET", "PATCH", "DELETE"):
                r = await api.client.request(method, f"/dashboards/{raw}/", json={"title": "x"})
                assert r.status_code in (400, 404), (method, raw, r.text)
                assert_error(r, r.status_code)


class TestScopes:
    async def test_read_reads_and_manage_changes(self, app: FastAPI, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        created = await create(api, layout=[at(w)])
        reader = await make_key(api, scopes=["read"])
        async with using(app, reader["api_key"]) as client:
            assert (await client.get("/dashboards/")).json()["total"] == 1
            assert (await client.get(f"/dashboards/{created['id']}/")).json() == created
            for method, path, body in (
                ("POST", "/dashboards/", {"title": "T"}),
                ("PATCH", f"/dashboards/{created['id']}/", {"title": "T"}),
                ("DELETE", f"/dashboards/{created['id']}/", None),
            ):
                problem = assert_error(await client.request(method, path, json=body), 403)
                assert "`manage` scope" in problem["error"], method
        manager = await make_key(api, scopes=["manage"])
        async with using(app, manager["api_key"]) as client:
            r = await client.patch(f"/dashboards/{created['id']}/", json={"title": "T"})
            assert r.status_code == 200, r.text
            assert_error(await client.get("/dashboards/"), 403, "FORBIDDEN")

    async def test_a_key_limited_to_items_is_refused(self, app: FastAPI, api: Caller) -> None:
        item = await create_item(api.client)
        w = await widget(api, item["id"])
        created = await create(api, layout=[at(w)])
        limited = await make_key(api, scopes=["read", "write", "manage"], data_items=[item["id"]])
        async with using(app, limited["api_key"]) as client:
            for method, path, body in (
                ("GET", "/dashboards/", None),
                ("POST", "/dashboards/", {"title": "T", "layout": [at(w)]}),
                ("GET", f"/dashboards/{created['id']}/", None),
                ("PATCH", f"/dashboards/{created['id']}/", {"title": "T"}),
                ("DELETE", f"/dashboards/{created['id']}/", None),
            ):
                problem = assert_error(await client.request(method, path, json=body), 403)
                assert "limited to data items" in problem["error"], (method, path)
        assert await read(api, created["id"]) == created
