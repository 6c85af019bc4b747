"""The per-account cap on import jobs holds under concurrent requests: counting the account's
unfinished jobs and queueing the new one happen under one lock per account."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Caller
from tests.helpers import assert_error
from tests.jobs.helpers import CREATE

pytestmark = pytest.mark.asyncio


async def test_concurrent_async_uploads_never_pass_the_cap(
    api: Caller, intruder: Caller, app: FastAPI
) -> None:
    limit = app.state.settings.job_max_pending_per_account

    async def upload(caller: Caller, n: int) -> httpx.Response:
        return await caller.client.post(
            CREATE,
            params={"async": "true"},
            data={"data_name": f"J{n}"},
            files={"data_file": (f"j{n}.csv", b"a\r\n1\r\n")},
        )

    async with app.state.import_jobs.paused():  # the jobs stay queued
        answers = await asyncio.gather(*(upload(api, n) for n in range(limit + 6)))
        accepted = [r for r in answers if r.status_code == 202]
        refused = [r for r in answers if r.status_code != 202]
        assert len(accepted) == limit, [r.status_code for r in answers]
        for r in refused:
            body = assert_error(r, 429, "RATE_LIMITED")
            assert str(limit) in body["error"] and r.headers["retry-after"]
        listed = (await api.client.get("/jobs/", params={"status": "queued"})).json()
        assert listed["total"] == limit
        # the cap is the account's own: another account still queues
        assert (await upload(intruder, 0)).status_code == 202
