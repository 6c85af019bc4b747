"""append-from-file holds required fields to what row writes hold them to: a file that would
leave one empty (no column for it, or empty cells in its column) is a 400 naming the rows and
the column, and nothing is appended (synchronous and ?async=true)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.ingestion import files
from tests.ingestion.files import ExcelError
from tests.jobs.helpers import start_append, wait_job

pytestmark = pytest.mark.asyncio


async def item_with_a_required_field(api: Caller) -> dict[str, Any]:
    r = await api.client.post(
        "/data-items/",
        json={
            "data_name": "Required",
            "fields": [
                {"field_label": "Name", "field_required": True},
                {"field_label": "Amount", "field_type": "decimal", "field_required": True},
                {"field_label": "Note"},
            ],
        },
    )
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    r = await api.client.post(
        f"/data-items/{item['id']}/rows/", json={"values": by_label(item, Name="Ada", Amount=1)}
    )
    assert r.status_code == 201, r.text
    return item


def by_label(item: dict[str, Any], **values: Any) -> dict[str, Any]:
    ids = {f["field_label"]: str(f["id"]) for f in item["fields"]}
    return {ids[k]: v for k, v in values.items()}


async def append(api: Caller, item: dict[str, Any], name: str, data: bytes, **form: str) -> Any:
    return await api.client.post(
        f"/data-items/{item['id']}/append-from-file/", data=form, files={"data_file": (name, data)}
    )


async def unchanged(api: Caller, item: dict[str, Any]) -> None:
    detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
    assert detail["row_count"] == 1
    assert detail["reference_files"] == []
    assert [f["field_label"] for f in detail["fields"]] == ["Name", "Amount", "Note"]


EMPTY_CELLS = files.csv_bytes(
    [
        ["Name", "Amount", "Note"],
        ["Bob", "2", "x"],
        ["", "3", "y"],  # row 3: no name
        ["Cy", "N/A", ""],  # row 4: a missing marker is no amount
        ["  ", "5", "z"],  # row 5: blank is empty
    ]
)
EMPTY_CELL_DETAILS = [
    {
        "row": 3,
        "column": "Name",
        "field": "Name",
        "message": "is empty, and field 'Name' is required",
    },
    {
        "row": 5,
        "column": "Name",
        "field": "Name",
        "message": "is empty, and field 'Name' is required",
    },
    {
        "row": 4,
        "column": "Amount",
        "field": "Amount",
        "message": "is empty, and field 'Amount' is required",
    },
]


async def test_empty_cells_in_a_required_column(api: Caller) -> None:
    item = await item_with_a_required_field(api)
    r = await append(api, item, "more.csv", EMPTY_CELLS)
    body = assert_error(r, 400, "INVALID_FILE")
    assert body["error"] == (
        "Cannot append the file: row 3, column 'Name': is empty, and field 'Name' is required "
        "(and 2 more problems). Nothing was written."
    )
    assert [{k: d[k] for k in ("row", "column", "field", "message")} for d in body["details"]] == (
        EMPTY_CELL_DETAILS
    )
    await unchanged(api, item)


async def test_no_column_for_a_required_field(api: Caller) -> None:
    item = await item_with_a_required_field(api)
    data = files.csv_bytes([["name", "Note"], ["Bob", "x"]])
    for form in ({}, {"add_new_fields": "true"}):
        body = assert_error(await append(api, item, "m.csv", data, **form), 400, "INVALID_FILE")
        assert body["error"] == (
            "Cannot append the file: field 'Amount' is required, but no column of the file "
            "matches it (headers are matched to field labels ignoring case and surrounding "
            "spaces), so every row would leave it empty. Nothing was written."
        )
        assert body["details"][0]["field"] == "Amount" and body["details"][0]["rows"] == "all"
        await unchanged(api, item)


async def test_workbook_blanks_and_error_cells_leave_a_required_field_empty(api: Caller) -> None:
    item = await item_with_a_required_field(api)
    data = files.xlsx_bytes(
        {"S": [["Name", "Amount"], ["Bob", 2], [None, 3], ["Cy", ExcelError("#DIV/0!")]]}
    )
    body = assert_error(await append(api, item, "m.xlsx", data), 400, "INVALID_FILE")
    assert [(d["row"], d["column"]) for d in body["details"]] == [(3, "Name"), (4, "Amount")]
    await unchanged(api, item)


async def test_a_file_that_fills_every_required_field_is_appended(api: Caller) -> None:
    item = await item_with_a_required_field(api)
    data = files.csv_bytes([["Amount", "Name"], ["2", "Bob"], ["3.5", "Cy"]])
    r = await append(api, item, "m.csv", data)
    assert r.status_code == 200, r.text
    assert r.json()["rows_appended"] == 2


async def test_async_appends_fail_the_same_way(api: Caller) -> None:
    item = await item_with_a_required_field(api)
    queued = await start_append(api.client, item["id"], EMPTY_CELLS)
    job = await wait_job(api.client, queued["id"])
    assert job["status"] == "failed"
    assert job["error"]["status"] == 400 and job["error"]["code"] == "INVALID_FILE"
    assert job["error"]["error"].startswith(
        "Cannot append the file: row 3, column 'Name': is empty, and field 'Name' is required"
    )
    assert [(d["row"], d["column"]) for d in job["error"]["details"]] == [
        (3, "Name"),
        (5, "Name"),
        (4, "Amount"),
    ]
    queued = await start_append(api.client, item["id"], b"Name\r\nBob\r\n")
    job = await wait_job(api.client, queued["id"])
    assert job["status"] == "failed" and job["error"]["status"] == 400
    assert (
        "field 'Amount' is required, but no column of the file matches it"
        in (job["error"]["error"])
    )
    await unchanged(api, item)
