"""Uploads over HTTP: the account's reference files across its items (synchronous uploads, appends
and import jobs), paging, the detail, deleting a file while its rows stay, tenancy on every
route, and bad ids."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.ingestion import files
from tests.jobs.helpers import start_append, start_create, wait_job

pytestmark = pytest.mark.asyncio

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
UPLOAD_KEYS = {
    "id", "data_item_id", "data_item_name", "filename", "content_type", "size", "sha256",
    "created_at", "job", "download_url",
}  # fmt: skip
BAD_IDS = ["0", "-1", str(2**63), str(2**64), "abc", "1.5", "1e3", "%20"]


def table(*regions: str) -> bytes:
    """A small CSV: a row per region."""
    return files.csv_bytes([["Region", "Revenue"], *[[r, "1.5"] for r in regions]])


def sales_rows() -> bytes:
    return table("North", "South", "East", "West")


def more_rows() -> bytes:
    """A row to append to an item made from `sales_rows()`."""
    return table("North")


async def create(api: Caller, name: str, data: bytes, filename: str = "sales.csv") -> Any:
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": name},
        files={"data_file": (filename, data)},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def append(api: Caller, item_id: int, data: bytes, filename: str = "more.csv") -> Any:
    r = await api.client.post(
        f"/data-items/{item_id}/append-from-file/", files={"data_file": (filename, data)}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def listing(client: httpx.AsyncClient, **params: Any) -> Any:
    r = await client.get("/uploads/", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def usage_bytes(client: httpx.AsyncClient) -> int:
    r = await client.get("/usage/")
    assert r.status_code == 200, r.text
    value: int = r.json()["reference_file_bytes"]
    return value


class TestList:
    async def test_a_new_account_has_none(self, api: Caller) -> None:
        assert await listing(api.client) == {"total": 0, "offset": 0, "limit": 1000, "uploads": []}

    async def test_every_file_across_items_newest_first_with_its_job(self, api: Caller) -> None:
        sales, more = sales_rows(), more_rows()
        first = await create(api, "Sales", sales)
        appended = await append(api, first["id"], more)
        queued = await start_create(api.client, sales, filename="async.csv", name="Async sales")
        created_job = await wait_job(api.client, queued["id"])
        assert created_job["status"] == "succeeded", created_job
        queued = await start_append(api.client, first["id"], more)
        appended_job = await wait_job(api.client, queued["id"])
        assert appended_job["status"] == "succeeded", appended_job

        body = await listing(api.client)
        assert body["total"] == 4 and body["offset"] == 0 and body["limit"] == 1000
        uploads = body["uploads"]
        assert all(set(u) == UPLOAD_KEYS for u in uploads)
        assert [u["id"] for u in uploads] == [
            appended_job["result"]["reference_file"]["id"],
            created_job["result"]["reference_file"]["id"],
            appended["reference_file"]["id"],
            first["reference_file"]["id"],
        ]
        last, second, one, oldest = uploads
        async_item = created_job["result"]["id"]
        assert [(u["data_item_id"], u["data_item_name"], u["filename"]) for u in uploads] == [
            (first["id"], "Sales", "more.csv"),
            (async_item, "Async sales", "async.csv"),
            (first["id"], "Sales", "more.csv"),
            (first["id"], "Sales", "sales.csv"),
        ]
        assert [u["size"] for u in uploads] == [len(more), len(sales), len(more), len(sales)]
        assert [u["sha256"] for u in uploads] == [
            hashlib.sha256(d).hexdigest() for d in (more, sales, more, sales)
        ]
        assert all(u["content_type"] == "text/csv" for u in uploads)
        assert all(TIMESTAMP.match(u["created_at"]) for u in uploads)
        assert last["job"] == {
            "id": appended_job["id"], "status": "succeeded", "kind": "append_from_file",
        }  # fmt: skip
        assert second["job"] == {
            "id": created_job["id"], "status": "succeeded", "kind": "create_from_file",
        }  # fmt: skip
        assert one["job"] is None and oldest["job"] is None
        assert oldest["download_url"] == (
            f"/api/v1/data-items/{first['id']}/reference-files/{oldest['id']}/"
        )
        for upload, data in zip(uploads, (more, sales, more, sales), strict=True):
            download = await api.client.get(upload["download_url"].removeprefix("/api/v1"))
            assert download.status_code == 200 and download.content == data

    async def test_pages_with_offset_and_limit(self, api: Caller) -> None:
        item = await create(api, "Paged", sales_rows())
        for _ in range(3):
            await append(api, item["id"], more_rows())
        everything = (await listing(api.client))["uploads"]
        assert len(everything) == 4
        page = await listing(api.client, limit=3)
        assert page["total"] == 4 and page["limit"] == 3
        assert page["uploads"] == everything[:3]
        rest = await listing(api.client, offset=3, limit=3)
        assert rest["total"] == 4 and rest["offset"] == 3 and rest["uploads"] == everything[3:]
        beyond = await listing(api.client, offset=10)
        assert beyond["total"] == 4 and beyond["uploads"] == []
        assert (await api.client.get("/uploads")).json() == await listing(api.client)

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "ten"},
            {"offset": "-1"},
            {"offset": str(2**31 + 1)},
            {"offset": "1.5"},
        ],
    )
    async def test_bad_paging_is_a_400(self, api: Caller, params: dict[str, str]) -> None:
        body = assert_error(await api.client.get("/uploads/", params=params), 400)
        assert next(iter(params)) in str(body)

    async def test_only_the_callers_uploads(self, api: Caller, intruder: Caller) -> None:
        mine = await create(api, "Mine", sales_rows())
        theirs = await create(intruder, "Theirs", more_rows(), filename="theirs.csv")
        assert [u["id"] for u in (await listing(api.client))["uploads"]] == [
            mine["reference_file"]["id"]
        ]
        other = await listing(intruder.client)
        assert other["total"] == 1
        assert [u["id"] for u in other["uploads"]] == [theirs["reference_file"]["id"]]


class TestDetail:
    async def test_the_same_object_as_in_the_list(self, api: Caller) -> None:
        item = await create(api, "Detail", sales_rows())
        await append(api, item["id"], more_rows())
        for upload in (await listing(api.client))["uploads"]:
            r = await api.client.get(f"/uploads/{upload['id']}/")
            assert r.status_code == 200, r.text
            assert r.json() == upload
        r = await api.client.get(f"/uploads/{item['reference_file']['id']}")  # no slash
        assert r.status_code == 200 and r.json()["filename"] == "sales.csv"

    async def test_an_async_uploads_job(self, api: Caller) -> None:
        queued = await start_create(api.client, sales_rows())
        job = await wait_job(api.client, queued["id"])
        upload_id = job["result"]["reference_file"]["id"]
        r = await api.client.get(f"/uploads/{upload_id}/")
        assert r.status_code == 200, r.text
        assert r.json()["job"] == {"id": job["id"], "status": "succeeded", "kind": job["kind"]}

    async def test_a_missing_upload_is_a_404(self, api: Caller) -> None:
        assert_error(await api.client.get(f"/uploads/{2**63 - 1}/"), 404, "NOT_FOUND")

    async def test_another_accounts_upload_is_a_404(self, api: Caller, intruder: Caller) -> None:
        item = await create(api, "Private", sales_rows())
        upload_id = item["reference_file"]["id"]
        body = assert_error(await intruder.client.get(f"/uploads/{upload_id}/"), 404, "NOT_FOUND")
        missing = assert_error(await intruder.client.get(f"/uploads/{2**62}/"), 404, "NOT_FOUND")
        assert body["error"].replace(str(upload_id), "N") == missing["error"].replace(
            str(2**62), "N"
        )  # nothing tells the two apart

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_bad_ids_are_a_400(self, api: Caller, bad: str) -> None:
        body = assert_error(await api.client.get(f"/uploads/{bad}/"), 400, "VALIDATION_ERROR")
        assert "upload_id" in str(body)


class TestDelete:
    async def test_removes_the_file_and_keeps_its_rows(self, api: Caller, app: FastAPI) -> None:
        sales, more = sales_rows(), more_rows()
        item = await create(api, "Sales", sales)
        appended = await append(api, item["id"], more)
        kept, gone = item["reference_file"]["id"], appended["reference_file"]["id"]
        rows_before = (await api.client.get(f"/data-items/{item['id']}/rows/")).json()
        summary_before = (await api.client.get(f"/data-items/{item['id']}/summary/")).json()
        bytes_before = await usage_bytes(api.client)
        assert bytes_before == len(sales) + len(more)

        r = await api.client.delete(f"/uploads/{gone}/")
        assert r.status_code == 200, r.text
        assert r.json() == {"deleted": True}

        assert_error(await api.client.get(f"/uploads/{gone}/"), 404, "NOT_FOUND")
        assert_error(await api.client.get(f"/data-items/{item['id']}/reference-files/{gone}/"), 404)
        assert [u["id"] for u in (await listing(api.client))["uploads"]] == [kept]
        detail = (await api.client.get(f"/data-items/{item['id']}/")).json()
        assert [f["id"] for f in detail["reference_files"]] == [kept]
        assert detail["row_count"] == 5
        assert (await api.client.get(f"/data-items/{item['id']}/rows/")).json() == rows_before
        summary = (await api.client.get(f"/data-items/{item['id']}/summary/")).json()
        assert summary == summary_before
        assert await usage_bytes(api.client) == len(sales)
        async with app.state.engine.connect() as conn:
            chunks = await conn.scalar(
                text("SELECT count(*) FROM reference_file_chunks WHERE file_id = :f"), {"f": gone}
            )
        assert chunks == 0
        kept_file = await api.client.get(f"/data-items/{item['id']}/reference-files/{kept}/")
        assert kept_file.status_code == 200 and kept_file.content == sales

        assert_error(await api.client.delete(f"/uploads/{gone}/"), 404, "NOT_FOUND")

    async def test_an_async_uploads_file_goes_and_its_job_stays(
        self, api: Caller, app: FastAPI
    ) -> None:
        queued = await start_create(api.client, sales_rows())
        job = await wait_job(api.client, queued["id"])
        upload_id = job["result"]["reference_file"]["id"]
        assert (await api.client.delete(f"/uploads/{upload_id}/")).status_code == 200
        assert (await api.client.get(f"/jobs/{job['id']}/")).json() == job
        assert (await listing(api.client))["uploads"] == []
        item = (await api.client.get(f"/data-items/{job['data_item_id']}/")).json()
        assert item["reference_files"] == [] and item["row_count"] == 4
        async with app.state.engine.connect() as conn:
            link = await conn.scalar(
                text("SELECT reference_file_id FROM import_jobs WHERE id = :j"), {"j": job["id"]}
            )
        assert link is None

    async def test_another_accounts_upload_is_a_404_and_stays(
        self, api: Caller, intruder: Caller
    ) -> None:
        data = sales_rows()
        item = await create(api, "Private", data)
        upload_id = item["reference_file"]["id"]
        assert_error(await intruder.client.delete(f"/uploads/{upload_id}/"), 404, "NOT_FOUND")
        assert (await api.client.get(f"/uploads/{upload_id}/")).status_code == 200
        download = await api.client.get(f"/data-items/{item['id']}/reference-files/{upload_id}/")
        assert download.content == data
        assert await usage_bytes(api.client) == len(data)

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_bad_ids_are_a_400(self, api: Caller, bad: str) -> None:
        assert_error(await api.client.delete(f"/uploads/{bad}/"), 400, "VALIDATION_ERROR")

    async def test_does_not_wait_for_a_writer_of_the_item(self, api: Caller, app: FastAPI) -> None:
        """A running append holds the item's row lock until it commits: deleting one of the
        item's files meanwhile neither waits for it nor disturbs it."""
        item = await create(api, "Busy", sales_rows())
        upload_id = item["reference_file"]["id"]
        async with app.state.engine.connect() as writer:
            await writer.execute(  # the lock an append (RowLoad.for_append) holds
                text("UPDATE data_items SET updated_at = now() WHERE id = :i"), {"i": item["id"]}
            )
            r = await asyncio.wait_for(api.client.delete(f"/uploads/{upload_id}/"), 10)
            assert r.status_code == 200, r.text
            await writer.commit()
        assert (await listing(api.client))["uploads"] == []
