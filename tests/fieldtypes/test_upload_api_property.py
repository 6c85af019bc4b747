"""An upload and an API write agree on every value: accept or refuse, the type, the stored value.

For each value (tests/fieldtypes/values.py), through the real HTTP stack:
- create-from-file of a CSV whose columns hold the value three times, or twice with a fixed
  companion between (empty, `NA`, `yes`, `2.5`, `2026-01-15`), so the value decides its
  column's type alone or next to a value of each type; then a row POSTed with the value in each
  of the item's fields (the types the upload chose) stores exactly what the upload stored;
- into fields that are already decimal, date and boolean, append-from-file of the value and a
  row POSTed with it both take it or both refuse it, and store the same;
- when the upload kept a column text although the API would read the value as a number, only
  the inference rule for codes (a leading zero) may be why;
- a file the upload refuses (a NUL) holds a value every field refuses through the API.

`HYPOTHESIS_PROFILE=fuzz` (`make fuzz`) runs 2,000 values instead of the suite's 40.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings

from tests.conftest import Caller
from tests.fieldtypes.values import PROFILE, cell_values
from tests.helpers import create_item

pytestmark = pytest.mark.asyncio

COMPANIONS = {
    "same": None,
    "blank": "",
    "na": "NA",
    "yes": "yes",
    "num": "2.5",
    "iso": "2026-01-15",
}
TYPED = ("decimal", "date", "boolean")
LEADING_ZERO = re.compile(r"^[+-]?0[0-9]")


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def exact(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)


def shown(value: Any) -> tuple[str, str]:
    """A stored JSON value with its exact form (45200.5 and 45200.50 differ)."""
    return (type(value).__name__, str(value))


async def rows(api: Caller, item_id: int) -> dict[str, dict[str, Any]]:
    r = await api.client.get(f"/data-items/{item_id}/rows/", params={"limit": 500})
    assert r.status_code == 200, r.text
    return {row["_row_ref"]: row for row in exact(r.content)["rows"]}


def refused_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 400, response.text
    body = exact(response.content)
    return {str(d["field"]) for d in body.get("details", [])} or {"?"}


async def check_create(api: Caller, value: str) -> None:
    header = ["k", *COMPANIONS]
    middle = [value if c is None else c for c in COMPANIONS.values()]
    data = csv_bytes(header, [["r0", *[value] * 6], ["r1", *middle], ["r2", *[value] * 6]])
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "agreement"},
        files={"data_file": ("values.csv", data)},
    )
    if r.status_code == 400:  # the file is refused: so is the value, whatever the field's type
        item = await create_item(
            api.client,
            fields=[{"field_label": t, "field_type": t} for t in ("char", "text", *TYPED)],
        )
        for f in item["fields"]:
            written = await api.client.post(
                f"/data-items/{item['id']}/rows/", json={"values": {str(f["id"]): value}}
            )
            assert written.status_code == 400, (f["field_type"], r.text, written.text)
        return
    assert r.status_code == 201, r.text
    upload = r.json()
    assert "Delimiter: comma (',')." in upload["notes"], upload["notes"]
    fields = {f["field_label"]: f for f in upload["fields"]}
    values = {str(fields[c]["id"]): value for c in COMPANIONS}
    written = await api.client.post(f"/data-items/{upload['id']}/rows/", json={"values": values})
    types = {c: fields[c]["field_type"] for c in COMPANIONS}
    assert written.status_code == 201, (types, written.text)
    stored = await rows(api, upload["id"])
    firsts = [row for row in stored.values() if row[str(fields["k"]["id"])] == "r0"]
    if len(firsts) != 1:  # (diagnostics)
        again = await api.client.get(f"/data-items/{upload['id']}/rows/", params={"limit": 500})
        detail = await api.client.get(f"/data-items/{upload['id']}/")
        raise AssertionError((upload, stored, again.text, detail.text))
    first = firsts[0]
    api_row = stored[written.json()["row_ref"]]
    for column in COMPANIONS:
        key = str(fields[column]["id"])
        assert shown(api_row[key]) == shown(first[key]), (column, types[column])
    if types["same"] in ("char", "text") and first[str(fields["same"]["id"])] is not None:
        await check_kept_text(api, value)


async def check_kept_text(api: Caller, value: str) -> None:
    """A column of the value alone stayed text: then the value is no decimal, boolean or date to
    the API either, but for a code with a leading zero (`007`: a number to a decimal field)."""
    item = await create_item(
        api.client, fields=[{"field_label": t, "field_type": t} for t in TYPED]
    )
    ids = {str(f["id"]): f["field_type"] for f in item["fields"]}
    readable: set[str] = set()
    for key, field_type in ids.items():  # one write per type: a refusal is the field's own
        written = await api.client.post(
            f"/data-items/{item['id']}/rows/", json={"values": {key: value}}
        )
        if written.status_code == 201:
            row = (await rows(api, item["id"]))[written.json()["row_ref"]]
            if row[key] is not None:
                readable.add(field_type)
        else:
            assert refused_fields(written) == {key}, written.text
    if LEADING_ZERO.match(value.strip()):
        readable.discard("decimal")
    assert not readable, f"the API reads {value!r} as {readable}, the upload kept it text"


async def check_append(api: Caller, value: str) -> None:
    item = await create_item(
        api.client,
        fields=[{"field_label": "k"}, *({"field_label": t, "field_type": t} for t in TYPED)],
    )
    ids = {f["field_label"]: str(f["id"]) for f in item["fields"]}
    base = f"/data-items/{item['id']}"
    appended = await api.client.post(
        f"{base}/append-from-file/",
        files={"data_file": ("a.csv", csv_bytes(["k", *TYPED], [["a", *[value] * 3]]))},
    )
    written = await api.client.post(
        f"{base}/rows/", json={"values": {ids[t]: value for t in TYPED}}
    )
    if appended.status_code == 400:
        problems = exact(appended.content).get("details", [])
        refused_by_upload = {p.get("column") for p in problems}
    else:
        assert appended.status_code == 200, appended.text
        refused_by_upload = set()
    refused_by_api = (
        {label for label, key in ids.items() if key in refused_fields(written)}
        if written.status_code != 201
        else set()
    )
    assert refused_by_upload == refused_by_api, (appended.text, written.text)
    if not refused_by_upload:
        stored = list((await rows(api, item["id"])).values())
        assert len(stored) == 2
        for t in TYPED:
            assert shown(stored[0][ids[t]]) == shown(stored[1][ids[t]]), t


@settings(PROFILE)
@given(value=cell_values())
@example(value="Jan  5 2026")
@example(value="13/01/2026 10:30:00.5")
@example(value="007")
@example(value=" 1,234.50 ")
@example(value="nul\x00")
async def test_an_upload_and_an_api_write_agree(api: Caller, value: str) -> None:
    await check_create(api, value)
    if "\x00" not in value:
        await check_append(api, value)
