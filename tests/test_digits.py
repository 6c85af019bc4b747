"""Digits that are not ASCII, on every path that reads a number from text. `str.isdigit()` is
true for "²", which `int()` refuses (that was a 500), and `int()` and `\\d` read "٣" or a
fullwidth "6" as 3 and 6 (so an id in them named another row or field, and a file's value
passed a check its conversion then failed, a 500 again). A number, an id or a ref is ASCII
digits: anything else is the 400 or 404 of any other bad value, whatever the script, and never
names anything.

Property-ish: each case runs over several digit systems, writing a real ref or id in them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error
from tests.ingestion import files
from tests.transfer.helpers import item_names

pytestmark = pytest.mark.asyncio

# Digit systems: str.isdigit() but not int() (superscripts, circled), and int() but not ASCII
# (Arabic-Indic, fullwidth, Devanagari).
SYSTEMS = {
    "superscript": "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079",  # ⁰¹²³⁴…
    "circled": "\u24ea" + "".join(chr(0x2460 + i) for i in range(9)),  # ⓪①②…
    "arabic-indic": "".join(chr(0x0660 + i) for i in range(10)),  # ٠١٢…
    "fullwidth": "".join(chr(0xFF10 + i) for i in range(10)),
    "devanagari": "".join(chr(0x0966 + i) for i in range(10)),  # ०१२…
}
# The cases as they are: superscript two and one, Arabic-Indic three, fullwidth six
LONE = ["\u00b2", "\u00b9", "\u0663", "\uff16"]


def written(number: int | str, system: str) -> str:
    """`number` with its ASCII digits written in another system's digits."""
    return str(number).translate(str.maketrans("0123456789", SYSTEMS[system]))


EVERY = pytest.mark.parametrize("system", list(SYSTEMS))
EACH_LONE = pytest.mark.parametrize("digit", LONE)


async def with_rows(api: Caller, sales: Sales, count: int = 7) -> None:
    rows = [sales.row(region=f"r{i}") for i in range(count)]
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text


