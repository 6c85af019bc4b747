"""Deliveries to a real receiver on loopback: signed bodies, retries with backoff after failures,
giving up, timeouts and redirects, events only after their transaction commits, import events,
and two dispatchers on one database delivering each event once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import WebhookEvent
from app.webhooks.sender import make_client, send
from app.webhooks.signing import new_secret
from tests.conftest import Caller, make_settings
from tests.helpers import create_item
from tests.ingestion import files
from tests.jobs.helpers import start_create, wait_job
from tests.webhooks.conftest import HOOK_SETTINGS
from tests.webhooks.receiver import Receiver, Reply, receiving

pytestmark = pytest.mark.asyncio


async def subscribe(api: Caller, url: str, *events: str) -> dict[str, Any]:
    r = await api.client.post("/webhooks/", json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def deliveries(api: Caller, webhook_id: int) -> list[dict[str, Any]]:
    r = await api.client.get(f"/webhooks/{webhook_id}/deliveries/")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["deliveries"]
    return found


async def settled(api: Caller, webhook_id: int, count: int = 1) -> list[dict[str, Any]]:
    """The webhook's deliveries once `count` of them are no longer pending."""
    for _ in range(200):
        found = await deliveries(api, webhook_id)
        if len([d for d in found if d["status"] != "pending"]) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries still pending: {found}")


