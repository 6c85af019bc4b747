"""append-from-file with `key_fields`: an upsert. Rows whose keys match one existing row update
its cells, the others are appended, all or nothing, with exact statistics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.ingestion import files
from tests.jobs.helpers import start_append, wait_job

pytestmark = pytest.mark.asyncio

START = [
    ["Code", "Name", "Amount", "Day"],
    ["A1", "Ada", "10.5", "2026-01-01"],
    ["A2", "Bo", "20", ""],
]


async def create(api: Caller, rows: list[list[str]], name: str = "Stock") -> dict[str, Any]:
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": name},
        files={"data_file": ("stock.csv", files.csv_bytes(rows))},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def upsert(
    api: Caller, item: dict[str, Any], rows: list[list[str]], keys: Any, **form: str
) -> Any:
    return await api.client.post(
        f"/data-items/{item['id']}/append-from-file/",
        data={"key_fields": json.dumps(keys), **form},
        files={"data_file": ("more.csv", files.csv_bytes(rows))},
    )


def ids(item: dict[str, Any]) -> dict[str, int]:
    return {f["field_label"]: f["id"] for f in item["fields"]}


async def table(api: Caller, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The item's rows keyed by label (empty cells left out), in row order."""
    labels = {str(f["id"]): f["field_label"] for f in item["fields"]}
    r = await api.client.get(f"/data-items/{item['id']}/rows/", params={"limit": 500})
    assert r.status_code == 200, r.text
    return [
        {labels[k]: v for k, v in row.items() if k != "_row_ref" and v is not None}
        for row in r.json()["rows"]
    ]


