"""An unpaired UTF-16 surrogate escape in a bundle (`\\ud800` alone, or a lone `\\udc00`) is a 400
naming it, wherever it is: in a row value (the streaming parser used to turn it into `?` and
import the row changed) or in a name (it used to be a confusing decoding error). A pair, and an
escaped backslash before the letters `ud800`, import exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Caller
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

IMPORT = "/data-items/import-bundle/"


def bundle_text(name: str, value: str) -> bytes:
    """A bundle with one char field and one row; `name` and `value` are raw JSON string bodies."""
    return (
        '{"format": "data-items-bundle", "version": 1, "item": {"data_name": "'
        + name
        + '"}, "fields": [{"id": 1, "field_label": "Text"}], "rows": [{"1": "'
        + value
        + '"}]}'
    ).encode()


async def send(api: Caller, data: bytes, as_file: bool) -> Any:
    if as_file:
        return await api.client.post(IMPORT, files={"bundle_file": ("b.json", data)})
    return await api.client.post(IMPORT, content=data, headers={"content-type": "application/json"})


@pytest.mark.parametrize("as_file", [False, True])
@pytest.mark.parametrize(
    ("name", "value", "escape"),
    [
        ("Texts", "a\\ud800b", "\\ud800"),
        ("Texts", "\\udc00", "\\udc00"),
        ("Texts", "x\\ud83d", "\\ud83d"),  # a high half at the very end of the value
        ("Texts", "\\ude00\\ud83d", "\\ude00"),  # the halves in the wrong order
        ("R\\udc00D", "fine", "\\udc00"),
        ("Texts", "\\\\\\ud800", "\\ud800"),  # an escaped backslash, then a real escape
    ],
)
async def test_an_unpaired_half_is_a_400_and_nothing_is_imported(
    api: Caller, as_file: bool, name: str, value: str, escape: str
) -> None:
    before = (await api.client.get("/data-items/")).json()["total"]
    body = assert_error(await send(api, bundle_text(name, value), as_file), 400, "MALFORMED_JSON")
    assert escape in body["error"] and "surrogate" in body["error"], body
    assert (await api.client.get("/data-items/")).json()["total"] == before


@pytest.mark.parametrize("as_file", [False, True])
@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("\\ud83d\\ude00 ok", "\U0001f600 ok"),
        ("\\uD83D\\uDE00", "\U0001f600"),
        ("\\\\ud800", "\\ud800"),  # a backslash and the letters: text, not an escape
        ("caf\\u00e9", "café"),
    ],
)
async def test_pairs_and_look_alikes_import_exactly(
    api: Caller, as_file: bool, value: str, stored: str
) -> None:
    r = await send(api, bundle_text("Texts", value), as_file)
    assert r.status_code == 201, r.text
    rows = (await api.client.get(f"/data-items/{r.json()['id']}/rows/")).json()["rows"]
    field = str(r.json()["fields"][0]["id"])
    assert [row[field] for row in rows] == [stored]


async def test_a_long_bundle_with_pairs_everywhere(api: Caller) -> None:
    """Pairs straddle every read boundary of a bundle bigger than one read (64 KiB)."""
    values = [f"{i} \U0001f600\\" * (i % 7 + 1) for i in range(3000)]
    doc = {
        "format": "data-items-bundle",
        "version": 1,
        "item": {"data_name": "Many"},
        "fields": [{"id": 1, "field_label": "Text"}],
        "rows": [{"1": v} for v in values],
    }
    data = json.dumps(doc, ensure_ascii=True).encode()
    assert len(data) > 3 * 65536
    r = await send(api, data, False)
    assert r.status_code == 201, r.text
    field = str(r.json()["fields"][0]["id"])
    got: list[str] = []
    while len(got) < len(values):
        page = await api.client.get(
            f"/data-items/{r.json()['id']}/rows/", params={"offset": len(got), "limit": 500}
        )
        assert page.status_code == 200, page.text
        got += [row[field] for row in page.json()["rows"]]
    assert got == values


@pytest.mark.parametrize("fill", ["\\\\", '\\"', "a"])
async def test_a_string_of_megabytes_is_a_400_before_the_parser_chews_on_it(
    api: Caller, fill: str
) -> None:
    """The C parser re-reads a string that spans its reads from the start each time (quadratic:
    20 MB of escapes took 28 s of CPU); no name or cell is near 2 MiB of JSON text."""
    before = (await api.client.get("/data-items/")).json()["total"]
    value = fill * (3 * 2**20 // len(fill))
    body = assert_error(await send(api, bundle_text("Texts", value), True), 400, "MALFORMED_JSON")
    assert "longer than 2 MiB" in body["error"], body
    assert (await api.client.get("/data-items/")).json()["total"] == before


async def test_the_longest_cell_still_imports(api: Caller) -> None:
    """100,000 characters outside the BMP, each written as a surrogate-pair escape: 1.2 MB of
    JSON text in one string, under the cap."""
    r = await send(api, bundle_text("Texts", "\\ud83d\\ude00" * 100_000), False)
    assert r.status_code == 201, r.text
    field = str(r.json()["fields"][0]["id"])
    rows = (await api.client.get(f"/data-items/{r.json()['id']}/rows/")).json()["rows"]
    assert rows[0][field] == "\U0001f600" * 100_000
