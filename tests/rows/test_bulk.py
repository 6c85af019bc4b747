"""POST …/rows/bulk/ reads each field's distinct values once (app/rows/bulk.py): values that
compare equal in Python but read differently stay apart, every row is stored exactly as a
single-row write stores it, problems are named as a single-row write names them, and the
statistics are exact."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from app.rows import bulk
from app.rows.values import document, field_infos, parse_values
from tests.conftest import Caller
from tests.helpers import assert_error, create_item
from tests.transfer.helpers import exact

pytestmark = pytest.mark.asyncio

FIELDS: list[dict[str, Any]] = [
    {"field_label": "Name", "field_type": "char"},
    {"field_label": "Amount", "field_type": "decimal"},
    {"field_label": "Day", "field_type": "date"},
    {"field_label": "Done", "field_type": "boolean"},
    {"field_label": "Note", "field_type": "text", "field_required": True},
]

# values equal in Python (1 == 1.0 == True, 0.0 == -0.0) that each field reads differently
TRICKY: list[list[Any]] = [
    [1, 1, "2026-01-15", True, "a"],
    [1.0, 1.0, "2026-01-15T00:00:00", 1, "a"],
    [True, "1.000", "15 Jan 2026", "yes", "a"],
    [0.0, 0.0, None, 0, "ctl\x01"],
    [-0.0, -0.0, "", False, "é 😀"],
    ["  padded  ", "12345678901234567890.123456789000", "2026-02-03T09:15:00.5", None, "b"],
    [None, None, None, None, "c"],
]


async def item_with(api: Caller, fields: list[dict[str, Any]]) -> tuple[int, list[str]]:
    item = await create_item(api.client, "Bulk", fields)
    return int(item["id"]), [str(f["id"]) for f in item["fields"]]


def keyed(keys: list[str], rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in zip(keys, row, strict=True)} for row in rows]


class TestBulkReading:
    async def test_rows_are_stored_as_single_row_writes_store_them(self, api: Caller) -> None:
        bulk_id, keys = await item_with(api, FIELDS)
        one_id, one_keys = await item_with(api, FIELDS)
        r = await api.client.post(
            f"/data-items/{bulk_id}/rows/bulk/", json={"rows": keyed(keys, TRICKY)}
        )
        assert r.status_code == 201, r.text
        for row in keyed(one_keys, TRICKY):
            r1 = await api.client.post(f"/data-items/{one_id}/rows/", json={"values": row})
            assert r1.status_code == 201, r1.text
        many = exact(await api.client.get(f"/data-items/{bulk_id}/rows/?limit=500"))["rows"]
        ones = exact(await api.client.get(f"/data-items/{one_id}/rows/?limit=500"))["rows"]
        rename = dict(zip(one_keys, keys, strict=True))
        assert many == [{rename.get(k, k): v for k, v in row.items()} for row in ones]
        names = [row[keys[0]] for row in many]
        assert names == ["1", "1.0", "true", "0.0", "-0.0", "  padded  ", None]
        assert [row[keys[1]] for row in many][:3] == [Decimal(1)] * 3
        assert [row[keys[3]] for row in many][:5] == [True, True, True, False, False]
        summary = exact(await api.client.get(f"/data-items/{bulk_id}/summary/"))
        single = exact(await api.client.get(f"/data-items/{one_id}/summary/"))
        assert [
            {k: v for k, v in s.items() if k != "field_id"} for s in summary["field_summaries"]
        ] == [{k: v for k, v in s.items() if k != "field_id"} for s in single["field_summaries"]]
        # a control character was noted: searches on the item check escaped cells
        r = await api.client.get(f"/data-items/{bulk_id}/rows/", params={"search": "ctl\x01"})
        assert r.json()["total"] == 1

    async def test_problems_as_single_row_writes_name_them(self, api: Caller) -> None:
        item_id, keys = await item_with(api, FIELDS)
        rows = [
            *keyed(keys, TRICKY),
            {keys[1]: "abc", keys[4]: "x"},  # not a number
            {keys[1]: "abc", keys[4]: "x"},  # the same value again: named again
            {keys[0]: "no note"},  # a required field missing
            {keys[4]: "   "},  # a required field empty
            {keys[4]: "x", "999": 1, "_row_ref": "7"},  # an unknown key
            {keys[4]: "x", keys[3]: "perhaps", keys[2]: "31/31/2026"},
        ]
        body = assert_error(
            await api.client.post(f"/data-items/{item_id}/rows/bulk/", json={"rows": rows}), 400
        )
        by_key = field_infos(await fields_of(api, item_id))
        expected = [
            {"row": i, **p}
            for i, row in enumerate(rows)
            for p in parse_values(row, by_key, complete=True).problems
        ]
        assert body["details"] == expected
        assert [d["row"] for d in body["details"]] == [7, 8, 9, 10, 11, 12, 12]
        assert (await api.client.get(f"/data-items/{item_id}/rows/")).json()["total"] == 0

    async def test_documents_match_the_single_row_documents(self, api: Caller) -> None:
        item_id, keys = await item_with(api, FIELDS)
        fields = await fields_of(api, item_id)
        rows = keyed(keys, TRICKY) * 3
        read = bulk.read_rows(rows, fields)
        documents, changes, cells, control, problems = (
            read.documents,
            read.changes,
            read.cells,
            read.control,
            read.problems,
        )
        by_key = field_infos(fields)
        by_id = {info.id: info for info in by_key.values()}
        singles = [parse_values(row, by_key, complete=True).values for row in rows]
        assert not problems and control
        assert [sorted(d[1:-1].split(",")) if d != "{}" else [] for d in documents] == [
            sorted(document(v, by_id)[1:-1].split(",")) if any(v.values()) else [] for v in singles
        ]
        assert cells == sum(1 for v in singles for x in v.values() if x is not None)
        for fid, change in changes.items():
            assert change.added == [v[fid] for v in singles if v.get(fid) is not None]
            assert [type(x) for x in change.added] == [
                type(v[fid]) for v in singles if v.get(fid) is not None
            ]


async def fields_of(api: Caller, item_id: int) -> list[Any]:
    """The item's fields with the attributes the row rules read."""
    r = await api.client.get(f"/data-items/{item_id}/fields/")
    return [
        SimpleNamespace(
            id=int(f["id"]),
            field_label=f["field_label"],
            field_type=f["field_type"],
            field_required=f["field_required"],
        )
        for f in r.json()["fields"]
    ]
