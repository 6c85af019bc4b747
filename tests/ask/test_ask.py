"""Questions in plain language against a local server speaking the OpenAI chat-completions
protocol over real HTTP (tests/webhooks/receiver.py, scripted): the model only ever proposes a
query, the service checks and runs it, and every failure of the model is said in words."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error
from tests.webhooks.receiver import Receiver, Reply

pytestmark = pytest.mark.asyncio

CSV = (
    b"Region,Revenue,Day,Secret\r\n"
    b"North,0.1,2025-01-15,ZEBRA-42\r\n"
    b"North,0.2,2025-02-03,ZEBRA-43\r\n"
    b"South,10,2025-01-20,ZEBRA-44\r\n"
)


def completion(content: Any) -> Reply:
    text = content if isinstance(content, str) else json.dumps(content)
    body = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }
    return Reply(body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


@asynccontextmanager
async def asking(
    database_url: str, replies: list[Reply], **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Receiver, dict[str, Any]]]:
    """An app whose model is a scripted local server, an account, and its item from CSV."""
    model = Receiver(replies)
    await model.start()
    settings.setdefault("llm_base_url", f"http://127.0.0.1:{model.port}/v1")
    app = create_app(
        make_settings(llm_model="test-model", llm_api_key="sk-local", **settings),
        database_url=database_url,
    )
    try:
        async with app.router.lifespan_context(app):
            from app.accounts import service as accounts_service

            async with app.state.sessionmaker() as session, session.begin():
                _, issued = await accounts_service.create_account(session, name="Asker")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://t/api/v1",
                headers={"X-Api-Key": issued.api_key},
                timeout=30,
            ) as client:
                r = await client.post(
                    "/data-items/create-from-file/",
                    data={"data_name": "Sales"},
                    files={"data_file": ("sales.csv", CSV)},
                )
                assert r.status_code == 201, r.text
                yield client, model, r.json()
    finally:
        await model.stop()


def ids(item: dict[str, Any]) -> dict[str, int]:
    return {f["field_label"]: f["id"] for f in item["fields"]}


async def ask(client: httpx.AsyncClient, item: dict[str, Any], question: str) -> httpx.Response:
    return await client.post(f"/data-items/{item['id']}/ask/", json={"question": question})


async def test_not_configured_is_a_501_that_says_how(api: Caller) -> None:
    r = await api.client.post("/data-items/")
    item = await api.client.post("/data-items/", json={"data_name": "x"})
    r = await api.client.post(f"/data-items/{item.json()['id']}/ask/", json={"question": "hi"})
    body = assert_error(r, 501, "MODEL_NOT_CONFIGURED")
    assert "LLM_BASE_URL" in body["error"] and "LLM_MODEL" in body["error"]


async def test_a_table_from_the_database_and_what_the_model_saw(database_url: str) -> None:
    async with asking(database_url, []) as (client, model, item):
        f = ids(item)
        query = {"group_by": [f["Region"]], "aggregations": [{"field": f["Revenue"], "op": "sum"}]}
        model.script.append(completion({"type": "table", "query": query}))
        r = await ask(client, item, "revenue by region")
        assert r.status_code == 200, r.text
        assert '"rows":[["North",0.3],["South",10]]' in r.text  # exact, from PostgreSQL
        body = r.json()
        assert body["type"] == "table"
        assert body["data"]["columns"] == ["Region", "Sum of Revenue"]
        assert body["query"]["group_by"] == [f["Region"]]
        sent = model.requests[0]
        assert sent.path == "/v1/chat/completions"
        assert sent.headers["authorization"] == "Bearer sk-local"
        request = sent.json()
        assert request["model"] == "test-model" and request["temperature"] == 0
        prompt = json.dumps(request["messages"])
        assert "revenue by region" in prompt and "Revenue" in prompt and str(f["Day"]) in prompt
        assert "ZEBRA" not in prompt and "0.1" not in prompt  # no row, no value
        assert "SQL" in prompt  # (told it never writes SQL)


async def test_a_visualization_and_a_sentence(database_url: str) -> None:
    async with asking(database_url, []) as (client, model, item):
        f = ids(item)
        monthly = {
            "group_by": [f["Day"]],
            "date_grouping": "month",
            "aggregations": [{"field": f["Revenue"], "op": "sum"}],
        }
        model.script.append(
            completion({"type": "visualization", "visualization_type": "line", "query": monthly})
        )
        r = await ask(client, item, "monthly revenue in 2025")
        assert r.status_code == 200, r.text
        assert r.json()["visualization_type"] == "line"
        assert r.json()["data"] == {
            "labels": ["2025-01", "2025-02"],
            "datasets": [{"label": "Sum of Revenue", "data": [10.1, 0.2]}],
        }
        total = {"aggregations": [{"field": f["Revenue"], "op": "sum"}, {"op": "count"}]}
        fenced = "```json\n" + json.dumps({"type": "text", "query": total}) + "\n```"
        model.script.append(completion(fenced))
        r = await ask(client, item, "total revenue?")
        assert r.status_code == 200, r.text
        assert r.json()["data"] == "Sum of Revenue: 10.3; Count: 3."


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("Sure! Revenue was about 10.", "not JSON"),
        ("[" * 5000 + "]" * 5000, "not JSON"),
        ({"type": "table"}, 'no "query"'),
        ({"type": "table", "query": {"aggregations": "sum everything"}}, "not a valid query"),
        ({"type": "table", "query": {"sql": "SELECT * FROM rows"}}, "not a valid query"),
    ],
)
async def test_an_unusable_answer_is_a_502_that_says_why(
    database_url: str, content: Any, words: str
) -> None:
    async with asking(database_url, [completion(content)]) as (client, _, item):
        body = assert_error(await ask(client, item, "revenue?"), 502, "MODEL_ERROR")
        assert words in body["error"], body


async def test_a_query_naming_another_items_fields_is_refused(database_url: str) -> None:
    async with asking(database_url, []) as (client, model, item):
        r = await client.post(
            "/data-items/create-from-file/",
            data={"data_name": "Other"},
            files={"data_file": ("o.csv", b"Cost\n5\n")},
        )
        other = r.json()["fields"][0]["id"]
        query = {"aggregations": [{"field": other, "op": "sum"}]}
        model.script.append(completion({"type": "table", "query": query}))
        body = assert_error(await ask(client, item, "cost?"), 502, "MODEL_ERROR")
        assert "refused" in body["error"] and str(other) in json.dumps(body)


async def test_a_slow_model_is_a_reported_timeout(database_url: str) -> None:
    slow = Reply(delay=3.0, body=b"{}")
    async with asking(database_url, [slow], llm_timeout_seconds=0.5) as (client, _, item):
        r = await ask(client, item, "revenue?")
        body = assert_error(r, 503, "MODEL_TIMEOUT")
        assert "0.5 s" in body["error"] and "LLM_TIMEOUT_SECONDS" in body["error"]
        assert r.headers["retry-after"] == "5"


async def test_no_connection_is_held_while_the_model_thinks(database_url: str) -> None:
    async with asking(database_url, []) as (client, model, item):
        f = ids(item)
        query = {"aggregations": [{"field": f["Revenue"], "op": "sum"}]}
        reply = completion({"type": "text", "query": query})
        model.script.append(Reply(delay=1.5, body=reply.body, headers=reply.headers))
        asking_task = asyncio.ensure_future(ask(client, item, "total?"))
        await model.wait_for(1)
        await asyncio.sleep(0.3)
        idle = await idle_in_transaction(database_url)
        r = await asking_task
        assert r.status_code == 200, r.text
        assert idle == 0


async def idle_in_transaction(database_url: str) -> int:
    import asyncpg

    con = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        n = await con.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND application_name = 'data-items-service'"
        )
        return int(n)
    finally:
        await con.close()


async def test_a_failing_or_missing_endpoint_is_a_502(database_url: str) -> None:
    async with asking(database_url, [Reply(status=500, body=b"boom")]) as (client, _, item):
        body = assert_error(await ask(client, item, "revenue?"), 502, "MODEL_ERROR")
        assert "HTTP 500" in body["error"]
    async with asking(database_url, [Reply(body=b'{"not": "a completion"}')]) as (c, _, item):
        assert "chat completion" in assert_error(await ask(c, item, "x"), 502)["error"]
    async with asking(database_url, [], llm_base_url="http://127.0.0.1:9/v1") as (c, _, item):
        assert "could not be reached" in assert_error(await ask(c, item, "x"), 502)["error"]


async def test_bad_questions_and_other_accounts(database_url: str, api: Caller) -> None:
    async with asking(database_url, []) as (client, model, item):
        for bad in ({"question": ""}, {"question": "x" * 1001}, {}, {"question": 3}):
            r = await client.post(f"/data-items/{item['id']}/ask/", json=bad)
            assert_error(r, 400)
        r = await client.post(f"/data-items/{item['id'] + 10**6}/ask/", json={"question": "x"})
        assert_error(r, 404)
        assert model.requests == []  # the model was never asked
