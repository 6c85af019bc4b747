"""The exported bytes, pinned for every field type: decimals with many digits, dates with and
without a time, booleans, empty cells, unicode and control characters, odd labels. The JSON body
is streamed by COPY and joined in Python; these bytes are what the row-by-row rendering it
replaced produced, and the array's commas are checked wherever a chunk may end."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.transfer.exports import JsonArray
from tests.conftest import Caller
from tests.helpers import create_item

FIELDS = [
    {"field_label": "Name", "field_type": "char"},
    {"field_label": "Amount", "field_type": "decimal"},
    {"field_label": "Day", "field_type": "date"},
    {"field_label": "Done", "field_type": "boolean"},
    {"field_label": "Note", "field_type": "text"},
    {"field_label": 'Zürich "☃", \\ 😀', "field_type": "char"},
]

# (name, amount, day, done, note, odd): None leaves the cell empty
ROWS: list[tuple[Any, ...]] = [
    ("North", "45200.50", "2026-01-15", True, 'multi\nline, "quoted"', "plain"),
    ("South", "12345678901234567890.123456789012345678901234567890", "2026-02-03T09:15:00",
     False, None, None),
    ("East", "-0.001", "2026-02-03T09:15:00.123456", None, "x\r\ny\ttab", "é ñ 中文 😀"),
    (None, None, None, None, None, None),
    ("ctl \x01\x1f\x7f end", "0", None, True, "back\\slash \u2028 \u0085", "\x02\x01"),
    ("Zero", "-12345678901234567890123456789.5", "1999-12-31", False, "", "a,b;c|d"),
    ("Big", 1e-7, "2026-06-30T23:59:59", None, "{\"not\": \"json\"}", "[1, 2]"),
]  # fmt: skip

JSON_BODY = (
    b'[\n{"Name":"North","Amount":45200.5,"Day":"2026-01-15","Done":true,"Note":"multi\\nline, \\"quoted\\"","Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"plain"},\n'
    b'{"Name":"South","Amount":12345678901234567890.12345678901234567890123456789,"Day":"2026-02-03T09:15:00","Done":false,"Note":null,"Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":null},\n'
    b'{"Name":"East","Amount":-0.001,"Day":"2026-02-03T09:15:00.123456","Done":null,"Note":"x\\r\\ny\\ttab","Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"\xc3\xa9 \xc3\xb1 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"},\n'
    b'{"Name":null,"Amount":null,"Day":null,"Done":null,"Note":null,"Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":null},\n'
    b'{"Name":"ctl \\u0001\\u001f\x7f end","Amount":0,"Day":null,"Done":true,"Note":"back\\\\slash \xe2\x80\xa8 \xc2\x85","Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"\\u0002\\u0001"},\n'
    b'{"Name":"Zero","Amount":-12345678901234567890123456789.5,"Day":"1999-12-31","Done":false,"Note":null,"Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"a,b;c|d"},\n'
    b'{"Name":"Big","Amount":0.0000001,"Day":"2026-06-30T23:59:59","Done":null,"Note":"{\\"not\\": \\"json\\"}","Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"[1, 2]"}\n]\n'
)  # fmt: skip

JSON_SORTED = (
    b'[\n{"Name":"South","Amount":12345678901234567890.12345678901234567890123456789,"Day":"2026-02-03T09:15:00","Done":false,"Note":null,"Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":null},\n'
    b'{"Name":"North","Amount":45200.5,"Day":"2026-01-15","Done":true,"Note":"multi\\nline, \\"quoted\\"","Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"plain"},\n'
    b'{"Name":"Big","Amount":0.0000001,"Day":"2026-06-30T23:59:59","Done":null,"Note":"{\\"not\\": \\"json\\"}","Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"[1, 2]"},\n'
    b'{"Name":"Zero","Amount":-12345678901234567890123456789.5,"Day":"1999-12-31","Done":false,"Note":null,"Z\xc3\xbcrich \\"\xe2\x98\x83\\", \\\\ \xf0\x9f\x98\x80":"a,b;c|d"}\n]\n'
)  # fmt: skip

CSV_BODY = (
    b'Name,Amount,Day,Done,Note,"Z\xc3\xbcrich ""\xe2\x98\x83"", \\ \xf0\x9f\x98\x80"\r\n'
    b'North,45200.5,2026-01-15,true,"multi\nline, ""quoted""",plain\r\n'
    b'South,12345678901234567890.12345678901234567890123456789,2026-02-03T09:15:00,false,,\r\n'
    b'East,-0.001,2026-02-03T09:15:00.123456,,"x\r\n'
    b'y\ttab",\xc3\xa9 \xc3\xb1 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\r\n'
    b',,,,,\r\n'
    b'ctl \x01\x1f\x7f end,0,,true,back\\slash \xe2\x80\xa8 \xc2\x85,\x02\x01\r\n'
    b'Zero,-12345678901234567890123456789.5,1999-12-31,false,,"a,b;c|d"\r\n'
    b'Big,0.0000001,2026-06-30T23:59:59,,"{""not"": ""json""}","[1, 2]"\r\n'
)  # fmt: skip


