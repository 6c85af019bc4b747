"""Concurrent writers on one item (bulk inserts, file appends, patches, deletes, field type
changes, all at once): no 5xx (no deadlock), no duplicated row ref, no half-applied write, and
the counters and statistics are exactly what the writes imply."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.ingestion import files

pytestmark = pytest.mark.asyncio


async def all_rows(api: Caller, item_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = await api.client.get(
            f"/data-items/{item_id}/rows/", params={"offset": offset, "limit": 500}
        )
        assert r.status_code == 200
        page = json.loads(r.content, parse_float=Decimal)["rows"]
        rows += page
        if len(page) < 500:
            return rows
        offset += 500


async def test_mixed_concurrent_writers_on_one_item(api: Caller, sales: Sales) -> None:
    base = f"/data-items/{sales.id}"
    seed = [sales.row(region="seed", revenue=i, notes=f"n{i}") for i in range(200)]
    assert (await api.client.post(f"{base}/rows/bulk/", json={"rows": seed})).status_code == 201

    responses: list[httpx.Response] = []

    async def bulk(tag: str) -> None:
        rows = [sales.row(region=tag, revenue=f"{i}.5", closed=i % 2 == 0) for i in range(100)]
        responses.append(await api.client.post(f"{base}/rows/bulk/", json={"rows": rows}))

    async def append(tag: str) -> None:
        data = files.csv_bytes([["Region", "Revenue"], *[[tag, str(i)] for i in range(50)]])
        responses.append(
            await api.client.post(
                f"{base}/append-from-file/", files={"data_file": (f"{tag}.csv", data)}
            )
        )

    async def delete(ref: int) -> None:
        responses.append(await api.client.delete(f"{base}/rows/{ref}/"))

    async def patch(ref: int) -> None:
        responses.append(
            await api.client.patch(
                f"{base}/rows/{ref}/", json={"values": sales.row(revenue=1000 + ref)}
            )
        )

    async def retype(label: str, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            responses.append(
                await api.client.patch(
                    f"{base}/fields/{sales.f[label]}/", json={"field_type": kind}
                )
            )

    async def read() -> None:
        for _ in range(3):
            responses.append(await api.client.get(f"{base}/summary/"))
            responses.append(
                await api.client.get(f"{base}/rows/", params={"search": "seed", "limit": 5})
            )

    await asyncio.gather(
        *(bulk(f"B{i}") for i in range(3)),
        *(append(f"A{i}") for i in range(2)),
        *(delete(ref) for ref in range(0, 40, 2)),
        *(patch(ref) for ref in range(1, 20, 2)),
        retype("Notes", ("char", "text")),
        retype("Closed", ("char", "boolean")),
        read(),
    )
    statuses = Counter(r.status_code for r in responses)
    assert all(s < 500 for s in statuses), [r.text for r in responses if r.status_code >= 500]
    assert set(statuses) <= {200, 201}, statuses

    rows = await all_rows(api, sales.id)
    refs = [int(r["_row_ref"]) for r in rows]
    assert len(refs) == len(set(refs)) == 200 + 300 + 100 - 20
    assert refs == sorted(refs)
    # every multi-row write landed whole, in one contiguous block of refs
    for tag, size in [*((f"B{i}", 100) for i in range(3)), *((f"A{i}", 50) for i in range(2))]:
        block = [int(r["_row_ref"]) for r in rows if r[sales.f["Region"]] == tag]
        assert len(block) == size and block == list(range(block[0], block[0] + size)), tag
    patched = {int(r["_row_ref"]): r[sales.f["Revenue"]] for r in rows if int(r["_row_ref"]) < 20}
    assert all(patched[ref] == 1000 + ref for ref in range(1, 20, 2))

    detail = (await api.client.get(f"{base}/")).json()
    assert detail["row_count"] == len(rows)
    summary = json.loads((await api.client.get(f"{base}/summary/")).content, parse_float=Decimal)
    by_label = {s["field_label"]: s for s in summary["field_summaries"]}
    revenues = [r[sales.f["Revenue"]] for r in rows if r[sales.f["Revenue"]] is not None]
    assert by_label["Revenue"]["total_values"] == len(revenues)
    assert by_label["Revenue"]["sum"] == sum(revenues)
    assert by_label["Region"]["unique_count"] == len({r[sales.f["Region"]] for r in rows})
    trues = sum(1 for r in rows if r[sales.f["Closed"]] is True)
    assert (
        by_label["Closed"]["field_type"] == "boolean" and by_label["Closed"]["true_count"] == trues
    )
