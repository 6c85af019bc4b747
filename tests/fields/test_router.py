"""Fields over HTTP: list, add (ordering), change (label, type, order, flags), delete, tenancy."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import Caller
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


async def labels(api: Caller, item_id: int) -> list[tuple[str, int]]:
    r = await api.client.get(f"/data-items/{item_id}/fields/")
    assert r.status_code == 200
    return [(f["field_label"], f["field_order"]) for f in r.json()["fields"]]


@pytest_asyncio.fixture
async def item(api: Caller) -> dict[str, Any]:
    return await create_item(
        api.client,
        "Sales",
        [{"field_label": "Region"}, {"field_label": "Revenue", "field_type": "decimal"}],
    )


class TestList:
    async def test_in_field_order_both_slash_forms(self, api: Caller, item: dict[str, Any]) -> None:
        a = await api.client.get(f"/data-items/{item['id']}/fields/")
        b = await api.client.get(f"/data-items/{item['id']}/fields")
        assert a.status_code == b.status_code == 200 and a.json() == b.json()
        assert a.json() == {"fields": item["fields"]}


class TestCreate:
    async def test_defaults_append_after_the_last(self, api: Caller, item: dict[str, Any]) -> None:
        r = await api.client.post(
            f"/data-items/{item['id']}/fields/", json={"field_label": "Discount %"}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body == {
            "id": body["id"],
            "field_label": "Discount %",
            "field_type": "char",
            "field_order": 2,
            "field_required": False,
            "field_instructions": "",
        }
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        assert detail["fields"][-1] == body

    async def test_explicit_order_inserts_and_shifts(
        self, api: Caller, item: dict[str, Any]
    ) -> None:
        r = await api.client.post(
            f"/data-items/{item['id']}/fields",
            json={"field_label": "First", "field_order": 0, "field_type": "date",
                  "field_required": True, "field_instructions": "When it closed"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["field_order"] == 0 and r.json()["field_required"] is True
        assert await labels(api, item["id"]) == [("First", 0), ("Region", 1), ("Revenue", 2)]

    async def test_order_past_the_end_means_last(self, api: Caller, item: dict[str, Any]) -> None:
        r = await api.client.post(
            f"/data-items/{item['id']}/fields/", json={"field_label": "Z", "field_order": 99}
        )
        assert r.json()["field_order"] == 2

    @pytest.mark.parametrize("label", ["region", " REGION ", "Region"])
    async def test_duplicate_label_ignoring_case_is_400(
        self, api: Caller, item: dict[str, Any], label: str
    ) -> None:
        r = await api.client.post(f"/data-items/{item['id']}/fields/", json={"field_label": label})
        body = assert_error(r, 400, "DUPLICATE")
        assert "Region" in body["error"] or "region" in body["error"].lower()
        assert await labels(api, item["id"]) == [("Region", 0), ("Revenue", 1)]

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "field_label"),
            ({"field_label": ""}, "field_label"),
            ({"field_label": "x", "field_type": "money"}, "field_type"),
            ({"field_label": "x", "field_order": -1}, "field_order"),
            ({"field_label": "x", "field_required": "maybe"}, "field_required"),
            # JSON types, not pydantic's lax coercion: "yes", "1" or 1 is not a boolean,
            # "2" or true not an integer
            ({"field_label": "x", "field_required": "yes"}, "field_required"),
            ({"field_label": "x", "field_required": 1}, "field_required"),
            ({"field_label": "x", "field_order": "2"}, "field_order"),
            ({"field_label": "x", "field_order": True}, "field_order"),
            ({"field_label": "x", "id": 5}, "id"),
        ],
    )
    async def test_invalid_is_400(
        self, api: Caller, item: dict[str, Any], payload: dict[str, object], field: str
    ) -> None:
        r = await api.client.post(f"/data-items/{item['id']}/fields/", json=payload)
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert field in [d["field"] for d in body["details"]]


class TestUpdate:
    async def test_rename_and_flags(self, api: Caller, item: dict[str, Any]) -> None:
        fid = item["fields"][0]["id"]
        r = await api.client.patch(
            f"/data-items/{item['id']}/fields/{fid}/",
            json={
                "field_label": "Area",
                "field_required": True,
                "field_instructions": "Sales area",
            },
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": fid, "field_label": "Area", "field_type": "char", "field_order": 0,
            "field_required": True, "field_instructions": "Sales area",
        }  # fmt: skip

    async def test_renaming_to_its_own_label_in_another_case_is_allowed(
        self, api: Caller, item: dict[str, Any]
    ) -> None:
        fid = item["fields"][0]["id"]
        r = await api.client.patch(
            f"/data-items/{item['id']}/fields/{fid}", json={"field_label": "REGION"}
        )
        assert r.status_code == 200 and r.json()["field_label"] == "REGION"

    async def test_rename_onto_another_label_is_400(
        self, api: Caller, item: dict[str, Any]
    ) -> None:
        fid = item["fields"][0]["id"]
        r = await api.client.patch(
            f"/data-items/{item['id']}/fields/{fid}/", json={"field_label": "revenue"}
        )
        assert_error(r, 400, "DUPLICATE")
        assert await labels(api, item["id"]) == [("Region", 0), ("Revenue", 1)]

    async def test_move_keeps_orders_dense(self, api: Caller, item: dict[str, Any]) -> None:
        third = (
            await api.client.post(f"/data-items/{item['id']}/fields/", json={"field_label": "C"})
        ).json()
        r = await api.client.patch(
            f"/data-items/{item['id']}/fields/{third['id']}/", json={"field_order": 0}
        )
        assert r.json()["field_order"] == 0
        assert await labels(api, item["id"]) == [("C", 0), ("Region", 1), ("Revenue", 2)]
        await api.client.patch(
            f"/data-items/{item['id']}/fields/{third['id']}/", json={"field_order": 9}
        )
        assert await labels(api, item["id"]) == [("Region", 0), ("Revenue", 1), ("C", 2)]

    async def test_type_change_of_a_field_without_values(
        self, api: Caller, item: dict[str, Any]
    ) -> None:
        fid = item["fields"][0]["id"]
        r = await api.client.patch(
            f"/data-items/{item['id']}/fields/{fid}/", json={"field_type": "text"}
        )
        assert r.status_code == 200 and r.json()["field_type"] == "text"

    @pytest.mark.parametrize(
        "payload",
        [
            {"field_type": "int"},
            {"field_label": ""},
            {"field_order": None},
            {"field_type": None},
            {"x": 1},
        ],
    )
    async def test_invalid_is_400_and_changes_nothing(
        self, api: Caller, item: dict[str, Any], payload: dict[str, object]
    ) -> None:
        fid = item["fields"][0]["id"]
        assert_error(
            await api.client.patch(f"/data-items/{item['id']}/fields/{fid}/", json=payload), 400
        )
        assert (await api.client.get(f"/data-items/{item['id']}/fields/")).json()["fields"] == item[
            "fields"
        ]

    async def test_field_of_another_item_is_404(self, api: Caller, item: dict[str, Any]) -> None:
        other = await create_item(api.client, "Other", [{"field_label": "x"}])
        fid = other["fields"][0]["id"]
        r = await api.client.patch(
            f"/data-items/{item['id']}/fields/{fid}/", json={"field_label": "y"}
        )
        assert_error(r, 404, "NOT_FOUND")


class TestDelete:
    async def test_delete_shifts_the_rest(self, api: Caller, item: dict[str, Any]) -> None:
        fid = item["fields"][0]["id"]
        r = await api.client.delete(f"/data-items/{item['id']}/fields/{fid}/")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        assert await labels(api, item["id"]) == [("Revenue", 0)]
        assert_error(await api.client.delete(f"/data-items/{item['id']}/fields/{fid}"), 404)
        # the label is free again
        r = await api.client.post(
            f"/data-items/{item['id']}/fields/", json={"field_label": "region"}
        )
        assert r.status_code == 201


class TestTenancy:
    async def test_another_account_gets_404_on_every_field_path(
        self, api: Caller, intruder: Caller, item: dict[str, Any]
    ) -> None:
        fid = item["fields"][0]["id"]
        base = f"/data-items/{item['id']}/fields/"
        assert_error(await intruder.client.get(base), 404)
        assert_error(await intruder.client.post(base, json={"field_label": "Evil"}), 404)
        assert_error(
            await intruder.client.patch(f"{base}{fid}/", json={"field_label": "Evil"}), 404
        )
        assert_error(await intruder.client.delete(f"{base}{fid}/"), 404)
        # their own item does not open a door to ours
        theirs = await create_item(intruder.client, "Theirs")
        assert_error(
            await intruder.client.patch(
                f"/data-items/{theirs['id']}/fields/{fid}/", json={"field_label": "Evil"}
            ),
            404,
        )
        assert (await api.client.get(base)).json()["fields"] == item["fields"]
