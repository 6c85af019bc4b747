"""Import jobs through the real HTTP stack: 202 and polling, the same result (or error) as the
synchronous call, progress seen while the job's transaction is open, tenancy, paging, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import Caller
from tests.helpers import assert_error, create_item
from tests.ingestion import files
from tests.jobs.helpers import CREATE, big_csv, start_append, start_create, wait_job

pytestmark = pytest.mark.asyncio

JOB_KEYS = {
    "id", "kind", "status", "data_item_id", "filename", "size_bytes", "rows_processed",
    "rows_total", "error", "result", "created_at", "started_at", "finished_at",
}  # fmt: skip


def without_ids(value: Any) -> Any:
    """The body with every id left out (two uploads of one file differ only in ids)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


async def chunks_of(app: FastAPI, job_id: int) -> int:
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT count(*) FROM import_job_chunks WHERE job_id = :j"), {"j": job_id}
        )
        return int(result.scalar_one())


@pytest_asyncio.fixture
async def paused(app: FastAPI) -> AsyncIterator[None]:
    """The test app's job worker claims nothing while the test runs (so jobs stay queued)."""
    async with app.state.import_jobs.paused():
        yield


class TestCreateFromFileAsync:
    async def test_202_then_the_same_body_as_the_synchronous_call(
        self, api: Caller, app: FastAPI
    ) -> None:
        data = files.sales_csv()
        queued = await start_create(api.client, data, name="Q1")
        assert set(queued) == JOB_KEYS
        assert queued["status"] == "queued" and queued["kind"] == "create_from_file"
        assert queued["filename"] == "sales.csv" and queued["size_bytes"] == len(data)
        assert queued["result"] is None and queued["error"] is None
        assert queued["data_item_id"] is None

        job = await wait_job(api.client, queued["id"])
        assert job["status"] == "succeeded", job
        assert job["rows_processed"] == job["rows_total"] == 4
        assert job["error"] is None and job["started_at"] and job["finished_at"]
        result = job["result"]
        assert job["data_item_id"] == result["id"]

        sync = await api.client.post(
            CREATE, data={"data_name": "Q1"}, files={"data_file": ("sales.csv", data)}
        )
        assert sync.status_code == 201
        assert set(result) == set(sync.json())
        assert without_ids(result) == without_ids(sync.json())

        item = (await api.client.get(f"/data-items/{result['id']}/")).json()
        assert item["row_count"] == 4 and len(item["fields"]) == 7
        download = await api.client.get(
            f"/data-items/{result['id']}/reference-files/{result['reference_file']['id']}/"
        )
        assert download.content == data
        assert await chunks_of(app, job["id"]) == 0  # the stored upload is gone with the job

    async def test_a_bad_file_fails_with_the_synchronous_error_and_leaves_nothing(
        self, api: Caller, app: FastAPI
    ) -> None:
        sync = await api.client.post(
            CREATE, data={"data_name": "Bad"}, files={"data_file": ("bad.xlsx", files.pdf_bytes())}
        )
        expected = assert_error(sync, 400)

        queued = await start_create(api.client, files.pdf_bytes(), filename="bad.xlsx", name="Bad")
        job = await wait_job(api.client, queued["id"])
        assert job["status"] == "failed" and job["result"] is None
        error = job["error"]
        assert error["status"] == 400
        assert error["error"] == expected["error"] and error["code"] == expected["code"]
        assert error.get("details") == expected.get("details")
        assert (await api.client.get("/data-items/")).json()["data_items"] == []
        assert await chunks_of(app, job["id"]) == 0

    async def test_the_form_is_checked_before_anything_is_queued(self, api: Caller) -> None:
        no_name = await api.client.post(
            CREATE, params={"async": "true"}, files={"data_file": ("a.csv", b"a\r\n1\r\n")}
        )
        assert "data_name" in assert_error(no_name, 400)["error"]
        empty = await api.client.post(
            CREATE,
            params={"async": "true"},
            data={"data_name": "x"},
            files={"data_file": ("a.csv", b"")},
        )
        assert_error(empty, 400, "INVALID_FILE")
        odd = await api.client.post(
            CREATE,
            params={"async": "maybe"},
            data={"data_name": "x"},
            files={"data_file": ("a.csv", b"a\r\n1\r\n")},
        )
        assert_error(odd, 400, "VALIDATION_ERROR")
        assert (await api.client.get("/jobs/")).json()["total"] == 0

    async def test_async_false_is_the_synchronous_call(self, api: Caller) -> None:
        r = await api.client.post(
            CREATE.rstrip("/"),
            params={"async": "false"},
            data={"data_name": "x"},
            files={"data_file": ("a.csv", b"a\r\n1\r\n")},
        )
        assert r.status_code == 201 and r.json()["rows_created"] == 1


