"""Bundles: GET …/bundle/ and POST …/import-bundle/. What one deployment exports another imports
(the same labels, types, values, refs, statistics and widgets); a bad bundle is a 400 that
names the problem and leaves nothing; an import lands in the caller's account only."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error
from tests.transfer.helpers import (
    detail,
    exact,
    fill,
    item_names,
    partitions_after_last_item,
    rows_by_label,
    summary_by_label,
    types,
)

pytestmark = pytest.mark.asyncio

IMPORT = "/data-items/import-bundle/"


async def bundle_of(api: Caller, item_id: int) -> bytes:
    r = await api.client.get(f"/data-items/{item_id}/bundle/")
    assert r.status_code == 200, r.text
    return r.content


async def import_json(api: Caller, data: bytes, **params: str) -> dict[str, Any]:
    r = await api.client.post(
        IMPORT, content=data, params=params, headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def base() -> dict[str, Any]:
    return {
        "format": "data-items-bundle",
        "version": 1,
        "item": {"data_name": "Moved"},
        "fields": [
            {"id": 11, "field_label": "Region"},
            {"id": 12, "field_label": "Revenue", "field_type": "decimal"},
        ],
        "widgets": [],
        "rows": [{"11": "North", "12": 1.5}, {"11": "South"}],
    }


class TestExport:
    async def test_document(self, api: Caller, sales: Sales) -> None:
        widget = await fill(api, sales)
        r = await api.client.get(f"/data-items/{sales.id}/bundle/")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert "Sales.bundle.json" in r.headers["content-disposition"]
        body = exact(r)
        assert list(body) == [
            "format", "version", "exported_at", "item", "fields", "widgets", "rows",
        ]  # fmt: skip
        assert body["format"] == "data-items-bundle" and body["version"] == 1
        assert {k: body["item"][k] for k in ("id", "data_name", "row_count", "next_row_ref")} == {
            "id": sales.id,
            "data_name": "Sales",
            "row_count": 3,
            "next_row_ref": 4,
        }
        assert [f["id"] for f in body["fields"]] == [int(v) for v in sales.f.values()]
        assert body["rows"][1] == {
            "_row_ref": "1",
            sales.f["Region"]: "South",
            sales.f["Revenue"]: Decimal("12345678901234567890.25"),
            sales.f["Closed"]: False,
        }
        assert b"12345678901234567890.25" in r.content
        assert [row["_row_ref"] for row in body["rows"]] == ["0", "1", "3"]
        (w,) = body["widgets"]
        assert w["label_field"] == widget["label_field"]
        assert w["filter_config"] == widget["filter_config"]
        assert [s["value_field"] for s in w["series"]] == [
            s["value_field"] for s in widget["series"]
        ]


class TestImport:
    async def test_what_is_exported_comes_back(self, api: Caller, sales: Sales) -> None:
        await fill(api, sales)
        new = await import_json(api, await bundle_of(api, sales.id))
        original = await detail(api, sales.id)
        assert new["id"] != sales.id and new["data_name"] == "Sales"
        assert types(new) == types(original) and new["row_count"] == 3
        assert await rows_by_label(api, new["id"]) == await rows_by_label(api, sales.id)
        assert await summary_by_label(api, new["id"]) == await summary_by_label(api, sales.id)
        # a bundle of the import is the same document but for ids and timestamps
        first = json.loads(await bundle_of(api, sales.id), parse_float=Decimal)
        again = json.loads(await bundle_of(api, new["id"]), parse_float=Decimal)
        ids = {f["id"]: g["id"] for f, g in zip(first["fields"], again["fields"], strict=True)}
        (w,) = first["widgets"]
        w["label_field"] = ids[w["label_field"]]
        w["filter_config"]["conditions"][0]["field"] = ids[
            w["filter_config"]["conditions"][0]["field"]
        ]
        for s in w["series"]:
            s["value_field"] = ids[s["value_field"]]
        assert again["widgets"] == [w]
        assert again["rows"] == [
            {k if k == "_row_ref" else str(ids[int(k)]): v for k, v in row.items()}
            for row in first["rows"]
        ]
        r = await api.client.post(f"/data-items/{new['id']}/rows/", json={"values": {}})
        assert r.json()["row_ref"] == "4"  # refs are never reused, here either
        (widget,) = exact(await api.client.get(f"/data-items/{new['id']}/widgets/"))["widgets"]
        data = exact(await api.client.get(f"/data-items/{new['id']}/widgets/{widget['id']}/data/"))
        assert data["labels"] == ["North", "South"]
        assert [d["data"] for d in data["datasets"]] == [
            [Decimal("45200.5"), Decimal("12345678901234567890.25")],
            [1, 1],
        ]

    async def test_lands_in_the_importing_account_only(
        self, api: Caller, intruder: Caller, sales: Sales
    ) -> None:
        await fill(api, sales)
        moved = await import_json(intruder, await bundle_of(api, sales.id))
        assert await item_names(intruder) == ["Sales"]
        assert await item_names(api) == ["Sales"]
        assert_error(await api.client.get(f"/data-items/{moved['id']}/"), 404)
        assert await rows_by_label(intruder, moved["id"]) == await rows_by_label(api, sales.id)

    async def test_as_a_file_upload_with_a_new_name(self, api: Caller, sales: Sales) -> None:
        await fill(api, sales)
        r = await api.client.post(
            IMPORT,
            params={"data_name": "  From a file "},
            files={"bundle_file": ("sales.bundle.json", await bundle_of(api, sales.id))},
        )
        assert r.status_code == 201, r.text
        assert r.json()["data_name"] == "From a file"
        assert await rows_by_label(api, r.json()["id"]) == await rows_by_label(api, sales.id)

    async def test_written_by_hand(self, api: Caller) -> None:
        bundle = {
            "rows": [
                {"12": "31,500.00", "11": "a", "13": "13/01/2026", "14": "yes"},
                {"_row_ref": 5, "11": "b", "12": 2},
                {"11": "c"},
            ],
            "fields": [
                {"id": 14, "field_label": "Ok", "field_type": "boolean", "field_order": 3},
                {"id": 12, "field_label": "Amount", "field_type": "decimal", "field_order": 1},
                {"id": 11, "field_label": "Name", "field_order": 0, "field_required": True},
                {"id": 13, "field_label": "When", "field_type": "date", "field_order": 2},
            ],
            "item": {"data_name": "By hand"},
            "version": 1,
            "format": "data-items-bundle",
        }
        new = await import_json(api, json.dumps(bundle).encode())
        assert [f["field_label"] for f in new["fields"]] == ["Name", "Amount", "When", "Ok"]
        assert new["fields"][0]["field_required"] is True
        rows = await rows_by_label(api, new["id"])
        assert rows == [
            {"_row_ref": "0", "Name": "a", "Amount": Decimal(31500), "When": "2026-01-13", "Ok": True},
            {"_row_ref": "5", "Name": "b", "Amount": Decimal(2), "When": None, "Ok": None},
            {"_row_ref": "6", "Name": "c", "Amount": None, "When": None, "Ok": None},
        ]  # fmt: skip
        r = await api.client.post(f"/data-items/{new['id']}/rows/", json={"values": {}})
        assert_error(r, 400)  # Name is required for new rows
        summary = await summary_by_label(api, new["id"])
        assert summary["Amount"]["sum"] == Decimal(31502)


Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    def apply(b: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = b
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _widget(**w: Any) -> Mutation:
    return _set("widgets", [{"chart_type": "bar", **w}])


BAD: list[tuple[str, Mutation, list[str]]] = [
    ("format", _set("format", "other-thing"), ["format", "data-items-bundle"]),
    ("version", _set("version", 2), ["version 2", "version 1"]),
    ("unknown key", _set("extra", 1), ["unknown key 'extra'"]),
    ("no item", lambda b: b.pop("item"), ["item", "Field required"]),
    ("no name", _set("item.data_name", " "), ["item.data_name"]),
    ("field type", _set("fields.1.field_type", "money"), ["fields.1.field_type"]),
    ("field id twice", _set("fields.1.id", 11), ["fields.1.id", "used twice"]),
    ("label twice", _set("fields.1.field_label", "REGION"), ["'REGION' is used twice"]),
    ("label field", _widget(label_field=99), ["widgets.0.label_field", "field 99"]),
    (
        "series field",
        _widget(series=[{"value_field": 98}]),
        ["widgets.0.series.0.value_field", "field 98"],
    ),
    (
        "filter field",
        _widget(filter_config={"conditions": [{"field": 97, "op": "is_empty"}]}),
        ["widgets.0.filter_config.conditions.0.field"],
    ),
    ("chart type", _widget(chart_type="radar"), ["widgets.0.chart_type"]),
    ("rows kind", _set("rows", {"11": "x"}), ["rows", "must be an array"]),
    ("row kind", _set("rows.1", ["South"]), ["row 1", "must be an object"]),
    ("bad value", _set("rows.1.12", "abc"), ["row 1", "12", "'abc'", "not a number"]),
    ("unknown row key", _set("rows.0.99", "x"), ["row 0", "99", "not a field id"]),
    ("NUL in text", _set("rows.0.11", "a\u0000b"), ["row 0", "NUL"]),
    ("refs not increasing", _set("rows.1._row_ref", "0"), ["row 1", "_row_ref", "greater"]),
    ("ref not digits", _set("rows.0._row_ref", "-1"), ["row 0", "_row_ref"]),
    ("row count", _set("item.row_count", 3), ["3 rows", "holds 2"]),
    ("next row ref", _set("item.next_row_ref", 1), ["next_row_ref", "never reused"]),
]


class TestBadBundles:
    @pytest.mark.parametrize(("mutate", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
    async def test_400_naming_the_problem_and_nothing_left(
        self, api: Caller, app: FastAPI, mutate: Mutation, words: list[str]
    ) -> None:
        bundle = copy.deepcopy(base())
        mutate(bundle)
        r = await api.client.post(
            IMPORT, content=json.dumps(bundle), headers={"content-type": "application/json"}
        )
        body = assert_error(r, 400)
        text = json.dumps(body)
        assert all(w in text for w in words), body
        assert await item_names(api) == []
        assert await partitions_after_last_item(app) == 0

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (b"", ["empty"]),
            (b"{not json", ["not valid JSON"]),
            (b"[]", ["JSON object"]),
            (b'{"format": "data-items-bundle"} trailing', ["not valid JSON"]),
            (b'{"rows": [], "rows": []}', ["'rows' twice"]),
            (b'{"item": "\xff"}', ["not valid JSON"]),
        ],
    )
    async def test_not_a_bundle(self, api: Caller, data: bytes, words: list[str]) -> None:
        r = await api.client.post(
            IMPORT, content=data, headers={"content-type": "application/json"}
        )
        body = assert_error(r, 400)
        assert all(w in body["error"] for w in words), body
        assert await item_names(api) == []

    async def test_a_bad_row_after_rows_were_written_leaves_nothing(
        self, api: Caller, app: FastAPI
    ) -> None:
        bundle = base()
        bundle["rows"] = [{"11": f"r{i}", "12": i} for i in range(12_000)]
        bundle["rows"][11_500]["12"] = "twelve"
        r = await api.client.post(
            IMPORT, content=json.dumps(bundle), headers={"content-type": "application/json"}
        )
        body = assert_error(r, 400)
        assert body["details"] == [
            {
                "row": 11_500,
                "field": "12",
                "value": "twelve",
                "message": "is not a number (decimal field 'Revenue')",
            }
        ]
        assert await item_names(api) == [] and await partitions_after_last_item(app) == 0

    async def test_every_problem_is_counted_the_first_100_listed(self, api: Caller) -> None:
        bundle = base()
        bundle["rows"] = [{"12": "x"} for _ in range(150)]
        r = await api.client.post(
            IMPORT, content=json.dumps(bundle), headers={"content-type": "application/json"}
        )
        body = assert_error(r, 400)
        assert "150 problems" in body["error"] and len(body["details"]) == 100

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"content": b"{}", "headers": {"content-type": "text/plain"}},
            {"content": b"{}"},
            {"files": {"other_file": ("b.json", b"{}")}},
            {"files": {"bundle_file": ("b.json", b"{}")}, "data": {"data_name": "x"}},
        ],
    )
    async def test_how_it_must_be_sent(self, api: Caller, kwargs: dict[str, Any]) -> None:
        body = assert_error(await api.client.post(IMPORT, **kwargs), 400)
        assert "bundle" in body["error"] or "field" in body["error"], body
        assert await item_names(api) == []

    async def test_a_bad_name(self, api: Caller) -> None:
        data = json.dumps(base()).encode()
        for name in (" ", "x" * 256):
            r = await api.client.post(
                IMPORT,
                content=data,
                params={"data_name": name},
                headers={"content-type": "application/json"},
            )
            assert_error(r, 400)
        assert await item_names(api) == []
