"""POST …/rows/bulk/ with `key_fields`: an upsert. Rows matching one existing row on the keys
update the cells they give, the others are created; all or nothing; exact statistics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio

FIELDS = [
    {"field_label": "Sku"},
    {"field_label": "Qty", "field_type": "decimal"},
    {"field_label": "Note"},
]


async def stock(api: Caller, name: str = "Stock") -> tuple[int, dict[str, str]]:
    item = await create_item(api.client, name, FIELDS)
    ids = {f["field_label"]: str(f["id"]) for f in item["fields"]}
    rows = [
        {ids["Sku"]: "A", ids["Qty"]: 1, ids["Note"]: "first"},
        {ids["Sku"]: "B", ids["Qty"]: 2},
    ]
    r = await api.client.post(f"/data-items/{item['id']}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text
    return int(item["id"]), ids


async def rows_of(api: Caller, item_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/rows/")
    assert r.status_code == 200, r.text
    return [{k: v for k, v in row.items() if v is not None} for row in r.json()["rows"]]


async def summary(api: Caller, item_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/summary/")
    assert r.status_code == 200, r.text
    return [
        {k: v for k, v in s.items() if k not in ("id", "field_id", "field_label")}
        for s in r.json()["field_summaries"]
    ]


async def test_an_upsert_updates_given_cells_and_creates_the_rest(api: Caller) -> None:
    item_id, f = await stock(api)
    body = {
        "key_fields": [int(f["Sku"])],
        "rows": [
            {f["Sku"]: "B", f["Qty"]: "5", f["Note"]: "restocked"},
            {f["Sku"]: "A", f["Note"]: None},  # Qty stays, Note is emptied
            {f["Sku"]: "C", f["Qty"]: 7},
        ],
    }
    r = await api.client.post(f"/data-items/{item_id}/rows/bulk/", json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "rows_created": 1,
        "cells_created": 3,  # C's two cells, B's new Note
        "rows_inserted": 1,
        "rows_updated": 2,
        "cells_updated": 1,  # B's Qty
    }
    assert await rows_of(api, item_id) == [
        {"_row_ref": "0", f["Sku"]: "A", f["Qty"]: 1},
        {"_row_ref": "1", f["Sku"]: "B", f["Qty"]: 5, f["Note"]: "restocked"},
        {"_row_ref": "2", f["Sku"]: "C", f["Qty"]: 7},
    ]
    detail = (await api.client.get(f"/data-items/{item_id}/")).json()
    assert detail["row_count"] == 3
    # exact: the same as an item written with the final rows
    truth = await create_item(api.client, "Truth", FIELDS)
    t = {x["field_label"]: str(x["id"]) for x in truth["fields"]}
    final = [
        {t["Sku"]: "A", t["Qty"]: 1},
        {t["Sku"]: "B", t["Qty"]: 5, t["Note"]: "restocked"},
        {t["Sku"]: "C", t["Qty"]: 7},
    ]
    r = await api.client.post(f"/data-items/{truth['id']}/rows/bulk/", json={"rows": final})
    assert r.status_code == 201, r.text
    assert await summary(api, item_id) == await summary(api, int(truth["id"]))


async def test_upsert_problems_are_400s_and_write_nothing(api: Caller, intruder: Caller) -> None:
    item_id, f = await stock(api)
    _, other = await stock(api, "Other")
    _, theirs = await stock(intruder, "Theirs")
    before = await rows_of(api, item_id)
    key = [int(f["Sku"])]
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"key_fields": key, "rows": [{f["Sku"]: "Z"}, {f["Sku"]: "Z", f["Qty"]: 1}]},
            "more than one row",
        ),
        ({"key_fields": key, "rows": [{f["Qty"]: 3}]}, "no value for the key field 'Sku'"),
        (
            {"key_fields": key, "rows": [{f["Sku"]: None, f["Qty"]: 3}]},
            "no value for the key field",
        ),
        ({"key_fields": key, "rows": [{f["Sku"]: "A", f["Qty"]: "lots"}]}, "lots"),
        ({"key_fields": key, "rows": [{f["Sku"]: "A", "999999": 1}]}, "999999"),
        (
            {"key_fields": [int(other["Sku"])], "rows": [{f["Sku"]: "A"}]},
            "not a field of data item",
        ),
        (
            {"key_fields": [int(theirs["Sku"])], "rows": [{f["Sku"]: "A"}]},
            "not a field of data item",
        ),
        ({"key_fields": key * 2, "rows": [{f["Sku"]: "A"}]}, "more than once"),
        ({"key_fields": [], "rows": [{f["Sku"]: "A"}]}, "key_fields"),
        ({"key_fields": ["Sku"], "rows": [{f["Sku"]: "A"}]}, "key_fields"),
        ({"key_fields": [0], "rows": [{f["Sku"]: "A"}]}, "key_fields"),
    ]
    for body, words in cases:
        r = await api.client.post(f"/data-items/{item_id}/rows/bulk/", json=body)
        error = assert_error(r, 400)
        assert words in str(error), (body, error)
    assert await rows_of(api, item_id) == before


async def test_a_key_matching_several_rows_is_a_400(api: Caller) -> None:
    item_id, f = await stock(api)
    r = await api.client.post(
        f"/data-items/{item_id}/rows/bulk/", json={"rows": [{f["Sku"]: "A", f["Qty"]: 9}]}
    )
    assert r.status_code == 201, r.text
    before = await rows_of(api, item_id)
    body = {"key_fields": [int(f["Sku"])], "rows": [{f["Sku"]: "B"}, {f["Sku"]: "A", f["Qty"]: 0}]}
    error = assert_error(await api.client.post(f"/data-items/{item_id}/rows/bulk/", json=body), 400)
    assert "row 1" in error["error"] and "2 existing rows" in error["error"]
    assert await rows_of(api, item_id) == before


async def test_required_fields_hold_for_created_rows_only(api: Caller) -> None:
    item = await create_item(
        api.client,
        "Req",
        [
            {"field_label": "Sku"},
            {"field_label": "Qty", "field_type": "decimal", "field_required": True},
        ],
    )
    sku, qty = (str(x["id"]) for x in item["fields"])
    url = f"/data-items/{item['id']}/rows/bulk/"
    assert (await api.client.post(url, json={"rows": [{sku: "A", qty: 1}]})).status_code == 201
    # an update may leave Qty out; a new row may not; no row may empty it
    r = await api.client.post(url, json={"key_fields": [int(sku)], "rows": [{sku: "A"}]})
    assert r.status_code == 201, r.text
    for rows in ([{sku: "B"}], [{sku: "A", qty: None}]):
        r = await api.client.post(url, json={"key_fields": [int(sku)], "rows": rows})
        assert "required" in assert_error(r, 400)["error"]


async def test_an_upsert_into_another_accounts_item_is_a_404(api: Caller, intruder: Caller) -> None:
    item_id, f = await stock(api)
    r = await intruder.client.post(
        f"/data-items/{item_id}/rows/bulk/",
        json={"key_fields": [int(f["Sku"])], "rows": [{f["Sku"]: "A", f["Qty"]: 0}]},
    )
    assert_error(r, 404)
    assert (await rows_of(api, item_id))[0][f["Qty"]] == 1
