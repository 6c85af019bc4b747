"""`GET /data-items/{id}/` writes its document directly from one statement
(app/data_items/service.py `read_detail`); every other route that answers an item (create, PATCH)
serialises the `DataItemRead` schema. The two must give the same bytes."""

from __future__ import annotations

import pytest

from tests.conftest import Caller
from tests.helpers import create_item

pytestmark = pytest.mark.asyncio


async def test_the_direct_document_is_the_schemas(api: Caller) -> None:
    item = await create_item(
        api.client,
        'Ünïcode \u2028 tab\t "quoted" \\ 😀 \x01\x7f\u0085',
        [
            {"field_label": "Région €", "field_instructions": 'line\nbreak "and" \\'},
            {"field_label": "N", "field_type": "decimal", "field_required": True},
            {"field_label": "D", "field_type": "date"},
            {"field_label": "B", "field_type": "boolean"},
            {"field_label": "T", "field_type": "text"},
        ],
    )
    r = await api.client.patch(
        f"/data-items/{item['id']}/", json={"data_description": "<b>&</b>\u2029"}
    )
    assert r.status_code == 200
    uploaded = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "With a file"},
        files={"data_file": ('naïve "name".csv', b"A,B\n1,x\n")},
    )
    assert uploaded.status_code == 201, uploaded.text
    for item_id in (item["id"], uploaded.json()["id"]):
        got = await api.client.get(f"/data-items/{item_id}/")
        assert got.status_code == 200
        schema = await api.client.patch(f"/data-items/{item_id}/", json={})  # no change
        assert schema.status_code == 200
        assert got.content == schema.content
        assert got.headers["content-type"] == schema.headers["content-type"]
        assert got.json()["reference_files"] or item_id == item["id"]
