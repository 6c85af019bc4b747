"""One account's uploads take the ingestion slots one at a time: its next file waits behind its
own previous one, not in the shared queue, so another account's upload goes through meanwhile
(the attacker review saw a 3-row dry run wait 14 s behind two big ones of another account)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.accounts import service as accounts_service
from app.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.asyncio

SMALL = b"Region,Amount\nNorth,1\n"


async def test_an_accounts_second_upload_waits_behind_its_first_not_others(
    database_url: str,
) -> None:
    app = create_app(make_settings(ingestion_concurrency=2), database_url=database_url)
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as session, session.begin():
            busy = (await accounts_service.create_account(session, name="Busy"))[1]
            other = (await accounts_service.create_account(session, name="Other"))[1]
        transport = httpx.ASGITransport(app=app)

        def client(key: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport, base_url="http://t/api/v1", headers={"X-Api-Key": key}
            )

        async def dry_run(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post(
                "/data-items/create-from-file/",
                params={"dry_run": "true"},
                files={"data_file": ("s.csv", SMALL)},
            )

        async with client(busy.api_key) as a, client(other.api_key) as b:
            assert (await dry_run(a)).status_code == 200  # (the turns exist from here)
            turns = app.state.upload_turns
            # the busy account's turn held, as by a big upload still being read
            async with turns.hold(busy.account_id):
                waiting = asyncio.ensure_future(dry_run(a))
                r = await asyncio.wait_for(dry_run(b), 10)  # the other account goes through
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.2)
                assert not waiting.done()  # behind its own account's turn
                assert app.state.ingestion_slots.value == 2  # and holding no shared slot
            r = await asyncio.wait_for(waiting, 10)
            assert r.status_code == 200, r.text
            assert app.state.upload_turns._turns == {}