async def filled(api: Caller) -> tuple[dict[str, Any], list[str]]:
    item = await create_item(api.client, "Types", FIELDS)
    keys = [str(f["id"]) for f in item["fields"]]
    rows = [{k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in ROWS]
    r = await api.client.post(f"/data-items/{item['id']}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text
    return item, keys


async def export(api: Caller, item_id: int, **params: Any) -> bytes:
    r = await api.client.get(f"/data-items/{item_id}/export/", params=params)
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.asyncio
class TestJsonBytes:
    async def test_every_type(self, api: Caller) -> None:
        item, _ = await filled(api)
        body = await export(api, item["id"], format="json")
        assert body == JSON_BODY
        parsed = json.loads(body, parse_float=Decimal)
        assert parsed[1]["Amount"] == Decimal("12345678901234567890.12345678901234567890123456789")
        assert parsed[4]["Name"] == "ctl \x01\x1f\x7f end"
        assert parsed[3] == dict.fromkeys(parsed[0])

    async def test_sorted_and_filtered(self, api: Caller) -> None:
        item, keys = await filled(api)
        body = await export(api, item["id"], format="json", sort=f"-{keys[1]}", search="o")
        assert body == JSON_SORTED

    async def test_no_fields_and_no_rows(self, api: Caller) -> None:
        bare = await create_item(api.client, "Bare")
        assert await export(api, bare["id"], format="json") == b"[\n]\n"
        r = await api.client.post(f"/data-items/{bare['id']}/rows/", json={"values": {}})
        assert r.status_code == 201, r.text
        assert await export(api, bare["id"], format="json") == b"[\n{}\n]\n"
        empty = await create_item(api.client, "Empty", FIELDS[:2])
        assert await export(api, empty["id"], format="json") == b"[\n]\n"


@pytest.mark.asyncio
class TestCsvBytes:
    async def test_every_type(self, api: Caller) -> None:
        item, _ = await filled(api)
        body = await export(api, item["id"])
        assert body == CSV_BODY


def test_json_array_commas_wherever_a_chunk_ends() -> None:
    lines = b'{"a":1}\n{"b":"x,y"}\n{}\n'
    expected = b'[\n{"a":1},\n{"b":"x,y"},\n{}\n]\n'
    for cut in range(len(lines) + 1):
        for cut2 in range(cut, len(lines) + 1):
            array = JsonArray()
            parts = [lines[:cut], lines[cut:cut2], lines[cut2:]]
            out = array.start() + b"".join(array.feed(p) for p in parts) + array.end()
            assert out == expected, (cut, cut2)
    assert JsonArray.start() + JsonArray().feed(b"") + JsonArray.end() == b"[\n]\n"


@pytest.mark.asyncio
class TestCopiedBytes:
    async def test_a_copy_holds_the_same_values(self, api: Caller) -> None:
        item, keys = await filled(api)
        r = await api.client.post(f"/data-items/{item['id']}/copy/")
        assert r.status_code == 201, r.text
        copy = r.json()
        assert copy["row_count"] == len(ROWS)
        # the same labels, so the same bytes
        assert await export(api, copy["id"], format="json") == JSON_BODY
        assert await export(api, copy["id"]) == CSV_BODY
        new_keys = [str(f["id"]) for f in copy["fields"]]
        sort = {"sort": f"-{new_keys[1]}", "search": "o"}
        assert await export(api, copy["id"], format="json", **sort) == JSON_SORTED
        # the stored documents, keyed by the new ids (every cell, numbers exact)
        copied = await api.client.get(f"/data-items/{copy['id']}/rows/", params={"limit": 500})
        original = await api.client.get(f"/data-items/{item['id']}/rows/", params={"limit": 500})
        rename = dict(zip(keys, new_keys, strict=True))
        expected = [
            {rename.get(k, k): v for k, v in row.items()}
            for row in json.loads(original.content, parse_float=Decimal)["rows"]
        ]
        assert json.loads(copied.content, parse_float=Decimal)["rows"] == expected