class TestAppendFromFileAsync:
    async def test_result_is_the_synchronous_body(self, api: Caller) -> None:
        data = files.sales_csv()
        first = await api.client.post(
            CREATE, data={"data_name": "S"}, files={"data_file": ("s.csv", data)}
        )
        item_id = first.json()["id"]
        more = files.csv_bytes([["region", "Revenue", "Extra"], ["North", "10", "x"]])
        queued = await start_append(api.client, item_id, more)
        assert queued["kind"] == "append_from_file" and queued["data_item_id"] == item_id
        job = await wait_job(api.client, queued["id"])
        assert job["status"] == "succeeded", job
        assert job["result"]["rows_appended"] == 1
        assert job["result"]["matched_columns"] == ["region", "Revenue"]
        assert job["result"]["skipped_columns"] == ["Extra"]

        sync = await api.client.post(
            f"/data-items/{item_id}/append-from-file/", files={"data_file": ("more.csv", more)}
        )
        assert without_ids(job["result"]) == without_ids(sync.json())
        item = (await api.client.get(f"/data-items/{item_id}/")).json()
        assert item["row_count"] == 6

    async def test_new_fields_and_bad_values_as_the_synchronous_call(self, api: Caller) -> None:
        item = await create_item(api.client, fields=[{"field_label": "N", "field_type": "decimal"}])
        bad = await start_append(api.client, item["id"], b"N\r\n1\r\nabc\r\n")
        failed = await wait_job(api.client, bad["id"])
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "INVALID_FILE" and "abc" in failed["error"]["error"]
        assert failed["error"]["details"][0]["row"] == 3
        good = await start_append(api.client, item["id"], b"N,M\r\n1,x\r\n", add_new_fields="true")
        done = await wait_job(api.client, good["id"])
        assert done["status"] == "succeeded"
        assert done["result"]["matched_columns"] == ["N", "M"]
        fields = (await api.client.get(f"/data-items/{item['id']}/fields/")).json()["fields"]
        assert [f["field_label"] for f in fields] == ["N", "M"]
        rows = (await api.client.get(f"/data-items/{item['id']}/rows/")).json()
        assert rows["total"] == 1  # the failed job appended nothing

    async def test_an_item_deleted_before_the_job_runs_fails_it_with_404(
        self, api: Caller, app: FastAPI
    ) -> None:
        item = await create_item(api.client, fields=[{"field_label": "a"}])
        async with app.state.import_jobs.paused():
            queued = await start_append(api.client, item["id"], b"a\r\n1\r\n")
            assert (await api.client.delete(f"/data-items/{item['id']}/")).status_code == 200
            waiting = (await api.client.get(f"/jobs/{queued['id']}/")).json()
            assert waiting["status"] == "queued" and waiting["data_item_id"] is None
        job = await wait_job(api.client, queued["id"])
        assert job["status"] == "failed"
        assert job["error"]["status"] == 404 and job["error"]["code"] == "NOT_FOUND"

    async def test_another_accounts_item_is_404_and_queues_nothing(
        self, api: Caller, intruder: Caller
    ) -> None:
        item = await create_item(api.client)
        r = await intruder.client.post(
            f"/data-items/{item['id']}/append-from-file/",
            params={"async": "true"},
            files={"data_file": ("a.csv", b"a\r\n1\r\n")},
        )
        assert_error(r, 404)
        assert (await intruder.client.get("/jobs/")).json()["total"] == 0


class TestProgressAndIsolation:
    async def test_progress_is_visible_while_the_rows_are_not(
        self, api: Caller, app: FastAPI, database_url: str
    ) -> None:
        """Hold back the job's step after the rows (attaching the item's partition to `rows`)
        with a table lock: every row is written inside its open transaction, progress says so,
        and nothing is visible."""
        rows = 250_000
        dsn = make_url(database_url).set(drivername="postgresql")
        blocker = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE rows IN SHARE UPDATE EXCLUSIVE MODE")
            queued = await start_create(api.client, big_csv(rows), name="Big")
            running = await wait_job(
                api.client,
                queued["id"],
                until=("running",),
                check=lambda j: j["rows_processed"] == rows,
            )
            assert running["rows_total"] == rows
            assert running["result"] is None and running["finished_at"] is None
            assert (await api.client.get("/data-items/")).json()["data_items"] == []
            listed = (await api.client.get("/jobs/", params={"status": "running"})).json()
            assert [j["id"] for j in listed["jobs"]] == [queued["id"]]
            await lock.rollback()
        finally:
            await blocker.close()
        job = await wait_job(api.client, queued["id"])
        assert job["status"] == "succeeded", job
        assert job["result"]["rows_created"] == rows
        items = (await api.client.get("/data-items/")).json()["data_items"]
        assert [i["id"] for i in items] == [job["result"]["id"]]
        await app.state.row_maintenance.wait_idle()  # its search index, built after the commit


