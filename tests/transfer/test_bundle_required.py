"""Bundle import holds required fields to what row writes hold them to: a row that leaves one
empty (key missing, null, blank) is a 400 naming the row and the field, and nothing is
created; as a JSON body and as a file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.transfer.helpers import item_names, partitions_after_last_item

pytestmark = pytest.mark.asyncio

IMPORT = "/data-items/import-bundle/"


def bundle(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "data-items-bundle",
        "version": 1,
        "item": {"data_name": "Required"},
        "fields": [
            {"id": 11, "field_label": "Name", "field_required": True},
            {"id": 12, "field_label": "Revenue", "field_type": "decimal", "field_required": True},
            {"id": 13, "field_label": "Note"},
        ],
        "rows": rows,
    }


ROWS: list[dict[str, Any]] = [
    {"11": "Ada", "12": 1, "13": "fine"},
    {"12": 2, "13": "no name"},  # row 1: Name missing
    {"11": None, "12": 3},  # row 2: Name null
    {"11": "  ", "12": 4},  # row 3: Name blank
    {"11": "Bob", "12": ""},  # row 4: Revenue empty
    {"11": "Cy", "12": "lots"},  # row 5: a bad value, reported as such (not also as empty)
]


def required(row: int, key: str, label: str) -> dict[str, Any]:
    return {
        "row": row,
        "field": key,
        "message": f"is empty, and field {label!r} is required (to import the rows as they "
        "are, set its field_required to false in the bundle)",
    }


EXPECTED = [
    required(1, "11", "Name"),
    required(2, "11", "Name"),
    required(3, "11", "Name"),
    required(4, "12", "Revenue"),
    {
        "row": 5,
        "field": "12",
        "value": "lots",
        "message": "is not a number (decimal field 'Revenue')",
    },
]


@pytest.mark.parametrize("as_file", [False, True])
async def test_rows_leaving_a_required_field_empty(
    api: Caller, app: FastAPI, as_file: bool
) -> None:
    document = json.dumps(bundle(ROWS)).encode()
    if as_file:
        r = await api.client.post(IMPORT, files={"bundle_file": ("b.json", document)})
    else:
        r = await api.client.post(
            IMPORT, content=document, headers={"content-type": "application/json"}
        )
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["error"] == "Invalid bundle: 5 problems (see details). Nothing was imported."
    assert body["details"] == EXPECTED
    assert await item_names(api) == [] and await partitions_after_last_item(app) == 0


async def test_one_empty_required_field_is_named_in_the_message(api: Caller) -> None:
    r = await api.client.post(
        IMPORT,
        content=json.dumps(bundle([{"11": "Ada", "12": 1}, {"12": 2}])),
        headers={"content-type": "application/json"},
    )
    body = assert_error(r, 400)
    assert body["error"] == (
        "Invalid bundle: row 1, field 11: is empty, and field 'Name' is required (to import "
        "the rows as they are, set its field_required to false in the bundle). Nothing was "
        "imported."
    )
    assert await item_names(api) == []


async def test_an_item_whose_required_field_has_empty_cells(api: Caller) -> None:
    """A field marked required after its rows were written exports rows that leave it empty:
    the import says so, and imports once the bundle no longer requires it."""
    r = await api.client.post(
        "/data-items/", json={"data_name": "Old", "fields": [{"field_label": "Name"}]}
    )
    item = r.json()
    field_id = item["fields"][0]["id"]
    for values in ({str(field_id): "Ada"}, {}):
        r = await api.client.post(f"/data-items/{item['id']}/rows/", json={"values": values})
        assert r.status_code == 201, r.text
    r = await api.client.patch(
        f"/data-items/{item['id']}/fields/{field_id}/", json={"field_required": True}
    )
    assert r.status_code == 200, r.text
    exported = json.loads((await api.client.get(f"/data-items/{item['id']}/bundle/")).content)
    headers = {"content-type": "application/json"}
    r = await api.client.post(IMPORT, content=json.dumps(exported), headers=headers)
    assert assert_error(r, 400)["details"] == [required(1, str(field_id), "Name")]
    assert await item_names(api) == ["Old"]
    exported["fields"][0]["field_required"] = False
    r = await api.client.post(IMPORT, content=json.dumps(exported), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == 2


async def test_rows_filling_every_required_field_import(api: Caller) -> None:
    rows: list[dict[str, Any]] = [
        {"11": "Ada", "12": 1},
        {"_row_ref": "7", "12": "2.5", "11": "Bob", "13": None},
    ]
    r = await api.client.post(
        IMPORT, content=json.dumps(bundle(rows)), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == 2