class TestRowRefs:
    @EACH_LONE
    async def test_lone_digit_is_404(self, api: Caller, sales: Sales, digit: str) -> None:
        await with_rows(api, sales)
        base = f"/data-items/{sales.id}/rows/{digit}/"
        assert_error(await api.client.get(base), 404)
        assert_error(await api.client.delete(base), 404)
        assert_error(await api.client.patch(base, json={"values": {}}), 404)

    @EVERY
    async def test_a_real_ref_in_other_digits_names_no_row(
        self, api: Caller, sales: Sales, system: str
    ) -> None:
        await with_rows(api, sales, 14)
        for ref in (3, 6, 12):
            path = f"/data-items/{sales.id}/rows/{written(ref, system)}/"
            assert_error(await api.client.get(path), 404)
            assert_error(await api.client.patch(path, json={"values": {}}), 404)
            assert_error(await api.client.delete(path), 404)
            row = await api.client.get(f"/data-items/{sales.id}/rows/{ref}/")
            assert row.status_code == 200, row.text  # untouched
        assert (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["total"] == 14


SORTED = ["/rows/", "/export/"]


class TestSortKeys:
    @pytest.mark.parametrize("where", SORTED)
    @EACH_LONE
    async def test_lone_digit_is_400(
        self, api: Caller, sales: Sales, where: str, digit: str
    ) -> None:
        for key in (digit, f"-{digit}", f"{sales.f['Region']},{digit}"):
            r = await api.client.get(f"/data-items/{sales.id}{where}", params={"sort": key})
            body = assert_error(r, 400)
            assert "is not a field id" in body["error"], body

    @pytest.mark.parametrize("where", SORTED)
    @EVERY
    async def test_a_real_field_id_in_other_digits_is_400(
        self, api: Caller, sales: Sales, where: str, system: str
    ) -> None:
        await with_rows(api, sales)
        for field in sales.f.values():
            for key in (written(field, system), "-" + written(field, system)):
                r = await api.client.get(f"/data-items/{sales.id}{where}", params={"sort": key})
                body = assert_error(r, 400)
                assert "is not a field id" in body["error"], body


NUMBERS = ["3", "12.5", "1,000", "-7", "2e3"]
DATES = ["2026-01-05", "05/01/2026", "2026-01-05T10:30:00", "Jan 5 2026"]


class TestCellValues:
    """A decimal or a date written with other digits is not one, through the API as through a
    file (whose reader never read them), rather than one path storing 3 and another failing."""

    @EVERY
    async def test_row_writes(self, api: Caller, sales: Sales, system: str) -> None:
        for field, values in (("Revenue", NUMBERS), ("Close Date", DATES)):
            for value in values:
                odd = written(value, system)
                r = await api.client.post(
                    f"/data-items/{sales.id}/rows/", json={"values": {sales.f[field]: odd}}
                )
                body = assert_error(r, 400)
                assert odd in json.dumps(body, ensure_ascii=False), body
        assert (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["total"] == 0

    @EVERY
    async def test_filter_values(self, api: Caller, sales: Sales, system: str) -> None:
        for field, op, value in (("Revenue", "gt", "3"), ("Close Date", "eq", "2026-01-05")):
            condition = {"field": int(sales.f[field]), "op": op, "value": written(value, system)}
            r = await api.client.get(
                f"/data-items/{sales.id}/rows/",
                params={"filter": json.dumps({"conditions": [condition]})},
            )
            assert_error(r, 400)

    @EVERY
    async def test_appending_a_file(self, api: Caller, sales: Sales, system: str) -> None:
        for header, value in (("Revenue", "3"), ("Revenue", "1,000.5"), ("Close Date", "2026-01-05"),
                              ("Close Date", "2026-01-05T10:30")):  # fmt: skip
            data = files.csv_bytes([[header], [written(value, system)]])
            r = await api.client.post(
                f"/data-items/{sales.id}/append-from-file/", files={"data_file": ("a.csv", data)}
            )
            body = assert_error(r, 400)
            assert header in body["error"], body
        assert (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["total"] == 0

    @EVERY
    async def test_creating_from_a_file_keeps_them_as_text(self, api: Caller, system: str) -> None:
        rows = [["Amount", "When", "Stamp"]] + [
            [written(n, system), written(d, system), written(f"2026-01-0{n}T10:30", system)]
            for n, d in ((3, "2026-01-05"), (4, "2026-01-06"))
        ]
        r = await api.client.post(
            "/data-items/create-from-file/",
            data={"data_name": "Odd digits"},
            files={"data_file": ("odd.csv", files.csv_bytes(rows))},
        )
        assert r.status_code == 201, r.text
        assert [f["field_type"] for f in r.json()["fields"]] == ["char", "char", "char"]
        rows_back = (await api.client.get(f"/data-items/{r.json()['id']}/rows/")).json()["rows"]
        assert [list(row.values())[1:] for row in rows_back] == rows[1:]


class TestSheetIndex:
    @EVERY
    async def test_an_index_in_other_digits_is_not_an_index(self, api: Caller, system: str) -> None:
        data = files.xlsx_bytes({"First": [["a"], [1]], "Second": [["b"], [2]]})
        r = await api.client.post(
            "/data-items/create-from-file/",
            data={"data_name": "Book", "sheet": written(1, system)},
            files={"data_file": ("book.xlsx", data)},
        )
        body = assert_error(r, 400, "INVALID_FILE")
        assert "no sheet" in body["error"] and "'First', 'Second'" in body["error"], body
        assert await item_names(api) == []


class TestBundleRowRefs:
    @staticmethod
    def bundle(ref: Any) -> bytes:
        return json.dumps(
            {
                "format": "data-items-bundle",
                "version": 1,
                "item": {"data_name": "Moved"},
                "fields": [{"id": 11, "field_label": "Region"}],
                "rows": [{"_row_ref": "0", "11": "a"}, {"_row_ref": ref, "11": "b"}],
            }
        ).encode()

    @EACH_LONE
    async def test_lone_digit(self, api: Caller, digit: str) -> None:
        await self._refused(api, digit)

    @EVERY
    async def test_a_real_ref_in_other_digits(self, api: Caller, system: str) -> None:
        for ref in (3, 12, 406):
            await self._refused(api, written(ref, system))

    async def _refused(self, api: Caller, ref: str) -> None:
        for as_file in (False, True):
            data = self.bundle(ref)
            if as_file:
                r = await api.client.post(
                    "/data-items/import-bundle/", files={"bundle_file": ("b.json", data)}
                )
            else:
                r = await api.client.post(
                    "/data-items/import-bundle/",
                    content=data,
                    headers={"content-type": "application/json"},
                )
            body = assert_error(r, 400)
            assert body["details"] == [
                {"row": 1, "field": "_row_ref", "value": ref, "message": "is not a row ref"}
            ], body
        assert await item_names(api) == []


class TestContentLength:
    @pytest.mark.parametrize("digit", ["\u00b9", "\u00b2", "\u00b3"])
    async def test_a_content_length_in_other_digits(
        self, client: httpx.AsyncClient, digit: str
    ) -> None:
        """Headers are Latin-1: `Content-Length: ²` reached `int()`. The server (h11) refuses
        such a header before the app; the app must not answer 500 to it either."""
        header = [(b"content-length", digit.encode("latin-1"))]
        r = await client.get("/healthz", headers=header)
        assert r.status_code < 500, r.text
