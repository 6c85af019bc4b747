"""Uploads under the user's control: `dry_run=true` (what an upload would do, nothing written),
`field_types` (a column's type set instead of inferred) and `column_map` (which column goes
into which field on append), synchronous and as import jobs, with their bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.ingestion import files
from tests.jobs.helpers import start_append, wait_job

pytestmark = pytest.mark.asyncio

CREATE = "/data-items/create-from-file/"

SALES = files.csv_bytes(
    [
        ["Region", "Revenue", "Zip", "Day", "Code"],
        *[
            [f"R{i % 3}", f"{1000 + i}.50", f"0{2100 + i}", f"2026-01-{i % 28 + 1:02d}", str(i + 1)]
            for i in range(30)
        ],
    ]
)


async def create(api: Caller, data: bytes, *, params: Any = None, **form: str) -> Any:
    form.setdefault("data_name", "Sales")
    return await api.client.post(
        CREATE, params=params, data=form, files={"data_file": ("sales.csv", data)}
    )


async def append(api: Caller, item_id: int, data: bytes, *, params: Any = None, **form: str) -> Any:
    return await api.client.post(
        f"/data-items/{item_id}/append-from-file/",
        params=params,
        data=form,
        files={"data_file": ("more.csv", data)},
    )


async def counts(api: Caller) -> tuple[int, int]:
    """(items, reference files) of the account."""
    items = (await api.client.get("/data-items/", params={"limit": 100})).json()
    listed = items["data_items"] if isinstance(items, dict) else items
    stored = 0
    for entry in listed:
        detail = (await api.client.get(f"/data-items/{entry['id']}/")).json()
        stored += len(detail["reference_files"])
    return len(listed), stored


def by_label(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["field_label"]: f for f in detail["fields"]}


# ----------------------------------------------------------------------------- dry run: create


async def test_a_dry_run_answers_what_create_would_do_and_writes_nothing(api: Caller) -> None:
    before = await counts(api)
    r = await create(api, SALES, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["dry_run"] is True
    assert preview["rows"] == 30
    assert [(f["field_label"], f["field_type"]) for f in preview["fields"]] == [
        ("Region", "char"),
        ("Revenue", "decimal"),
        ("Zip", "char"),
        ("Day", "date"),
        ("Code", "decimal"),
    ]
    assert "leading zero" in preview["fields"][2]["reasons"]
    assert all(f["reasons"] and f["new"] for f in preview["fields"])
    assert preview["problems"] == [] and preview["problem_count"] == 0
    assert any("Zip" in note for note in preview["notes"])
    assert len(preview["sample"]) == 20
    assert await counts(api) == before  # no item, no stored file

    # the sample is the first 20 rows exactly as the API returns them once created
    r = await create(api, SALES)
    assert r.status_code == 201, r.text
    created = r.json()
    rows = (await api.client.get(f"/data-items/{created['id']}/rows/", params={"limit": 20})).json()
    labels = {str(f["id"]): f["field_label"] for f in created["fields"]}
    served = [{labels[k]: v for k, v in row.items() if k != "_row_ref"} for row in rows["rows"]]
    assert preview["sample"] == served
    raw = (await create(api, SALES, params={"dry_run": "true"})).text
    assert '"Revenue":1000.5,' in raw.replace(" ", "")  # a JSON number, not a string or a float


async def test_a_dry_run_needs_no_name_and_refuses_async(api: Caller) -> None:
    r = await api.client.post(
        CREATE, params={"dry_run": "true"}, files={"data_file": ("sales.csv", SALES)}
    )
    assert r.status_code == 200, r.text
    r = await create(api, SALES, params={"dry_run": "true", "async": "true"})
    body = assert_error(r, 400)
    assert "dry_run" in body["error"] and "async" in body["error"]
    r = await create(api, SALES, params={"dry_run": "maybe"})
    assert_error(r, 400)
    r = await create(api, b"", params={"dry_run": "true"})
    assert_error(r, 400)  # an unreadable file is the real call's 400


# ----------------------------------------------------------------------------- field_types


async def test_field_types_set_a_column_type_instead_of_inferring_it(api: Caller) -> None:
    data = files.csv_bytes([["Code", "Amount"], ["1", "5"], [" 0 7", "6.25"], ["007", "7"]])
    r = await create(api, data, field_types=json.dumps({"code": "char", "Amount": "text"}))
    assert r.status_code == 201, r.text
    body = r.json()
    assert [f["field_type"] for f in body["fields"]] == ["char", "text"]
    assert any("set by field_types" in n for n in body["notes"])
    rows = (await api.client.get(f"/data-items/{body['id']}/rows/")).json()["rows"]
    code, amount = (str(f["id"]) for f in body["fields"])
    # kept exactly as written: leading zeros, inner and leading spaces, no number formatting
    assert [row[code] for row in rows] == ["1", " 0 7", "007"]
    assert [row[amount] for row in rows] == ["5", "6.25", "7"]


async def test_a_value_that_does_not_fit_a_set_type_is_a_400_naming_it(api: Caller) -> None:
    before = await counts(api)
    data = files.csv_bytes([["Zip", "Name"], ["02134", "a"], ["n/a", "b"], ["SW1A 1AA", "c"]])
    r = await create(api, data, field_types='{"Zip": "decimal"}')
    body = assert_error(r, 400)
    # "02134" reads as a number once the user says so; "n/a" is missing (empty), not a problem
    assert body["details"] == [
        {"row": 4, "column": "Zip", "value": "SW1A 1AA", "message": "is not a valid decimal"}
    ]
    assert "row 4, column 'Zip': 'SW1A 1AA'" in body["error"]
    assert await counts(api) == before
    # the dry run of the same upload lists the problem instead
    r = await create(api, data, params={"dry_run": "true"}, field_types='{"Zip": "decimal"}')
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["problem_count"] == 1
    assert preview["problems"] == body["details"]
    assert preview["sample"][2]["Zip"] == "SW1A 1AA"  # shown as the file's text
    assert preview["sample"][0]["Zip"] == 2134
    assert preview["fields"][0]["reasons"] == "set by field_types"
    assert await counts(api) == before


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"field_types": "{not json"}, "not valid JSON"),
        ({"field_types": '["Zip"]'}, "JSON object"),
        ({"field_types": '{"Zip": "money"}'}, "not a field type"),
        ({"field_types": '{"Zip": 3}'}, "not a field type"),
        ({"field_types": '{"Postcode": "char"}'}, "no column"),
        ({"field_types": '{"Zip": "char", "zip": "char"}'}, "same column"),
        ({"column_map": '{"Zip": 1}'}, "append-from-file only"),
        ({"key_fields": "[1]"}, "append-from-file only"),
        ({"dry_run": "true"}, "query parameter"),
        ({"async": "true"}, "query parameter"),
        ({"dryrun": "true"}, "Unknown form field `dryrun`"),
    ],
)
async def test_bad_options_on_create_are_400s(
    api: Caller, form: dict[str, str], words: str
) -> None:
    before = await counts(api)
    data = files.csv_bytes([["Zip", "Name"], ["02134", "a"]])
    body = assert_error(await create(api, data, **form), 400)
    assert words in body["error"], body
    assert await counts(api) == before


# ----------------------------------------------------------------------------- column_map


async def item(api: Caller) -> dict[str, Any]:
    data = files.csv_bytes([["Region", "Amount", "Notes"], ["North", "10", "x"]])
    r = await create(api, data)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_column_map_takes_precedence_over_headers(api: Caller) -> None:
    target = await item(api)
    ids = {f["field_label"]: f["id"] for f in target["fields"]}
    data = files.csv_bytes(
        [["Amount (EUR)", "Notes", "region", "Amount"], ["12.5", "y", "South", "99"]]
    )
    mapping = {"Amount (EUR)": ids["Amount"], "Amount": None, "Notes": str(ids["Notes"])}
    r = await append(api, target["id"], data, column_map=json.dumps(mapping))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matched_columns"] == ["Amount (EUR)", "Notes", "region"]
    assert body["skipped_columns"] == ["Amount"]
    rows = (await api.client.get(f"/data-items/{target['id']}/rows/")).json()["rows"]
    assert rows[1][str(ids["Amount"])] == 12.5
    assert rows[1][str(ids["Region"])] == "South"
    assert rows[1][str(ids["Notes"])] == "y"


async def test_bad_column_maps_are_400s_and_append_nothing(api: Caller, intruder: Caller) -> None:
    target = await item(api)
    other = await item(api)
    theirs = await item(intruder)
    ids = {f["field_label"]: f["id"] for f in target["fields"]}
    data = files.csv_bytes([["Amount", "Notes"], ["1", "z"]])
    cases = [
        ({"Amount": other["fields"][1]["id"]}, "not a field of data item"),
        ({"Amount": theirs["fields"][1]["id"]}, "not a field of data item"),
        ({"Amount": 2**62}, "not a field of data item"),
        ({"Amount": ids["Notes"], "Notes": ids["Notes"]}, "more than one column"),
        ({"Total": ids["Amount"]}, "no column"),
        ({"Amount": "x"}, "not a field id"),
        ({"Amount": 1.5}, "not a field id"),
        ({"Amount": True}, "not a field id"),
        ({"Amount": -3}, "not a field id"),
        ({"Amount": "²"}, "not a field id"),
        ({"Amount": "①"}, "not a field id"),
        ({"Amount": "\u0661"}, "not a field id"),  # Arabic-Indic one: not read as field 1
    ]
    for mapping, words in cases:
        r = await append(api, target["id"], data, column_map=json.dumps(mapping))
        body = assert_error(r, 400)
        assert words in body["error"], (mapping, body)
    body = assert_error(await append(api, target["id"], data, column_map="[1]"), 400)
    assert "JSON object" in body["error"]
    detail = (await api.client.get(f"/data-items/{target['id']}/")).json()
    assert detail["row_count"] == 1 and len(detail["reference_files"]) == 1


async def test_field_types_on_append_set_new_fields_only(api: Caller) -> None:
    target = await item(api)
    data = files.csv_bytes([["Region", "Zip"], ["East", "123"]])
    r = await append(api, target["id"], data, field_types='{"Zip": "char"}')
    body = assert_error(r, 400)
    assert "add_new_fields" in body["error"]
    r = await append(
        api, target["id"], data, field_types='{"Region": "decimal"}', add_new_fields="true"
    )
    body = assert_error(r, 400)
    assert "new fields only" in body["error"]
    r = await append(
        api,
        target["id"],
        data,
        field_types='{"Zip": "char", "Region": "char"}',
        add_new_fields="true",
    )
    assert r.status_code == 200, r.text
    detail = (await api.client.get(f"/data-items/{target['id']}/")).json()
    assert by_label(detail)["Zip"]["field_type"] == "char"  # inferred, it would be decimal


# ----------------------------------------------------------------------------- dry run: append


async def test_an_append_dry_run_lists_what_would_fail_and_writes_nothing(api: Caller) -> None:
    target = await item(api)
    before = (await api.client.get(f"/data-items/{target['id']}/")).json()
    data = files.csv_bytes(
        [["Amount", "Region", "Extra", "Other"], ["5", "W", "1", "a"], ["five", "E", "2", "b"]]
    )
    r = await append(
        api,
        target["id"],
        data,
        params={"dry_run": "true"},
        add_new_fields="true",
        column_map='{"Other": null}',
    )
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["rows"] == 2
    assert preview["matched_columns"] == ["Amount", "Region"]
    assert preview["new_columns"] == ["Extra"]
    assert preview["skipped_columns"] == ["Other"]
    assert [(f["column"], f["field_type"], f["new"]) for f in preview["fields"]] == [
        ("Amount", "decimal", False),
        ("Region", "char", False),
        ("Extra", "decimal", True),
    ]
    assert preview["problems"] == [
        {"row": 3, "column": "Amount", "value": "five", "message": "is not a valid decimal"}
    ]
    after = (await api.client.get(f"/data-items/{target['id']}/")).json()
    assert after == before  # no rows, no fields, no stored file
    # the real append fails on exactly that problem
    r = await append(api, target["id"], data, add_new_fields="true", column_map='{"Other": null}')
    assert assert_error(r, 400)["details"] == preview["problems"]


async def test_an_append_dry_run_of_another_accounts_item_is_a_404(
    api: Caller, intruder: Caller
) -> None:
    target = await item(api)
    r = await append(intruder, target["id"], SALES, params={"dry_run": "true"})
    assert_error(r, 404)


# ----------------------------------------------------------------------------- import jobs


async def test_options_are_kept_by_import_jobs(api: Caller) -> None:
    target = await item(api)
    ids = {f["field_label"]: f["id"] for f in target["fields"]}
    data = files.csv_bytes([["Betrag", "Code"], ["3", "0042"], ["4", "17"]])
    job = await start_append(
        api.client,
        target["id"],
        data,
        column_map=json.dumps({"Betrag": ids["Amount"]}),
        field_types='{"Code": "text"}',
        add_new_fields="true",
    )
    done = await wait_job(api.client, job["id"])
    assert done["status"] == "succeeded", done
    detail = (await api.client.get(f"/data-items/{target['id']}/")).json()
    assert by_label(detail)["Code"]["field_type"] == "text"
    rows = (await api.client.get(f"/data-items/{target['id']}/rows/")).json()["rows"]
    assert [r.get(str(ids["Amount"])) for r in rows] == [10, 3, 4]
    r = await api.client.post(
        CREATE,
        params={"async": "true"},
        data={"data_name": "Typed", "field_types": '{"Code": "decimal"}'},
        files={"data_file": ("t.csv", files.csv_bytes([["Code"], ["1"], ["x1"]]))},
    )
    assert r.status_code == 202, r.text
    failed = await wait_job(api.client, r.json()["id"])
    assert failed["status"] == "failed"
    assert "x1" in json.dumps(failed["error"])