class TestDelivery:
    async def test_a_signed_post_and_its_record(self, hooks: Caller) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            item = await create_item(hooks.client, "Signed")
            (request,) = await receiver.wait_for(1)
            [record] = await settled(hooks, hook["id"])

        assert request.method == "POST" and request.path == "/hook"
        assert request.signature_ok(hook["secret"])
        assert not request.signature_ok(new_secret())
        assert request.headers["webhook-id"] == f"msg_{record['id']}"
        assert request.headers["webhook-signature"].startswith("v1,")
        assert "x-signature" not in request.headers  # only webhooks from before get it
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-delivery-id"] == str(record["id"])
        assert request.headers["x-delivery-attempt"] == "1"
        assert request.headers["x-event-type"] == "data_item.created"
        assert request.headers["x-webhook-id"] == str(hook["id"])
        assert request.headers["user-agent"].startswith("data-items-webhooks/")

        body = request.json()
        assert set(body) == {"event", "id", "created_at", "data"}
        assert body["event"] == "data_item.created" and body["id"].startswith("evt_")
        assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
        assert body["data"]["data_item"]["id"] == item["id"]
        assert body["data"]["data_item"]["data_name"] == "Signed"

        assert record["status"] == "succeeded" and record["attempts"] == 1
        assert record["response_code"] == 200 and record["error"] is None
        assert record["next_attempt_at"] is None and record["delivered_at"]
        assert record["event"] == "data_item.created" and record["event_id"] == body["id"]
        assert record["payload"] == body
        [attempt] = record["history"]
        assert attempt["attempt"] == 1 and attempt["response_code"] == 200

    async def test_a_failing_receiver_is_retried_with_backoff_until_it_succeeds(
        self, hooks: Caller
    ) -> None:
        script = [Reply(500, body=b"boom"), Reply(503)]
        async with receiving(script) as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.deleted")
            item = await create_item(hooks.client)
            await hooks.client.delete(f"/data-items/{item['id']}/")
            received = await receiver.wait_for(3)
            [record] = await settled(hooks, hook["id"])

        assert [r.headers["x-delivery-attempt"] for r in received] == ["1", "2", "3"]
        assert len({r.body for r in received}) == 1  # the same bytes
        assert {r.headers["webhook-id"] for r in received} == {f"msg_{record['id']}"}
        assert {r.headers["x-delivery-id"] for r in received} == {str(record["id"])}
        assert all(r.signature_ok(hook["secret"]) for r in received)
        assert record["status"] == "succeeded" and record["attempts"] == 3
        assert [a["response_code"] for a in record["history"]] == [500, 503, 200]
        assert record["history"][0]["error"] == "HTTP 500 from the receiver: boom"
        at = [datetime.fromisoformat(a["at"]) for a in record["history"]]
        base = float(str(HOOK_SETTINGS["webhook_retry_base_seconds"]))
        # waits of base, then 2 x base, each shortened by at most a quarter (whole seconds shown)
        assert (at[2] - at[0]).total_seconds() >= int(0.75 * 3 * base)

    async def test_gives_up_after_the_last_attempt(self, hooks: Caller) -> None:
        async with receiving(default=Reply(500)) as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            await create_item(hooks.client)
            await receiver.wait_for(3)
            [record] = await settled(hooks, hook["id"])
            await asyncio.sleep(0.5)
            assert len(receiver.requests) == 3
        assert record["status"] == "failed" and record["attempts"] == 3
        assert record["next_attempt_at"] is None and record["delivered_at"] is None
        assert record["response_code"] == 500 and "HTTP 500" in record["error"]

    async def test_timeouts_and_redirects_are_failures(self, hooks: Caller) -> None:
        script = [Reply(200, delay=3), Reply(302, headers={"Location": "http://10.0.0.1/"})]
        async with receiving(script) as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            await create_item(hooks.client)
            await receiver.wait_for(3)
            [record] = await settled(hooks, hook["id"])
        first, second, third = record["history"]
        assert first["response_code"] is None and "No answer within 1 s" in first["error"]
        assert second["response_code"] == 302 and "redirects are not followed" in second["error"]
        assert third["response_code"] == 200 and record["status"] == "succeeded"

    async def test_only_subscribed_events_are_sent(self, hooks: Caller) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.deleted")
            item = await create_item(hooks.client)
            await hooks.client.patch(f"/data-items/{item['id']}/", json={"data_name": "x"})
            await hooks.client.delete(f"/data-items/{item['id']}/")
            (request,) = await receiver.wait_for(1)
            await asyncio.sleep(0.3)
            assert len(receiver.requests) == 1
        assert request.json()["event"] == "data_item.deleted"
        assert request.json()["data"]["data_item"]["data_name"] == "x"
        assert len(await deliveries(hooks, hook["id"])) == 1

    async def test_ping(self, hooks: Caller) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "import.failed")
            r = await hooks.client.post(f"/webhooks/{hook['id']}/ping/")
            assert r.status_code == 202
            (request,) = await receiver.wait_for(1)
        assert request.json()["event"] == "ping"
        assert request.json()["id"] == r.json()["event_id"]
        assert request.headers["x-delivery-id"] == str(r.json()["delivery_id"])
        assert request.json()["data"] == {"webhook_id": hook["id"]}

    async def test_a_deleted_webhook_is_not_retried(self, hooks: Caller) -> None:
        async with receiving(default=Reply(500)) as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            await create_item(hooks.client)
            await receiver.wait_for(1)
            await hooks.client.delete(f"/webhooks/{hook['id']}/")
            await asyncio.sleep(1.0)  # past the next retry
            assert len(receiver.requests) == 1


class TestOutbox:
    async def test_an_event_of_a_rolled_back_transaction_never_fires(
        self, hooks: Caller, hook_app: FastAPI
    ) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            async with hook_app.state.sessionmaker() as session:
                async with session.begin():
                    queued = await webhooks_service.emit(
                        session,
                        account_id=hooks.account_id,
                        event=WebhookEvent.DATA_ITEM_CREATED,
                        data={"n": "rolled back"},
                    )
                    assert queued == 1
                    await session.rollback()
                async with session.begin():
                    await webhooks_service.emit(
                        session,
                        account_id=hooks.account_id,
                        event=WebhookEvent.DATA_ITEM_CREATED,
                        data={"n": "committed"},
                    )
            (request,) = await receiver.wait_for(1)
            await asyncio.sleep(0.3)
            assert len(receiver.requests) == 1
        assert request.json()["data"] == {"n": "committed"}
        assert len(await deliveries(hooks, hook["id"])) == 1

    async def test_a_failed_upload_announces_nothing(self, hooks: Caller) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            r = await hooks.client.post(
                "/data-items/create-from-file/",
                data={"data_name": "bad"},
                files={"data_file": ("x.csv", files.exe_bytes())},
            )
            assert r.status_code == 400
            good = await hooks.client.post(
                "/data-items/create-from-file/",
                data={"data_name": "good"},
                files={"data_file": ("x.csv", b"a\r\n1\r\n")},
            )
            (request,) = await receiver.wait_for(1)
        assert request.json()["data"]["data_item"]["id"] == good.json()["id"]
        assert request.json()["data"]["rows_created"] == 1
        assert len(await deliveries(hooks, hook["id"])) == 1


