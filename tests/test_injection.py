"""SQL and JSON injection through every input that reaches SQL: search text, labels and names,
filter values and field ids, sort keys, row keys and values, widget options, path parameters.
Every value is bound as a parameter (field ids are bound too, as strings; only integers, enums
and fragments compiled from them are ever written into SQL text), so each classic payload is
either stored and returned verbatim, matched literally, or refused with a 400, and nothing else
happens: no 500, no other row or account touched, no sleep, no table dropped."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import create_item

pytestmark = pytest.mark.asyncio

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE rows; --",
    "'); DELETE FROM data_items; --",
    '" OR ""="',
    "1; SELECT pg_sleep(3)",
    "'||pg_sleep(3)||'",
    "$$; DROP TABLE fields; $$",
    "\\'; TRUNCATE accounts; --",
    "%' OR '%'='",
    "_%_",
    "') UNION SELECT key_hash FROM api_keys --",
    '{"$ne": null}',
    '", "101": "injected',
    '"}, {"values": {}}, {"',
    '$.* ? (@ like_regex ".*")',
    "\"values\"->>'1'",
    "__proto__",
    "\\u0000",
    "\u02bc OR \u02bc1\u02bc=\u02bc1",  # modifier-letter apostrophes
]


async def table_counts(app: FastAPI) -> dict[str, int]:
    async with app.state.engine.connect() as conn:
        out = {}
        for table in ("accounts", "api_keys", "data_items", "fields", "rows", "widgets"):
            out[table] = int(
                (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            )
        return out


@pytest_asyncio.fixture
async def seeded(api: Caller, intruder: Caller, sales: Sales) -> Sales:
    rows = [
        sales.row(region="North", revenue="10.5", notes="plain"),
        sales.row(region="South", revenue="20", notes="it's quoted"),
    ]
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201
    theirs = await create_item(intruder.client, "Theirs", [{"field_label": "Secret"}])
    key = str(theirs["fields"][0]["id"])
    r = await intruder.client.post(f"/data-items/{theirs['id']}/rows/", json={"values": {key: "x"}})
    assert r.status_code == 201
    return sales


async def test_payloads_as_values_and_labels_round_trip(
    api: Caller, seeded: Sales, app: FastAPI
) -> None:
    before = await table_counts(app)
    for i, payload in enumerate(PAYLOADS):
        item = await api.client.post(
            "/data-items/",
            json={"data_name": payload, "data_description": payload,
                  "fields": [{"field_label": payload, "field_instructions": payload}]},
        )  # fmt: skip
        assert item.status_code == 201, (payload, item.text)
        body = item.json()
        assert body["data_name"] == payload and body["fields"][0]["field_label"] == payload
        r = await api.client.post(
            f"/data-items/{seeded.id}/rows/",
            json={"values": seeded.row(region=payload, notes=payload)},
        )
        assert r.status_code == 201, (payload, r.text)
        row = (await api.client.get(f"/data-items/{seeded.id}/rows/{2 + i}/")).json()["row"]
        assert row[seeded.f["Region"]] == payload and row[seeded.f["Notes"]] == payload
    after = await table_counts(app)
    assert after["accounts"] == before["accounts"] and after["api_keys"] == before["api_keys"]
    assert after["data_items"] == before["data_items"] + len(PAYLOADS)


async def test_search_matches_payloads_literally(api: Caller, seeded: Sales) -> None:
    for payload in PAYLOADS:
        started = time.perf_counter()
        r = await api.client.get(f"/data-items/{seeded.id}/rows/", params={"search": payload})
        assert time.perf_counter() - started < 2, payload  # pg_sleep never ran
        assert r.status_code == 200, (payload, r.text)
        assert r.json()["total"] == 0, payload  # no payload is in the seeded rows
    # and once stored, each is found exactly, by itself
    region = seeded.f["Region"]
    for payload in PAYLOADS:
        await api.client.post(f"/data-items/{seeded.id}/rows/", json={"values": {region: payload}})
    for payload in PAYLOADS:
        r = await api.client.get(f"/data-items/{seeded.id}/rows/", params={"search": payload})
        found = [row[region] for row in r.json()["rows"]]
        assert payload in found and all(payload.lower() in f.lower() for f in found), payload


async def test_filter_values_are_bound(api: Caller, seeded: Sales) -> None:
    region, revenue = int(seeded.f["Region"]), int(seeded.f["Revenue"])
    for payload in PAYLOADS:
        for op, value in (("eq", payload), ("contains", payload), ("in", [payload, "North"])):
            spec = {"conditions": [{"field": region, "op": op, "value": value}]}
            r = await api.client.get(
                f"/data-items/{seeded.id}/rows/", params={"filter": json.dumps(spec)}
            )
            assert r.status_code == 200, (payload, r.text)
            expected = 1 if op == "in" else 0  # only "North" matches
            assert r.json()["total"] == expected, (op, payload)
        spec = {"conditions": [{"field": revenue, "op": "gt", "value": payload}]}
        r = await api.client.get(
            f"/data-items/{seeded.id}/rows/", params={"filter": json.dumps(spec)}
        )
        assert r.status_code == 400, (payload, r.text)  # not a number: refused, never cast in SQL


async def test_field_ids_sort_keys_and_row_keys_are_refused(api: Caller, seeded: Sales) -> None:
    base = f"/data-items/{seeded.id}/rows/"
    for payload in [*PAYLOADS, "1 OR 1=1", "1; DROP TABLE rows", "-1 OR 1=1", "1,-1", "1e3"]:
        spec = {"conditions": [{"field": payload, "op": "eq", "value": "x"}]}
        r = await api.client.get(base, params={"filter": json.dumps(spec)})
        assert r.status_code == 400, (payload, r.text)
        r = await api.client.get(base, params={"sort": payload})
        assert r.status_code == 400, (payload, r.text)
        r = await api.client.post(base, json={"values": {payload: "x"}})
        assert r.status_code == 400, (payload, r.text)
        r = await api.client.get(f"{base}{payload}/".replace("#", "%23").replace("?", "%3F"))
        assert r.status_code in (400, 404), (payload, r.text)
    r = await api.client.get(base, params={"sort": f"-{seeded.f['Revenue']}"})
    assert [row[seeded.f["Region"]] for row in r.json()["rows"]] == ["South", "North"]


async def test_widget_options_and_filters_are_bound(
    api: Caller, seeded: Sales, app: FastAPI
) -> None:
    region, revenue = int(seeded.f["Region"]), int(seeded.f["Revenue"])
    before = await table_counts(app)
    for payload in PAYLOADS:
        options: dict[str, Any] = {payload: payload, "nested": {"sql": payload, "list": [payload]}}
        r = await api.client.post(
            f"/data-items/{seeded.id}/widgets/",
            json={
                "title": payload, "description": payload, "label_field": region,
                "chart_options": options,
                "filter_config": {"conditions": [{"field": region, "op": "ne", "value": payload}]},
                "series": [{"value_field": revenue, "aggregation": "sum", "label": payload}],
            },
        )  # fmt: skip
        assert r.status_code == 201, (payload, r.text)
        widget = r.json()
        assert widget["chart_options"] == options and widget["title"] == payload
        data = await api.client.get(f"/data-items/{seeded.id}/widgets/{widget['id']}/data/")
        assert data.status_code == 200, (payload, data.text)
        assert data.json()["labels"] == ["North", "South"]
        bad_color = await api.client.post(
            f"/data-items/{seeded.id}/widgets/{widget['id']}/series/",
            json={"value_field": revenue, "color": payload},
        )
        assert bad_color.status_code == 400
    after = await table_counts(app)
    assert after["rows"] == before["rows"] and after["fields"] == before["fields"]
    assert after["widgets"] == before["widgets"] + len(PAYLOADS)


async def test_the_other_account_saw_nothing(api: Caller, intruder: Caller, seeded: Sales) -> None:
    for payload in PAYLOADS:
        await api.client.get(f"/data-items/{seeded.id}/rows/", params={"search": payload})
    listed = (await intruder.client.get("/data-items/")).json()["data_items"]
    assert [i["data_name"] for i in listed] == ["Theirs"]
    rows = (await intruder.client.get(f"/data-items/{listed[0]['id']}/rows/")).json()
    assert rows["total"] == 1
    mine = (await api.client.get("/data-items/")).json()["data_items"]
    assert "Theirs" not in [i["data_name"] for i in mine]