class TestJobsList:
    async def test_newest_first_paged_and_filtered(self, api: Caller) -> None:
        ids = []
        for n in range(3):
            ids.append((await start_create(api.client, b"a\r\n1\r\n", name=f"J{n}"))["id"])
        bad = await start_create(api.client, files.exe_bytes(), filename="x.csv", name="bad")
        for job_id in [*ids, bad["id"]]:
            await wait_job(api.client, job_id)
        everything = (await api.client.get("/jobs/")).json()
        assert everything["total"] == 4 and everything["offset"] == 0
        assert [j["id"] for j in everything["jobs"]] == [bad["id"], *reversed(ids)]
        page = (await api.client.get("/jobs", params={"offset": 1, "limit": 2})).json()
        assert [j["id"] for j in page["jobs"]] == [ids[2], ids[1]] and page["total"] == 4
        failed = (await api.client.get("/jobs/", params={"status": "failed"})).json()
        assert [j["id"] for j in failed["jobs"]] == [bad["id"]] and failed["total"] == 1
        beyond = (await api.client.get("/jobs/", params={"offset": 10})).json()
        assert beyond["jobs"] == [] and beyond["total"] == 4

    async def test_bad_parameters_are_400(self, api: Caller) -> None:
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "done"}):
            assert_error(await api.client.get("/jobs/", params=params), 400, "VALIDATION_ERROR")
        assert_error(await api.client.get("/jobs/0/"), 400)
        assert_error(await api.client.get("/jobs/abc/"), 400)

    async def test_another_accounts_job_is_a_404_like_a_missing_one(
        self, api: Caller, intruder: Caller
    ) -> None:
        job = await start_create(api.client, b"a\r\n1\r\n")
        theirs = assert_error(await intruder.client.get(f"/jobs/{job['id']}/"), 404)
        missing = assert_error(await intruder.client.get("/jobs/999999999/"), 404)
        assert theirs["code"] == missing["code"] == "NOT_FOUND"
        assert (await intruder.client.get("/jobs/")).json() == {
            "total": 0, "offset": 0, "limit": 20, "jobs": [],
        }  # fmt: skip
        assert (await wait_job(api.client, job["id"]))["status"] == "succeeded"

    async def test_without_a_key_is_401(self, api: Caller) -> None:
        r = await api.client.get("/jobs/", headers={"X-Api-Key": ""})
        assert_error(r, 401)


class TestLimits:
    async def test_too_many_unfinished_jobs_is_429(
        self, api: Caller, app: FastAPI, paused: None
    ) -> None:
        limit = app.state.settings.job_max_pending_per_account
        for n in range(limit):
            await start_create(api.client, b"a\r\n1\r\n", name=f"J{n}")
        r = await api.client.post(
            CREATE,
            params={"async": "true"},
            data={"data_name": "one too many"},
            files={"data_file": ("a.csv", b"a\r\n1\r\n")},
        )
        assert_error(r, 429, "RATE_LIMITED")
        assert r.headers["retry-after"]
        queued = (await api.client.get("/jobs/", params={"status": "queued"})).json()
        assert queued["total"] == limit


async def test_jobs_wait_for_their_turn_and_all_finish(api: Caller, app: FastAPI) -> None:
    async with app.state.import_jobs.paused():
        jobs = [await start_create(api.client, b"a\r\n1\r\n", name=f"J{n}") for n in range(4)]
        await asyncio.sleep(0.3)
        statuses = {(await api.client.get(f"/jobs/{j['id']}/")).json()["status"] for j in jobs}
        assert statuses == {"queued"}
    for job in jobs:
        assert (await wait_job(api.client, job["id"]))["status"] == "succeeded"
    names = sorted(
        i["data_name"] for i in (await api.client.get("/data-items/")).json()["data_items"]
    )
    assert names == ["J0", "J1", "J2", "J3"]