class TestImportEvents:
    async def test_import_succeeded_and_failed(self, hooks: Caller) -> None:
        events = ["import.succeeded", "import.failed", "data_item.created"]
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, *events)
            good = await start_create(hooks.client, files.sales_csv(), name="Good")
            done = await wait_job(hooks.client, good["id"])
            bad = await start_create(hooks.client, files.pdf_bytes(), filename="b.csv")
            failed = await wait_job(hooks.client, bad["id"])
            received = await receiver.wait_for(3)
            await settled(hooks, hook["id"], 3)
        by_event = {r.json()["event"]: r.json() for r in received}
        assert set(by_event) == set(events) and len(received) == 3
        succeeded = by_event["import.succeeded"]["data"]["job"]
        assert succeeded["id"] == good["id"] and succeeded["status"] == "succeeded"
        assert succeeded["result"] == done["result"]
        created = by_event["data_item.created"]["data"]
        assert created["data_item"]["id"] == done["result"]["id"]
        failure = by_event["import.failed"]["data"]["job"]
        assert failure["id"] == bad["id"] and failure["error"] == failed["error"]


class TestSafety:
    async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(self) -> None:
        async with receiving() as receiver, make_client() as client:
            # "0x7f.1" is 127.0.0.1 to the resolver, but not an address to the URL check
            outcome = await send(
                client,
                url=f"http://0x7f.1:{receiver.port}/hook",
                body="{}",
                headers={},
                time_limit=2,
                allow_private=False,
            )
            assert receiver.requests == []
        assert not outcome.ok and not outcome.retry
        assert outcome.error is not None and "non-public address (127.0.0.1)" in outcome.error

    async def test_an_unreachable_receiver_is_a_retryable_failure(self) -> None:
        receiver = Receiver()
        await receiver.start()
        port = receiver.port
        await receiver.stop()
        async with make_client() as client:
            outcome = await send(
                client,
                url=f"http://127.0.0.1:{port}/hook",
                body="{}",
                headers={},
                time_limit=2,
                allow_private=True,
            )
        assert not outcome.ok and outcome.retry and outcome.response_code is None
        assert outcome.error is not None and outcome.error.startswith("Connection failed")


@pytest_asyncio.fixture
async def second_replica(database_url: str, hook_app: FastAPI) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(**HOOK_SETTINGS), database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


async def test_two_dispatchers_deliver_each_event_once(
    hooks: Caller, second_replica: FastAPI
) -> None:
    async with receiving() as receiver:
        hook = await subscribe(hooks, receiver.url, "data_item.created")
        for n in range(30):
            await create_item(hooks.client, f"I{n}")
        received = await receiver.wait_for(30)
        await asyncio.sleep(0.5)
        received = list(receiver.requests)
    assert len(received) == 30
    assert len({r.headers["x-delivery-id"] for r in received}) == 30
    names = sorted(json.loads(r.body)["data"]["data_item"]["data_name"] for r in received)
    assert names == sorted(f"I{n}" for n in range(30))
    found = await hooks.client.get(f"/webhooks/{hook['id']}/deliveries/", params={"limit": 100})
    assert found.json()["total"] == 30
    assert {d["status"] for d in found.json()["deliveries"]} == {"succeeded"}
