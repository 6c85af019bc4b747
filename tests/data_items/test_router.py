"""Data items over HTTP: every endpoint, validation, both slash forms, and tenancy."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Caller
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


class TestCreate:
    async def test_with_fields_returns_the_detail_shape(self, api: Caller) -> None:
        r = await api.client.post(
            "/data-items/",
            json={
                "data_name": "Inventory Tracker",
                "data_description": "Weekly inventory levels",
                "fields": [
                    {"field_label": "SKU", "field_type": "char"},
                    {"field_label": "Quantity", "field_type": "decimal"},
                    {"field_label": "Last Counted", "field_type": "date", "field_required": True},
                ],
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert set(body) == {
            "id", "data_name", "data_description", "created_at", "updated_at",
            "fields", "reference_files", "row_count",
        }  # fmt: skip
        assert body["data_name"] == "Inventory Tracker"
        assert body["data_description"] == "Weekly inventory levels"
        assert body["row_count"] == 0
        assert body["reference_files"] == []
        assert TIMESTAMP.match(body["created_at"]) and TIMESTAMP.match(body["updated_at"])
        assert [(f["field_label"], f["field_type"], f["field_order"]) for f in body["fields"]] == [
            ("SKU", "char", 0),
            ("Quantity", "decimal", 1),
            ("Last Counted", "date", 2),
        ]
        first = body["fields"][0]
        assert set(first) == {
            "id", "field_label", "field_type", "field_order", "field_required", "field_instructions",
        }  # fmt: skip
        assert first["field_required"] is False and first["field_instructions"] == ""
        assert body["fields"][2]["field_required"] is True

    async def test_without_fields_and_defaults(self, api: Caller) -> None:
        body = await create_item(api.client, "Empty")
        assert body["fields"] == [] and body["data_description"] == ""

    async def test_name_is_trimmed(self, api: Caller) -> None:
        body = await create_item(api.client, "  Padded  ")
        assert body["data_name"] == "Padded"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "data_name"),
            ({"data_name": ""}, "data_name"),
            ({"data_name": "   "}, "data_name"),
            ({"data_name": None}, "data_name"),
            ({"data_name": 42}, "data_name"),
            ({"data_name": "x" * 256}, "data_name"),
            ({"data_name": "a\u0000b"}, "data_name"),
            ({"data_name": "ok", "data_description": "x" * 10_001}, "data_description"),
            ({"data_name": "ok", "unknown": 1}, "unknown"),
            ({"data_name": "ok", "fields": [{"field_label": ""}]}, "fields.0.field_label"),
            (
                {"data_name": "ok", "fields": [{"field_label": "A", "field_type": "int"}]},
                "fields.0.field_type",
            ),
            ({"data_name": "ok", "fields": "A"}, "fields"),
        ],
    )
    async def test_invalid_payloads_are_400_with_details(
        self, api: Caller, payload: dict[str, object], field: str
    ) -> None:
        r = await api.client.post("/data-items/", json=payload)
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert field in [d["field"] for d in body["details"]], body
        listing = await api.client.get("/data-items/")
        assert listing.json()["data_items"] == []

    async def test_lone_surrogate_is_400(self, api: Caller) -> None:
        r = await api.client.post(
            "/data-items/",
            content=b'{"data_name": "bad \\ud800 name"}',
            headers={"content-type": "application/json"},
        )
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert body["details"][0]["field"] == "data_name"
        assert "unicode" in body["error"]

    async def test_field_type_error_lists_valid_types(self, api: Caller) -> None:
        r = await api.client.post(
            "/data-items/",
            json={"data_name": "x", "fields": [{"field_label": "A", "field_type": "number"}]},
        )
        body = assert_error(r, 400)
        assert all(
            t in body["details"][0]["message"]
            for t in ("char", "text", "decimal", "date", "boolean")
        )

    async def test_duplicate_field_labels_ignoring_case_are_400_and_nothing_is_created(
        self, api: Caller
    ) -> None:
        r = await api.client.post(
            "/data-items/",
            json={"data_name": "x", "fields": [{"field_label": "Name"}, {"field_label": " name "}]},
        )
        body = assert_error(r, 400, "DUPLICATE")
        assert "name" in body["error"].lower()
        assert (await api.client.get("/data-items/")).json()["data_items"] == []


class TestList:
    async def test_lists_own_items_with_field_counts(self, api: Caller, intruder: Caller) -> None:
        a = await create_item(api.client, "A", [{"field_label": "x"}, {"field_label": "y"}])
        b = await create_item(api.client, "B")
        await create_item(intruder.client, "Not yours")
        r = await api.client.get("/data-items/")
        assert r.status_code == 200
        entries = r.json()["data_items"]
        assert [(e["id"], e["data_name"], e["field_count"]) for e in entries] == [
            (a["id"], "A", 2),
            (b["id"], "B", 0),
        ]
        assert set(entries[0]) == {
            "id", "data_name", "data_description", "field_count", "created_at", "updated_at",
        }  # fmt: skip

    async def test_both_slash_forms_answer_directly(self, api: Caller) -> None:
        await create_item(api.client, "A")
        with_slash = await api.client.get("/data-items/")
        without = await api.client.get("/data-items")
        assert with_slash.status_code == without.status_code == 200
        assert with_slash.json() == without.json()
        created = await api.client.post("/data-items", json={"data_name": "B"})
        assert created.status_code == 201  # no 307 on POST


class TestGet:
    async def test_get_by_id_both_forms(self, api: Caller) -> None:
        item = await create_item(api.client, "A", [{"field_label": "x"}])
        for path in (f"/data-items/{item['id']}/", f"/data-items/{item['id']}"):
            r = await api.client.get(path)
            assert r.status_code == 200
            assert r.json() == item

    async def test_unknown_id_is_404(self, api: Caller) -> None:
        body = assert_error(await api.client.get("/data-items/987654321/"), 404, "NOT_FOUND")
        assert "987654321" in body["error"]

    @pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5", "99999999999999999999"])
    async def test_malformed_id_is_400(self, api: Caller, bad: str) -> None:
        assert_error(await api.client.get(f"/data-items/{bad}/"), 400, "VALIDATION_ERROR")


class TestUpdate:
    async def test_patch_changes_only_what_is_sent(self, api: Caller) -> None:
        item = await create_item(api.client, "Old")
        r = await api.client.patch(f"/data-items/{item['id']}/", json={"data_name": "New"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["data_name"] == "New" and body["data_description"] == ""
        r = await api.client.patch(f"/data-items/{item['id']}", json={"data_description": "D"})
        assert r.json()["data_name"] == "New" and r.json()["data_description"] == "D"
        assert datetime.fromisoformat(r.json()["updated_at"]) >= datetime.fromisoformat(
            item["updated_at"]
        )
        again = await api.client.get(f"/data-items/{item['id']}/")
        assert again.json()["data_description"] == "D"

    @pytest.mark.parametrize(
        "payload",
        [{"data_name": ""}, {"data_name": None}, {"data_description": None}, {"row_count": 5}],
    )
    async def test_invalid_patch_is_400_and_changes_nothing(
        self, api: Caller, payload: dict[str, object]
    ) -> None:
        item = await create_item(api.client, "Keep")
        assert_error(await api.client.patch(f"/data-items/{item['id']}/", json=payload), 400)
        assert (await api.client.get(f"/data-items/{item['id']}/")).json() == item


class TestDelete:
    async def test_delete_removes_item_and_fields(self, api: Caller) -> None:
        item = await create_item(api.client, "Gone", [{"field_label": "x"}])
        r = await api.client.delete(f"/data-items/{item['id']}/")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        assert_error(await api.client.get(f"/data-items/{item['id']}/"), 404)
        assert_error(await api.client.get(f"/data-items/{item['id']}/fields/"), 404)
        assert_error(await api.client.delete(f"/data-items/{item['id']}"), 404)


class TestTenancy:
    async def test_another_account_gets_404_everywhere_and_changes_nothing(
        self, api: Caller, intruder: Caller
    ) -> None:
        item = await create_item(api.client, "Private", [{"field_label": "x"}])
        path = f"/data-items/{item['id']}/"
        assert_error(await intruder.client.get(path), 404)
        assert_error(await intruder.client.patch(path, json={"data_name": "Hacked"}), 404)
        assert_error(await intruder.client.delete(path), 404)
        # indistinguishable from an id that does not exist
        missing = await intruder.client.get("/data-items/987654321/")
        assert (
            missing.json()["error"].replace("987654321", str(item["id"]))
            == ((await intruder.client.get(path)).json()["error"])
        )
        assert (await intruder.client.get("/data-items/")).json()["data_items"] == []
        assert (await api.client.get(path)).json() == item


class TestListPaging:
    """`offset`, `limit` and `total` as on rows; a cap of 1,000 per page (issue 14, point 9)."""

    async def test_offset_limit_and_total(self, api: Caller, intruder: Caller) -> None:
        ids = [(await create_item(api.client, f"Item {i}"))["id"] for i in range(5)]
        await create_item(intruder.client, "Not yours")
        r = await api.client.get("/data-items/", params={"offset": 1, "limit": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["total"], body["offset"], body["limit"]) == (5, 1, 2)
        assert [e["id"] for e in body["data_items"]] == ids[1:3]
        assert set(body["data_items"][0]) == {
            "id", "data_name", "data_description", "field_count", "created_at", "updated_at",
        }  # fmt: skip
        last = (await api.client.get("/data-items", params={"offset": 4, "limit": 2})).json()
        assert [e["id"] for e in last["data_items"]] == ids[4:]
        past = (await api.client.get("/data-items/", params={"offset": 10})).json()
        assert past == {"total": 5, "offset": 10, "limit": 1000, "data_items": []}

    async def test_without_paging_parameters_the_answer_keeps_its_shape(self, api: Caller) -> None:
        a = await create_item(api.client, "A")
        body = (await api.client.get("/data-items/")).json()
        assert body["total"] == 1 and body["offset"] == 0 and body["limit"] == 1000
        assert [(e["id"], e["data_name"]) for e in body["data_items"]] == [(a["id"], "A")]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": 0}, "limit"),
            ({"limit": 1001}, "limit"),
            ({"offset": -1}, "offset"),
            ({"offset": "x"}, "offset"),
            ({"limit": "1.5"}, "limit"),
            ({"offset": 2**63}, "offset"),
        ],
    )
    async def test_bad_paging_is_400_naming_the_parameter(
        self, api: Caller, params: dict[str, int | str], field: str
    ) -> None:
        body = assert_error(
            await api.client.get("/data-items/", params=params),
            400,
            "VALIDATION_ERROR",
        )
        assert body["error"].startswith(f"Invalid request: {field}:"), body

    async def test_without_a_limit_at_most_1000_come_and_total_says_there_are_more(
        self, api: Caller, app: FastAPI
    ) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO data_items (account_id, data_name) "
                    "SELECT :account, 'Item ' || n FROM generate_series(1, 1001) AS n"
                ),
                {"account": api.account_id},
            )
        try:
            body = (await api.client.get("/data-items/")).json()
            assert (body["total"], body["offset"], body["limit"]) == (1001, 0, 1000)
            assert len(body["data_items"]) == 1000
            assert body["data_items"][0]["data_name"] == "Item 1"
            rest = (await api.client.get("/data-items/", params={"offset": 1000})).json()
            assert [e["data_name"] for e in rest["data_items"]] == ["Item 1001"]
        finally:  # items made without partitions: none may outlive the test
            async with app.state.sessionmaker() as session, session.begin():
                await session.execute(
                    text("DELETE FROM data_items WHERE account_id = :account"),
                    {"account": api.account_id},
                )
