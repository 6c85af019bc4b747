"""The reference file is stored while the upload is read and typed (the connection would wait
otherwise). A file refused by the reader after that store started leaves nothing: no item, no
reference file, no rows; and the request's transaction is usable again by the next upload."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.ingestion import files

pytestmark = pytest.mark.asyncio

CREATE = "/data-items/create-from-file/"
HEADER = ["Region", "Revenue", "Notes"]


def big_csv(rows: int, *, ragged: bool) -> bytes:
    """Several MiB (the reference file is stored in 1 MiB chunks), optionally with one field
    too many in its second row, so that the reader gives up while the store is under way."""
    body = [[f"Region {i % 7}", f"{i}.25", "note " + "x" * 200] for i in range(rows)]
    if ragged:
        body.insert(1, ["North", "1", "a", "one too many"])
    return files.csv_bytes([HEADER, *body])


async def chunks_of_account_items(app: FastAPI, account_item_ids: list[int]) -> int:
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(*) FROM reference_files f "
                "JOIN reference_file_chunks c ON c.file_id = f.id "
                "WHERE f.data_item_id = ANY(:ids)"
            ),
            {"ids": account_item_ids},
        )
        return int(result.scalar_one())


async def orphan_reference_files(app: FastAPI) -> int:
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(*) FROM reference_files f "
                "WHERE NOT EXISTS (SELECT 1 FROM data_items d WHERE d.id = f.data_item_id)"
            )
        )
        return int(result.scalar_one())


async def test_a_create_refused_by_the_reader_leaves_nothing(api: Caller, app: FastAPI) -> None:
    r = await api.client.post(
        CREATE,
        data={"data_name": "Ragged"},
        files={"data_file": ("ragged.csv", big_csv(40_000, ragged=True))},
    )
    body = assert_error(r, 400, "INVALID_FILE")
    assert "row 3 " in body["error"].lower()
    assert (await api.client.get("/data-items/")).json()["data_items"] == []
    assert await orphan_reference_files(app) == 0
    # the same connection pool, the next upload: stored and readable as sent
    good = big_csv(40_000, ragged=False)
    created = await api.client.post(
        CREATE, data={"data_name": "Fine"}, files={"data_file": ("fine.csv", good)}
    )
    assert created.status_code == 201, created.text
    item: dict[str, Any] = created.json()
    assert item["rows_created"] == 40_000
    ref = item["reference_file"]
    download = await api.client.get(f"/data-items/{item['id']}/reference-files/{ref['id']}/")
    assert download.status_code == 200 and download.content == good
    assert download.headers["content-type"].startswith("text/csv")


async def test_an_append_refused_by_the_reader_leaves_the_item_as_it_was(
    api: Caller, app: FastAPI
) -> None:
    first = big_csv(1_000, ragged=False)
    r = await api.client.post(
        CREATE, data={"data_name": "Item"}, files={"data_file": ("first.csv", first)}
    )
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    append = f"/data-items/{item['id']}/append-from-file/"
    chunks = await chunks_of_account_items(app, [item["id"]])

    refused: httpx.Response = await api.client.post(
        append, files={"data_file": ("more.csv", big_csv(40_000, ragged=True))}
    )
    assert_error(refused, 400, "INVALID_FILE")
    detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
    assert detail["row_count"] == 1_000 and len(detail["reference_files"]) == 1
    assert await chunks_of_account_items(app, [item["id"]]) == chunks

    more = big_csv(2_000, ragged=False)
    ok = await api.client.post(append, files={"data_file": ("more.csv", more)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rows_appended"] == 2_000
    detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
    assert detail["row_count"] == 3_000 and len(detail["reference_files"]) == 2
