"""Uploading with ?async=true and polling the job, as a client does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.ingestion import files

CREATE = "/data-items/create-from-file/"
FINISHED = ("succeeded", "failed")


def big_csv(rows: int) -> bytes:
    """`rows` rows of three typed columns."""
    lines = ["Region,Revenue,Day"] + [
        f"R{i % 7},{i}.25,2026-01-{i % 28 + 1:02d}" for i in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


async def start_create(
    client: httpx.AsyncClient, data: bytes, *, filename: str = "sales.csv", name: str = "Async"
) -> dict[str, Any]:
    r = await client.post(
        CREATE,
        params={"async": "true"},
        data={"data_name": name},
        files={"data_file": (filename, data)},
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    assert r.headers["location"].endswith(f"/api/v1/jobs/{body['id']}/")
    return body


async def start_append(
    client: httpx.AsyncClient, item_id: int, data: bytes, **form: str
) -> dict[str, Any]:
    r = await client.post(
        f"/data-items/{item_id}/append-from-file/",
        params={"async": "true"},
        data=form,
        files={"data_file": ("more.csv", data)},
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_job(
    client: httpx.AsyncClient,
    job_id: int,
    *,
    until: tuple[str, ...] = FINISHED,
    within: float = 60,
    check: Any = None,
) -> dict[str, Any]:
    """Poll until the job's status is in `until` (and `check(job)` holds, when given)."""
    deadline = time.monotonic() + within
    while True:
        r = await client.get(f"/jobs/{job_id}/")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in until and (check is None or check(job)):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        await asyncio.sleep(0.05)


def sales() -> bytes:
    return files.sales_csv()