async def summaries(api: Caller, item_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/summary/")
    assert r.status_code == 200, r.text
    out = []
    for s in r.json()["field_summaries"]:
        s = dict(s)
        for key in ("field_id", "id"):
            s.pop(key, None)
        out.append(s)
    return out


async def test_matching_rows_are_updated_and_the_others_appended(api: Caller) -> None:
    item = await create(api, START)
    f = ids(item)
    rows = [["Code", "Amount", "Name"], ["A2", "25", "Bo"], ["A3", "7.25", "Cy"]]
    r = await upsert(api, item, rows, [f["Code"]])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rows_inserted"], body["rows_updated"], body["cells_updated"]) == (1, 1, 1)
    assert body["rows_appended"] == 1
    assert await table(api, item) == [
        {"Code": "A1", "Name": "Ada", "Amount": 10.5, "Day": "2026-01-01"},
        {"Code": "A2", "Name": "Bo", "Amount": 25},
        {"Code": "A3", "Name": "Cy", "Amount": 7.25},
    ]
    detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
    assert detail["row_count"] == 3
    # the statistics are those of an item loaded with the final rows
    truth = await create(
        api,
        [START[0], START[1], ["A2", "Bo", "25", ""], ["A3", "Cy", "7.25", ""]],
        name="Truth",
    )
    assert await summaries(api, item["id"]) == await summaries(api, truth["id"])


async def test_an_empty_cell_empties_and_keys_match_numbers_by_value(api: Caller) -> None:
    item = await create(api, [["Id", "Note", "Qty"], ["1.50", "xx", "3"], ["2", "yy", "4"]])
    f = ids(item)
    r = await upsert(api, item, [["Id", "Note", "Qty"], ["1.5", "", "5"]], [f["Id"]])
    assert r.status_code == 200, r.text
    assert (r.json()["rows_updated"], r.json()["rows_inserted"]) == (1, 0)
    assert (await table(api, item))[0] == {"Id": 1.5, "Qty": 5}
    truth = await create(api, [["Id", "Note", "Qty"], ["1.5", "", "5"], ["2", "yy", "4"]], name="T")
    assert await summaries(api, item["id"]) == await summaries(api, truth["id"])


async def test_compound_keys(api: Caller) -> None:
    item = await create(
        api,
        [
            ["Store", "Day", "Sales"],
            ["N", "2026-01-01", "1"],
            ["N", "2026-01-02", "2"],
            ["S", "2026-01-01", "3"],
        ],
    )
    f = ids(item)
    rows = [["Store", "Day", "Sales"], ["S", "2026-01-01", "30"], ["S", "2026-01-02", "40"]]
    r = await upsert(api, item, rows, [f["Store"], str(f["Day"])])
    assert r.status_code == 200, r.text
    assert (r.json()["rows_updated"], r.json()["rows_inserted"]) == (1, 1)
    assert [row["Sales"] for row in await table(api, item)] == [1, 2, 30, 40]


async def unchanged(api: Caller, item: dict[str, Any], before: list[dict[str, Any]]) -> None:
    assert await table(api, item) == before
    detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
    assert detail["row_count"] == len(before)
    assert len(detail["reference_files"]) == 1


async def test_a_key_repeated_in_the_file_is_a_400(api: Caller) -> None:
    item = await create(api, START)
    before = await table(api, item)
    rows = [["Code", "Amount"], ["A9", "1"], ["A2", "2"], ["A9", "3"]]
    body = assert_error(await upsert(api, item, rows, [ids(item)["Code"]]), 400)
    assert '"A9"' in body["error"] and "more than one row" in body["error"]
    assert body["details"][0]["rows"] == [2, 4]  # as numbered in the file
    await unchanged(api, item, before)


async def test_a_key_matching_several_rows_is_a_400(api: Caller) -> None:
    item = await create(api, [["Code", "Amount"], ["A1", "1"], ["A1", "2"], ["B", "3"]])
    before = await table(api, item)
    body = assert_error(
        await upsert(api, item, [["Code", "Amount"], ["B", "9"], ["A1", "5"]], [ids(item)["Code"]]),
        400,
    )
    assert "row 3" in body["error"] and "2 existing rows" in body["error"]
    await unchanged(api, item, before)


async def test_an_empty_key_is_a_400(api: Caller) -> None:
    item = await create(api, START)
    before = await table(api, item)
    body = assert_error(
        await upsert(api, item, [["Code", "Amount"], ["A1", "1"], ["", "2"]], [ids(item)["Code"]]),
        400,
    )
    assert "Row 3" in body["error"] and "'Code'" in body["error"]
    await unchanged(api, item, before)


async def test_bad_key_fields_are_400s(api: Caller, intruder: Caller) -> None:
    item = await create(api, START)
    other = await create(api, START, name="Other")
    theirs = await create(intruder, START, name="Theirs")
    before = await table(api, item)
    rows = [["Code", "Amount"], ["A1", "1"]]
    cases: list[tuple[Any, str]] = [
        ([ids(item)["Name"]], "not a field of data item"),  # not loaded from the file
        ([ids(other)["Code"]], "not a field of data item"),
        ([ids(theirs)["Code"]], "not a field of data item"),
        ([], "non-empty JSON array"),
        ({"Code": 1}, "non-empty JSON array"),
        (["x"], "not a field id"),
        ([ids(item)["Code"], ids(item)["Code"]], "more than once"),
    ]
    for keys, words in cases:
        body = assert_error(await upsert(api, item, rows, keys), 400)
        assert words in body["error"], (keys, body)
    r = await api.client.post(
        f"/data-items/{item['id']}/append-from-file/",
        data={"key_fields": "[1,"},
        files={"data_file": ("more.csv", files.csv_bytes(rows))},
    )
    assert "not valid JSON" in assert_error(r, 400)["error"]
    await unchanged(api, item, before)


async def test_an_upsert_as_an_import_job(api: Caller) -> None:
    item = await create(api, START)
    rows = [["Code", "Amount"], ["A1", "11"], ["A4", "4"]]
    job = await start_append(
        api.client, item["id"], files.csv_bytes(rows), key_fields=json.dumps([ids(item)["Code"]])
    )
    done = await wait_job(api.client, job["id"])
    assert done["status"] == "succeeded", done
    assert (done["result"]["rows_updated"], done["result"]["rows_inserted"]) == (1, 1)
    assert [row["Amount"] for row in await table(api, item)] == [11, 20, 4]


async def test_a_dry_run_checks_the_keys_as_the_upsert_would(api: Caller) -> None:
    item = await create(api, [["Code", "Amount"], ["A1", "1"], ["A1", "2"], ["B", "3"]])
    before = await table(api, item)
    key = [ids(item)["Code"]]

    async def preview(rows: list[list[str]]) -> dict[str, Any]:
        r = await api.client.post(
            f"/data-items/{item['id']}/append-from-file/",
            params={"dry_run": "true"},
            data={"key_fields": json.dumps(key)},
            files={"data_file": ("more.csv", files.csv_bytes(rows))},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    ok = await preview([["Code", "Amount"], ["B", "30"], ["C", "4"], ["D", "5"]])
    assert (ok["rows_updated"], ok["rows_inserted"], ok["problems"]) == (1, 2, [])
    several = await preview([["Code", "Amount"], ["C", "4"], ["A1", "5"]])
    assert several["problem_count"] == 1
    assert several["problems"][0]["row"] == 3 and several["problems"][0]["matches"] == 2
    repeated = await preview([["Code", "Amount"], ["Z", "1"], ["Z", "2"]])
    assert repeated["problems"][0]["rows"] == [2, 3]
    empty = await preview([["Code", "Amount"], ["", "1"]])
    assert empty["problems"][0]["row"] == 2 and "key" in empty["problems"][0]["message"]
    without = await api.client.post(
        f"/data-items/{item['id']}/append-from-file/",
        params={"dry_run": "true"},
        files={"data_file": ("more.csv", files.csv_bytes([["Code"], ["Q"]]))},
    )
    assert without.json()["rows_updated"] is None  # not an upsert
    await unchanged(api, item, before)
