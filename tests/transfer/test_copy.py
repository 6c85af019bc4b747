"""POST …/copy/: everything copied with new ids and the same row refs, statistics right at once,
widgets re-pointed, options, independence of copy and original, tenancy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error
from tests.ingestion import files
from tests.transfer.helpers import (
    detail,
    exact,
    fill,
    item_names,
    rows_by_label,
    summary_by_label,
    types,
    upload,
)

pytestmark = pytest.mark.asyncio


async def copy(api: Caller, item_id: int, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"/data-items/{item_id}/copy/", json=body or None)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


class TestCopy:
    async def test_everything_is_copied_with_new_ids(self, api: Caller, sales: Sales) -> None:
        await fill(api, sales)
        r = await api.client.post(f"/data-items/{sales.id}/copy/")  # no body at all
        assert r.status_code == 201, r.text
        new = r.json()
        original = await detail(api, sales.id)
        assert set(new) == set(original)
        assert new["id"] != sales.id and new["data_name"] == "Sales (copy)"
        assert new["row_count"] == 3 and new["reference_files"] == []
        assert types(new) == types(original)
        strip = ("id",)
        assert [{k: v for k, v in f.items() if k not in strip} for f in new["fields"]] == [
            {k: v for k, v in f.items() if k not in strip} for f in original["fields"]
        ]
        assert not {f["id"] for f in new["fields"]} & {f["id"] for f in original["fields"]}
        assert await rows_by_label(api, new["id"]) == await rows_by_label(api, sales.id)
        assert [r["_row_ref"] for r in await rows_by_label(api, new["id"])] == ["0", "1", "3"]
        # statistics: exact at once (copied, not recomputed)
        assert await summary_by_label(api, new["id"]) == await summary_by_label(api, sales.id)
        # the next row ref continues where the original's would
        r = await api.client.post(f"/data-items/{new['id']}/rows/", json={"values": {}})
        assert r.json()["row_ref"] == "4"

    async def test_widgets_point_at_the_new_fields(self, api: Caller, sales: Sales) -> None:
        old = await fill(api, sales)
        new = await copy(api, sales.id)
        ids = {
            int(o["id"]): int(n["id"])
            for o, n in zip((await detail(api, sales.id))["fields"], new["fields"], strict=True)
        }
        (widget,) = exact(await api.client.get(f"/data-items/{new['id']}/widgets/"))["widgets"]
        assert widget["id"] != old["id"] and widget["data_item"] == new["id"]
        assert widget["label_field"] == ids[old["label_field"]]
        assert widget["filter_config"]["conditions"][0]["field"] == ids[int(sales.f["Revenue"])]
        assert widget["chart_options"] == old["chart_options"]
        assert [s["value_field"] for s in widget["series"]] == [
            ids[s["value_field"]] for s in old["series"]
        ]
        assert [(s["aggregation"], s["label"], s["color"]) for s in widget["series"]] == [
            (s["aggregation"], s["label"], s["color"]) for s in old["series"]
        ]
        copied = exact(
            await api.client.get(f"/data-items/{new['id']}/widgets/{widget['id']}/data/")
        )
        source = exact(await api.client.get(f"/data-items/{sales.id}/widgets/{old['id']}/data/"))
        for body in (copied, source):
            for dataset in body["datasets"]:
                dataset.pop("series_id")
        assert copied == source

    async def test_stale_statistics_come_out_right(self, api: Caller, sales: Sales) -> None:
        await fill(api, sales)
        # a replaced value makes statistics stale until recomputed; the copy must not care
        r = await api.client.patch(
            f"/data-items/{sales.id}/rows/0/", json={"values": {sales.f["Revenue"]: "7"}}
        )
        assert r.status_code == 200
        new = await copy(api, sales.id)
        summary = await summary_by_label(api, new["id"])
        assert str(summary["Revenue"]["sum"]) == "12345678901234567894.25"
        assert summary == await summary_by_label(api, sales.id)

    async def test_name_description_and_reference_files(self, api: Caller) -> None:
        item = await upload(api, "sales.csv", files.sales_csv(), data_name="x" * 255)
        plain = await copy(api, item["id"])
        assert plain["data_name"] == "x" * 248 + " (copy)" and plain["reference_files"] == []
        named = await copy(
            api,
            item["id"],
            data_name="  What-if  ",
            data_description="scenario",
            include_reference_files=True,
        )
        assert named["data_name"] == "What-if" and named["data_description"] == "scenario"
        (ref,) = named["reference_files"]
        original_ref = item["reference_file"]
        assert ref["id"] != original_ref["id"] and ref["filename"] == "sales.csv"
        download = await api.client.get(f"/data-items/{named['id']}/reference-files/{ref['id']}/")
        assert download.status_code == 200 and download.content == files.sales_csv()

    @pytest.mark.parametrize(
        "body",
        [
            {"data_name": ""},
            {"data_name": "x" * 256},
            {"unknown": 1},
            {"data_name": None, "x": 1},
            0.5,
            [],
        ],
    )
    async def test_bad_bodies_are_400_and_copy_nothing(
        self, api: Caller, sales: Sales, body: Any
    ) -> None:
        assert_error(await api.client.post(f"/data-items/{sales.id}/copy/", json=body), 400)
        assert await item_names(api) == ["Sales"]


class TestIndependence:
    async def test_changing_one_never_changes_the_other(self, api: Caller, sales: Sales) -> None:
        await fill(api, sales)
        new = await copy(api, sales.id)
        before_original = await rows_by_label(api, sales.id)
        before_copy = await rows_by_label(api, new["id"])
        new_fields = {f["field_label"]: str(f["id"]) for f in new["fields"]}
        # change the copy: a cell, a row, a field, the widget
        r = await api.client.patch(
            f"/data-items/{new['id']}/rows/0/", json={"values": {new_fields["Region"]: "Copy"}}
        )
        assert r.status_code == 200
        assert (await api.client.delete(f"/data-items/{new['id']}/rows/1/")).status_code == 200
        r = await api.client.patch(
            f"/data-items/{new['id']}/fields/{new_fields['Notes']}/", json={"field_label": "N2"}
        )
        assert r.status_code == 200
        assert await rows_by_label(api, sales.id) == before_original
        assert [f["field_label"] for f in (await detail(api, sales.id))["fields"]][-1] == "Notes"
        # change the original: a cell, delete a field, then delete the item
        r = await api.client.patch(
            f"/data-items/{sales.id}/rows/3/", json={"values": {sales.f["Region"]: "Orig"}}
        )
        assert r.status_code == 200
        r = await api.client.delete(f"/data-items/{sales.id}/fields/{sales.f['Revenue']}/")
        assert r.status_code == 200
        after = await rows_by_label(api, new["id"])
        assert [row["_row_ref"] for row in after] == ["0", "3"]
        renamed = {("N2" if k == "Notes" else k): v for k, v in before_copy[2].items()}
        assert after[0]["Region"] == "Copy" and after[1] == renamed
        (widget,) = exact(await api.client.get(f"/data-items/{new['id']}/widgets/"))["widgets"]
        assert len(widget["series"]) == 2  # the original lost a series with its field
        assert (await api.client.delete(f"/data-items/{sales.id}/")).status_code == 200
        assert await rows_by_label(api, new["id"]) == after
